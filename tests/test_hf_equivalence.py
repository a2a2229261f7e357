"""minibert and transformers compute the same numbers, both ways, and through each other's files.

Every head class, several random configs (odd sizes, other activations, three segments), a batch
with padding and two segments; fp32, eval mode; 1e-5 on hidden states, attentions, logits, losses.
"""

import pytest
import torch

transformers = pytest.importorskip("transformers")

import minibert  # noqa: E402
from minibert import BertConfig, from_hf, to_hf  # noqa: E402
from minibert.functional import positions_from_labels  # noqa: E402
from minibert.hf import hf_config_kwargs  # noqa: E402
from minibert.hf_names import (  # noqa: E402
    from_hf_key,
    load_hf_state_dict,
    to_hf_key,
    to_hf_state_dict,
)

CLASS_NAMES = [
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
]

CONFIGS = {
    "odd-h96-a3-l3-v1000": dict(
        vocab_size=1000,
        hidden_size=96,
        num_hidden_layers=3,
        num_attention_heads=3,
        intermediate_size=200,
        num_labels=3,
    ),
    "gelu_new-3-segments": dict(
        vocab_size=517,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=96,
        hidden_act="gelu_new",
        type_vocab_size=3,
        layer_norm_eps=1e-5,
        max_position_embeddings=40,
        pad_token_id=1,
        num_labels=2,
        initializer_range=0.05,
    ),
    "relu-one-head": dict(
        vocab_size=300,
        hidden_size=20,
        num_hidden_layers=1,
        num_attention_heads=1,
        intermediate_size=36,
        hidden_act="relu",
        num_labels=5,
        initializer_range=0.1,
    ),
}

ATOL = 1e-5


def make_config(name):
    return BertConfig(**CONFIGS[name])


def make_inputs(config, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch, seq_len = 3, 12
    input_ids = torch.randint(0, config.vocab_size, (batch, seq_len), generator=g)
    attention_mask = torch.ones(batch, seq_len, dtype=torch.long)
    attention_mask[1, 8:] = 0
    attention_mask[2, 4:] = 0
    input_ids[attention_mask == 0] = config.pad_token_id
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 6:] = config.type_vocab_size - 1  # a second segment (the last type)
    token_type_ids[attention_mask == 0] = 0
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
    }


def make_labels(config, class_name, inputs, seed=1):
    g = torch.Generator().manual_seed(seed)
    ids = inputs["input_ids"]
    if class_name in ("BertForPreTraining", "BertForMaskedLM"):
        labels = torch.full_like(ids, -100)
        chosen = (torch.rand(ids.shape, generator=g) < 0.3) & (inputs["attention_mask"] == 1)
        chosen[0, 1] = True
        labels[chosen] = ids[chosen]
        extra = {"labels": labels}
        if class_name == "BertForPreTraining":
            extra["next_sentence_label"] = torch.tensor([0, 1, 1])
        return extra
    if class_name == "BertForSequenceClassification":
        return {"labels": torch.randint(0, config.num_labels, (ids.shape[0],), generator=g)}
    if class_name == "BertForTokenClassification":
        labels = torch.randint(0, config.num_labels, ids.shape, generator=g)
        labels[inputs["attention_mask"] == 0] = -100
        return {"labels": labels}
    return {}


def run_both(ours, theirs, inputs, labels):
    ours_out = ours(**inputs, **labels, output_attentions=True, output_hidden_states=True)
    theirs_out = theirs(**inputs, **labels, output_attentions=True, output_hidden_states=True)
    return ours_out, theirs_out


def assert_same_outputs(ours_out, theirs_out):
    assert len(ours_out.hidden_states) == len(theirs_out.hidden_states)
    for mine, hf in zip(ours_out.hidden_states, theirs_out.hidden_states, strict=True):
        torch.testing.assert_close(mine, hf, rtol=0, atol=ATOL)
    assert len(ours_out.attentions) == len(theirs_out.attentions) > 0
    for mine, hf in zip(ours_out.attentions, theirs_out.attentions, strict=True):
        torch.testing.assert_close(mine, hf, rtol=0, atol=ATOL)
    compared = 0
    for field in (
        "last_hidden_state",
        "pooler_output",
        "logits",
        "prediction_logits",
        "seq_relationship_logits",
        "loss",
    ):
        mine = getattr(ours_out, field, None)
        if mine is None:
            continue
        hf = getattr(theirs_out, field)
        assert hf is not None, field
        torch.testing.assert_close(mine, hf, rtol=0, atol=ATOL, msg=field)
        compared += 1
    assert compared >= 1


def hf_model(class_name, config, seed=0):
    torch.manual_seed(seed)
    hf_config = transformers.BertConfig(
        **{**hf_config_kwargs(config), "attn_implementation": "eager"}
    )
    return getattr(transformers, class_name)(hf_config).eval()


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_minibert_to_transformers(config_name, class_name):
    config = make_config(config_name)
    torch.manual_seed(0)
    ours = getattr(minibert, class_name)(config).eval()
    theirs = to_hf(ours, attn_implementation="eager")
    assert type(theirs).__name__ == class_name and not theirs.training
    inputs = make_inputs(config)
    assert_same_outputs(*run_both(ours, theirs, inputs, make_labels(config, class_name, inputs)))


@pytest.mark.parametrize("config_name", list(CONFIGS))
@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_transformers_to_minibert(config_name, class_name):
    config = make_config(config_name)
    theirs = hf_model(class_name, config, seed=1)
    ours = from_hf(theirs)
    assert type(ours).__name__ == class_name and not ours.training
    assert ours.config == config.replace(attn_implementation="eager")  # the kernel comes along
    inputs = make_inputs(config, seed=2)
    assert_same_outputs(*run_both(ours, theirs, inputs, make_labels(config, class_name, inputs)))


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_round_trips_through_the_other_librarys_files(tmp_path, class_name):
    config = make_config("odd-h96-a3-l3-v1000")
    torch.manual_seed(3)
    ours = getattr(minibert, class_name)(config).eval()
    ours.save_pretrained(tmp_path / "minibert")
    theirs, info = getattr(transformers, class_name).from_pretrained(
        tmp_path / "minibert", attn_implementation="eager", output_loading_info=True
    )
    assert not any(info[kind] for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    inputs = make_inputs(config, seed=4)
    labels = make_labels(config, class_name, inputs)
    assert_same_outputs(*run_both(ours, theirs.eval(), inputs, labels))

    other = hf_model(class_name, config, seed=5)
    other.save_pretrained(tmp_path / "transformers")
    loaded = getattr(minibert, class_name).from_pretrained(tmp_path / "transformers")
    assert_same_outputs(*run_both(loaded, other, inputs, labels))


def test_fast_path_matches_transformers_sdpa():
    config = make_config("odd-h96-a3-l3-v1000")
    torch.manual_seed(6)
    ours = minibert.BertForPreTraining(config).eval()
    theirs = to_hf(ours, attn_implementation="sdpa")
    inputs = make_inputs(config, seed=7)
    mine, hf = ours(**inputs), theirs(**inputs)
    torch.testing.assert_close(mine.prediction_logits, hf.prediction_logits, rtol=0, atol=ATOL)
    torch.testing.assert_close(
        mine.seq_relationship_logits, hf.seq_relationship_logits, rtol=0, atol=ATOL
    )


@pytest.mark.parametrize("path", ["full", "masked_positions", "sparse_last_layer"])
@pytest.mark.parametrize("attn_implementation", ["sdpa", "eager"])
def test_training_step_gradients_match_transformers(path, attn_implementation):
    """MLM + NSP loss in train mode (dropout 0) gives transformers' loss and gradients: full
    logits, logits at masked_positions only, and the last layer at those positions only."""
    config = make_config("odd-h96-a3-l3-v1000").replace(
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        attn_implementation=attn_implementation,
    )
    torch.manual_seed(8)
    ours = minibert.BertForPreTraining(config).train()
    theirs = to_hf(ours).train()
    assert theirs.config._attn_implementation == attn_implementation
    inputs = make_inputs(config, seed=9)
    labels = make_labels(config, "BertForPreTraining", inputs)
    labels["labels"][:, 0] = -100  # [CLS] is never a target: masked_positions pad with it
    sparse = {}
    if path != "full":
        positions, _ = positions_from_labels(labels["labels"])
        sparse = dict(masked_positions=positions, sparse_last_layer=path == "sparse_last_layer")
    mine, hf = ours(**inputs, **labels, **sparse), theirs(**inputs, **labels)
    expected_width = positions.shape[1] if sparse else inputs["input_ids"].shape[1]
    assert mine.prediction_logits.shape[1] == expected_width
    torch.testing.assert_close(mine.loss, hf.loss, rtol=0, atol=ATOL)
    mine.loss.backward()
    hf.loss.backward()
    hf_grads = {name: p.grad for name, p in theirs.named_parameters()}
    for name, parameter in ours.named_parameters():
        expected = hf_grads[to_hf_key(name)]
        torch.testing.assert_close(parameter.grad, expected, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("class_name", CLASS_NAMES)
def test_name_table_covers_exactly_the_transformers_keys(class_name):
    config = make_config("relu-one-head")
    ours = getattr(minibert, class_name)(config)
    theirs = hf_model(class_name, config)
    converted = to_hf_state_dict(ours, include_tied=True)
    assert set(converted) == set(theirs.state_dict())
    for name in ours.state_dict():
        assert from_hf_key(to_hf_key(name)) == name


def test_legacy_checkpoint_names_are_understood():
    assert from_hf_key("bert.embeddings.LayerNorm.gamma") == "bert.embeddings.norm.weight"
    assert from_hf_key("encoder.layer.11.output.LayerNorm.beta") == "layers.11.ffn_norm.bias"


def test_a_non_bert_model_is_refused(tmp_path):
    roberta = transformers.RobertaModel(
        transformers.RobertaConfig(
            vocab_size=100,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    )
    with pytest.raises(ValueError, match="converts BERT models.*'roberta' model"):
        from_hf(roberta)
    roberta.save_pretrained(tmp_path / "roberta")
    with pytest.raises(ValueError, match="'roberta' model"):
        from_hf(tmp_path / "roberta")
    with pytest.raises(ValueError, match="'roberta' model, not a BERT model"):
        minibert.BertModel.from_pretrained(tmp_path / "roberta")


def test_unsupported_heads_and_types_are_refused():
    qa = hf_model("BertForQuestionAnswering", make_config("relu-one-head"))
    with pytest.raises(
        ValueError, match="BertForQuestionAnswering, whose head minibert does not implement"
    ):
        from_hf(qa)
    with pytest.raises(TypeError, match="from_hf expects a transformers model or a path"):
        from_hf(42)
    with pytest.raises(TypeError, match="to_hf expects a minibert model"):
        to_hf(qa)


def test_conversion_fails_loudly_on_unmapped_keys_shapes_and_untied_decoders():
    config = make_config("relu-one-head")
    ours = minibert.BertForMaskedLM(config)
    ours.extra = torch.nn.Linear(2, 2)  # a parameter the name table does not know
    with pytest.raises(ValueError, match=r"does not cover: \['extra.weight', 'extra.bias'\]"):
        to_hf_state_dict(ours)

    theirs = hf_model("BertForMaskedLM", config)
    state = dict(theirs.state_dict())
    state["bert.encoder.layer.0.attention.self.query.weight"] = torch.zeros(20, 21)
    with pytest.raises(ValueError, match=r"checkpoint \(20, 21\) vs model \(20, 20\)"):
        load_hf_state_dict(minibert.BertForMaskedLM(config), state)

    state = dict(theirs.state_dict())
    state["cls.predictions.decoder.weight"] = state["cls.predictions.decoder.weight"] + 1.0
    with pytest.raises(ValueError, match="differs from bert.embeddings.word_embeddings.weight"):
        load_hf_state_dict(minibert.BertForMaskedLM(config), state)

    state = dict(theirs.state_dict())
    state["bert.encoder.layer.0.crossattention.self.query.weight"] = torch.zeros(20, 20)
    with pytest.raises(ValueError, match="cannot place.*crossattention"):
        load_hf_state_dict(minibert.BertForMaskedLM(config), state)

    state = dict(theirs.state_dict())
    with pytest.raises(ValueError, match=r"does not match BertForPreTraining exactly: missing \["):
        load_hf_state_dict(minibert.BertForPreTraining(config), state, strict=True)


def make_word_tokenizer(words):
    """A real WordPiece tokenizer over a handful of words, built offline with `tokenizers`."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {token: i for i, token in enumerate(specials + words)}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.BertProcessing(("[SEP]", 3), ("[CLS]", 2))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


def test_fill_mask_pipeline_and_automodel_load_a_minibert_directory(tmp_path):
    words = [
        "the",
        "cat",
        "dog",
        "sat",
        "ran",
        "on",
        "in",
        "a",
        "mat",
        "park",
        "big",
        "small",
        "red",
    ]
    tokenizer = make_word_tokenizer(words)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
    )
    torch.manual_seed(10)
    ours = minibert.BertForMaskedLM(config).eval()
    directory = ours.save_pretrained(tmp_path / "mlm")
    auto = transformers.AutoModelForMaskedLM.from_pretrained(directory)
    assert type(auto).__name__ == "BertForMaskedLM"

    fill = transformers.pipeline("fill-mask", model=str(directory), tokenizer=tokenizer, top_k=3)
    predictions = fill("the cat sat on the [MASK]")
    encoded = tokenizer("the cat sat on the [MASK]", return_tensors="pt")
    with torch.no_grad():
        logits = ours(encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
    position = int((encoded["input_ids"][0] == tokenizer.mask_token_id).nonzero()[0, 0])
    probs, ids = logits[0, position].softmax(-1).topk(3)
    assert [p["token"] for p in predictions] == ids.tolist()
    assert [p["score"] for p in predictions] == pytest.approx(probs.tolist(), abs=1e-5)


def test_conversion_keeps_dtype_and_mode():
    config = make_config("relu-one-head")
    ours = minibert.BertForSequenceClassification(config).to(torch.bfloat16).train()
    theirs = to_hf(ours)
    assert theirs.training and next(theirs.parameters()).dtype == torch.bfloat16
    back = from_hf(theirs)
    assert back.training and next(back.parameters()).dtype == torch.bfloat16
    for (name, a), b in zip(ours.state_dict().items(), back.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_static_masked_positions_gradients_match_transformers():
    """The (B, M) masked_positions path (sparse head and last layer) gives HF's loss and grads."""
    config = make_config("gelu_new-3-segments").replace(
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
    )
    torch.manual_seed(11)
    ours = minibert.BertForMaskedLM(config).train()
    theirs = to_hf(ours, attn_implementation="sdpa").train()
    inputs = make_inputs(config, seed=12)
    labels = torch.full_like(inputs["input_ids"], -100)
    positions = torch.tensor([[3, 7, 9], [1, 5, 0], [2, 0, 0]])  # padded with [CLS]
    for row, cols in enumerate(positions.tolist()):
        for col in cols:
            if col:
                labels[row, col] = inputs["input_ids"][row, col]
    mine = ours(**inputs, labels=labels, masked_positions=positions, sparse_last_layer=True)
    hf = theirs(**inputs, labels=labels)
    assert mine.logits.shape == (3, 3, config.vocab_size)
    torch.testing.assert_close(mine.loss, hf.loss, rtol=0, atol=ATOL)
    mine.loss.backward()
    hf.loss.backward()
    hf_grads = {name: p.grad for name, p in theirs.named_parameters()}
    for name, parameter in ours.named_parameters():
        torch.testing.assert_close(
            parameter.grad, hf_grads[to_hf_key(name)], rtol=1e-4, atol=1e-6, msg=name
        )


@pytest.mark.parametrize("kind", ["regression", "multi_label"])
def test_sequence_classification_loss_kinds_match_transformers(kind):
    num_labels = 1 if kind == "regression" else 4
    config = make_config("relu-one-head").replace(num_labels=num_labels)
    torch.manual_seed(13)
    ours = minibert.BertForSequenceClassification(config).eval()
    theirs = to_hf(ours)
    inputs = make_inputs(config, seed=14)
    if kind == "regression":
        labels = torch.tensor([0.5, -1.0, 2.0])
    else:
        labels = torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    mine, hf = ours(**inputs, labels=labels), theirs(**inputs, labels=labels)
    torch.testing.assert_close(mine.logits, hf.logits, rtol=0, atol=ATOL)
    torch.testing.assert_close(mine.loss, hf.loss, rtol=0, atol=ATOL)
