"""BertConfig: presets, validation, label maps, dict/JSON round trips, reading HF configs."""

import dataclasses
import json

import pytest

from minibert.config import PRESETS, SUPPORTED_ACTIVATIONS, BertConfig


@pytest.mark.parametrize(
    ("name", "layers", "hidden", "heads"),
    [("tiny", 2, 128, 2), ("mini", 4, 256, 4), ("small", 4, 512, 8), ("base", 12, 768, 12)],
)
def test_presets_have_the_published_sizes(name, layers, hidden, heads):
    config = BertConfig.preset(name)
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        layers,
        hidden,
        heads,
    )
    assert config.intermediate_size == 4 * hidden
    assert config.vocab_size == 30522  # BERT's uncased WordPiece vocabulary by default


def test_preset_overrides_and_derived_intermediate_size():
    config = BertConfig.preset("tiny", vocab_size=8192, hidden_dropout_prob=0.0)
    assert config.vocab_size == 8192 and config.hidden_dropout_prob == 0.0
    assert config.num_hidden_layers == 2
    wider = BertConfig.preset("tiny", hidden_size=192, num_attention_heads=3)
    assert wider.intermediate_size == 4 * 192
    explicit = BertConfig.preset("tiny", intermediate_size=300)
    assert explicit.intermediate_size == 300


def test_unknown_preset_and_unknown_override_fail_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown preset 'huge'.*tiny"):
        BertConfig.preset("huge")
    with pytest.raises(ValueError, match="hiden_size"):
        BertConfig.preset("tiny", hiden_size=64)


def test_hidden_size_must_divide_into_heads():
    with pytest.raises(ValueError, match=r"hidden_size \(100\).*num_attention_heads \(3\)"):
        BertConfig(hidden_size=100, num_attention_heads=3)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("vocab_size", 0, "vocab_size must be a positive int"),
        ("num_hidden_layers", -1, "num_hidden_layers must be a positive int"),
        ("hidden_size", 12.0, "hidden_size must be a positive int"),
        ("max_position_embeddings", True, "max_position_embeddings must be a positive int"),
        ("hidden_dropout_prob", 1.0, r"hidden_dropout_prob must be a probability in \[0, 1\)"),
        ("attention_probs_dropout_prob", -0.1, "attention_probs_dropout_prob"),
        ("classifier_dropout", 2.0, "classifier_dropout"),
        ("hidden_act", "tanhh", "hidden_act='tanhh' is not supported"),
        ("layer_norm_eps", 0.0, "layer_norm_eps must be a positive number"),
        ("initializer_range", -0.02, "initializer_range must be a positive number"),
        # Issue 13: NaN passes `value <= 0`, so these used to be accepted.
        ("layer_norm_eps", float("nan"), "layer_norm_eps must be a positive number, not NaN"),
        ("initializer_range", float("inf"), "initializer_range must be a positive number"),
        ("hidden_dropout_prob", float("nan"), "hidden_dropout_prob must be a probability"),
        ("pad_token_id", 30522, r"pad_token_id must be an int in \[0, vocab_size=30522\)"),
        ("problem_type", "ranking", "problem_type='ranking' is not known"),
        ("num_labels", 0, "num_labels must be a positive int"),
    ],
)
def test_invalid_values_are_rejected_by_name(field, value, message):
    with pytest.raises(ValueError, match=message):
        BertConfig(**{field: value})


def test_label_maps_default_follow_and_are_checked():
    assert BertConfig().num_labels == 2
    assert BertConfig(num_labels=3).id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    config = BertConfig(id2label={"0": "neg", "1": "neu", "2": "pos"})  # JSON-style keys
    assert config.num_labels == 3
    assert config.id2label == {0: "neg", 1: "neu", 2: "pos"}
    assert config.label2id == {"neg": 0, "neu": 1, "pos": 2}
    with pytest.raises(ValueError, match="num_labels=2 but id2label has 3 entries"):
        BertConfig(num_labels=2, id2label={0: "a", 1: "b", 2: "c"})
    with pytest.raises(ValueError, match="keys must be 0..1"):
        BertConfig(id2label={0: "a", 2: "b"})
    with pytest.raises(ValueError, match="not the inverse"):
        BertConfig(id2label={0: "a", 1: "b"}, label2id={"a": 1, "b": 0})


def test_replace_revalidates_and_regenerates_label_names():
    config = BertConfig.preset("tiny", id2label={0: "neg", 1: "pos"})
    three = config.replace(num_labels=3)
    assert three.id2label == {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}
    assert three.hidden_size == config.hidden_size
    with pytest.raises(ValueError, match="divisible"):
        config.replace(num_attention_heads=3)
    with pytest.raises(ValueError, match="unknown config field"):
        config.replace(num_layers=3)


def test_dict_and_json_round_trips(tmp_path):
    config = BertConfig.preset(
        "mini", vocab_size=1000, id2label={0: "O", 1: "B-PER", 2: "I-PER"}, classifier_dropout=0.2
    )
    assert BertConfig.from_dict(config.to_dict()) == config
    assert BertConfig.from_json_string(config.to_json_string()) == config
    path = tmp_path / "config.json"
    config.to_json_file(path)
    data = json.loads(path.read_text())
    assert data["id2label"] == {"0": "O", "1": "B-PER", "2": "I-PER"}
    assert BertConfig.from_json_file(path) == config
    assert set(data) == {f.name for f in dataclasses.fields(BertConfig)}


def test_from_dict_strictness():
    data = BertConfig.preset("tiny").to_dict()
    data["model_type"] = "bert"  # bookkeeping keys are always fine
    data["architectures"] = ["BertForMaskedLM"]
    assert BertConfig.from_dict(data).hidden_size == 128
    data["hidden_layers"] = 3
    with pytest.raises(ValueError, match=r"unknown config keys \['hidden_layers'\]"):
        BertConfig.from_dict(data)
    assert BertConfig.from_dict(data, strict=False).num_hidden_layers == 2
    with pytest.raises(TypeError, match="expects a dict"):
        BertConfig.from_dict([("hidden_size", 12)])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("position_embedding_type", "relative_key"),
        ("is_decoder", True),
        ("add_cross_attention", True),
    ],
)
def test_hf_options_minibert_does_not_implement_are_refused(key, value):
    data = BertConfig.preset("tiny").to_dict() | {key: value}
    with pytest.raises(ValueError, match=f"{key}="):
        BertConfig.from_dict(data, strict=False)


def test_a_non_bert_config_is_refused():
    with pytest.raises(ValueError, match="'gpt2' model, not a BERT model"):
        BertConfig.from_dict({"model_type": "gpt2", "n_embd": 768}, strict=False)


def test_reads_a_config_written_by_transformers():
    transformers = pytest.importorskip("transformers")
    hf = transformers.BertConfig(
        vocab_size=999,
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=3,
        intermediate_size=200,
        hidden_act="gelu_new",
        id2label={0: "x", 1: "y", 2: "z"},
    )
    config = BertConfig.from_dict(hf.to_dict(), strict=False)
    assert (config.vocab_size, config.hidden_size, config.num_attention_heads) == (999, 96, 3)
    assert config.hidden_act == "gelu_new"
    assert config.id2label == {0: "x", 1: "y", 2: "z"} and config.num_labels == 3
    # ...and transformers reads minibert's dict back to the same model shape.
    back = transformers.BertConfig(**config.to_dict())
    assert back.num_labels == 3 and back.intermediate_size == 200


def test_supported_activations_match_the_implementations():
    torch = pytest.importorskip("torch")
    from minibert.activations import ACTIVATIONS, get_activation

    assert set(SUPPORTED_ACTIVATIONS) == set(ACTIVATIONS)
    x = torch.linspace(-4, 4, 101)
    transformers_activations = pytest.importorskip("transformers.activations")
    for name in SUPPORTED_ACTIVATIONS:
        expected = transformers_activations.ACT2FN[name](x)
        torch.testing.assert_close(get_activation(name)(x), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unknown activation"):
        get_activation("softsign")


def test_presets_are_listed_once():
    assert list(PRESETS) == ["tiny", "mini", "small", "base"]
