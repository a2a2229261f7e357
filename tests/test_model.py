"""The encoder and heads: outputs, sparse MLM contract, losses, bad input, state dicts, save/load."""

import json
import logging
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

import minibert
from minibert import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

ALL_CLASSES = [
    BertModel,
    BertForPreTraining,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
]


def small_config(**overrides):
    values = dict(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=40,
        max_position_embeddings=32,
        type_vocab_size=2,
        num_labels=3,
    )
    values.update(overrides)
    return BertConfig(**values)


def batch(config, batch_size=3, seq_len=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(1, config.vocab_size, (batch_size, seq_len), generator=g)
    attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long)
    attention_mask[1, seq_len - 3 :] = 0
    input_ids[attention_mask == 0] = config.pad_token_id
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, seq_len // 2 :] = 1
    labels = torch.full_like(input_ids, -100)
    labels[:, 2] = input_ids[:, 2]
    labels[0, 5] = input_ids[0, 5]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
    }


def test_public_names_resolve_to_the_documented_modules():
    assert minibert.BertModel.__module__ == "minibert.model"
    assert minibert.BertForPreTraining.__module__ == "minibert.heads"
    assert minibert.from_hf.__module__ == minibert.to_hf.__module__ == "minibert.hf"


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_output_fields_and_shapes(cls):
    torch.manual_seed(0)
    config = small_config()
    model = cls(config).eval()
    inputs = batch(config)
    inputs.pop("labels")
    out = model(**inputs, output_attentions=True, output_hidden_states=True)
    B, T, H, V, L, nh = 3, 10, 24, 97, 2, 3
    assert len(out.hidden_states) == L + 1
    assert all(h.shape == (B, T, H) for h in out.hidden_states)
    assert len(out.attentions) == L
    assert all(a.shape == (B, nh, T, T) for a in out.attentions)
    if cls is BertModel:
        assert out.last_hidden_state.shape == (B, T, H) and out.pooler_output.shape == (B, H)
        torch.testing.assert_close(out.hidden_states[-1], out.last_hidden_state)
    elif cls is BertForPreTraining:
        assert out.prediction_logits.shape == (B, T, V)
        assert out.seq_relationship_logits.shape == (B, 2)
        assert out.loss is out.mlm_loss is out.nsp_loss is None
    elif cls is BertForMaskedLM:
        assert out.logits.shape == (B, T, V)
    elif cls is BertForSequenceClassification:
        assert out.logits.shape == (B, 3)
    else:
        assert out.logits.shape == (B, T, 3)
    plain = model(**inputs)
    assert plain.attentions is None and plain.hidden_states is None


def test_mlm_logits_shape_follows_masked_positions_not_the_mode():
    torch.manual_seed(1)
    config = small_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config)
    inputs = batch(config)
    labels = inputs["labels"]
    nsp = torch.tensor([0, 1, 0])
    chosen = labels != -100

    # Without masked_positions: every position, in eval and in training mode alike.
    full = model.eval()(**inputs, next_sentence_label=nsp)
    assert full.prediction_logits.shape == (3, 10, 97)
    trained = model.train()(**inputs, next_sentence_label=nsp)
    assert trained.prediction_logits.shape == (3, 10, 97)
    torch.testing.assert_close(trained.prediction_logits, full.prediction_logits)
    torch.testing.assert_close(trained.mlm_loss, full.mlm_loss)
    torch.testing.assert_close(trained.loss, trained.mlm_loss + trained.nsp_loss)

    # Static shapes: two masked positions per row, row 1 and 2 padded with position 0 ([CLS]).
    positions = torch.tensor([[2, 5], [2, 0], [2, 0]])
    for mode in (model.eval, model.train):
        for sparse_last_layer in (False, True):
            static = mode()(
                **inputs,
                next_sentence_label=nsp,
                masked_positions=positions,
                sparse_last_layer=sparse_last_layer,
            )
            assert static.prediction_logits.shape == (3, 2, 97)
            torch.testing.assert_close(static.prediction_logits[0, 1], full.prediction_logits[0, 5])
            torch.testing.assert_close(static.mlm_loss, full.mlm_loss)
            torch.testing.assert_close(static.nsp_loss, full.nsp_loss)
    with pytest.raises(ValueError, match="sparse_last_layer=True .* pass masked_positions"):
        model(**inputs, sparse_last_layer=True)
    assert chosen.sum() == 4  # the batch's labels sit exactly at the positions above

    # The loss equals a cross-entropy written out by hand over the labelled positions.
    log_probs = full.prediction_logits.log_softmax(-1)[chosen]
    by_hand = -log_probs.gather(1, labels[chosen][:, None]).mean()
    torch.testing.assert_close(full.mlm_loss, by_hand)


def test_pretraining_loss_with_one_label_kind():
    torch.manual_seed(2)
    config = small_config()
    model = BertForPreTraining(config).eval()
    inputs = batch(config)
    only_mlm = model(**inputs)
    assert only_mlm.nsp_loss is None and only_mlm.loss is only_mlm.mlm_loss
    inputs.pop("labels")
    only_nsp = model(**inputs, next_sentence_label=torch.tensor([1, 0, 1]))
    assert only_nsp.mlm_loss is None and only_nsp.loss is only_nsp.nsp_loss


def test_masked_lm_decoder_is_tied_to_the_word_embeddings():
    torch.manual_seed(3)
    config = small_config()
    model = BertForMaskedLM(config).eval()
    names = set(model.state_dict())
    assert not any("decoder" in name for name in names)
    assert "mlm.bias" in names and "bert.embeddings.word.weight" in names
    assert "bert.pooler.dense.weight" not in names  # like transformers.BertForMaskedLM
    ids = torch.tensor([[5, 6, 7]])
    before = model(ids).logits
    with torch.no_grad():
        model.bert.embeddings.word.weight[11] += 1.0  # token 11 is not in the input
    after = model(ids).logits
    assert not torch.allclose(before[..., 11], after[..., 11])  # the output row moved too


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_state_dict_holds_parameters_only_and_does_not_depend_on_runtime(cls):
    config = small_config()
    model = cls(config)
    keys = list(model.state_dict())
    assert keys == [name for name, _ in model.named_parameters()]
    model(**{k: v for k, v in batch(config).items() if k != "labels"}, output_attentions=True)
    assert list(model.state_dict()) == keys
    assert list(cls(config).state_dict()) == keys


def test_initialisation_follows_bert():
    torch.manual_seed(4)
    config = small_config(vocab_size=2000, hidden_size=96, num_attention_heads=4, pad_token_id=3)
    model = BertForPreTraining(config)
    word = model.bert.embeddings.word.weight
    assert word[3].abs().sum() == 0  # the padding row
    assert abs(word.std().item() - 0.02) < 0.002
    attention = model.bert.layers[0].attention
    assert abs(attention.query.weight.std().item() - 0.02) < 0.003
    assert attention.query.bias.abs().sum() == 0
    norm = model.bert.layers[1].ffn_norm
    assert torch.all(norm.weight == 1) and torch.all(norm.bias == 0)
    assert model.mlm.bias.abs().sum() == 0


def test_head_mask_shapes():
    torch.manual_seed(5)
    config = small_config()
    model = BertModel(config).eval()
    inputs = batch(config)
    inputs.pop("labels")
    per_head = model(**inputs, head_mask=torch.tensor([1.0, 0.0, 1.0]))
    per_layer = model(**inputs, head_mask=torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0]]))
    torch.testing.assert_close(per_head.last_hidden_state, per_layer.last_hidden_state)
    ones = model(**inputs, head_mask=torch.ones(2, 3))
    torch.testing.assert_close(ones.last_hidden_state, model(**inputs).last_hidden_state)
    out = model(
        **inputs, head_mask=torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]), output_attentions=True
    )
    assert torch.all(out.attentions[1][:, 0] == 0) and out.attentions[0][:, 0].sum() > 0
    with pytest.raises(ValueError, match=r"head_mask must have shape \(num_attention_heads,\)"):
        model(**inputs, head_mask=torch.ones(4))


# -- bad input -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model():
    return BertForSequenceClassification(small_config()).eval()


def test_sequence_longer_than_positions(tiny_model):
    with pytest.raises(
        ValueError, match="sequence length 33 is longer than max_position_embeddings=32"
    ):
        tiny_model(torch.ones(1, 33, dtype=torch.long))


def test_token_ids_outside_the_vocabulary(tiny_model):
    with pytest.raises(ValueError, match=r"input_ids must be in \[0, vocab_size=97\).*to 97"):
        tiny_model(torch.tensor([[1, 2, 97]]))
    with pytest.raises(ValueError, match="from -1"):
        tiny_model(torch.tensor([[1, -1, 3]]))


def test_token_types_outside_type_vocab(tiny_model):
    with pytest.raises(ValueError, match=r"token_type_ids must be in \[0, type_vocab_size=2\)"):
        tiny_model(torch.tensor([[1, 2, 3]]), token_type_ids=torch.tensor([[0, 1, 2]]))


def test_attention_mask_of_the_wrong_shape(tiny_model):
    with pytest.raises(
        ValueError, match=r"attention_mask must have the same shape as input_ids \(1, 3\)"
    ):
        tiny_model(torch.tensor([[1, 2, 3]]), attention_mask=torch.ones(1, 4))
    with pytest.raises(ValueError, match="token_type_ids must have the same shape"):
        tiny_model(torch.tensor([[1, 2, 3]]), token_type_ids=torch.zeros(3, dtype=torch.long))


def test_wrong_input_types(tiny_model):
    with pytest.raises(TypeError, match="input_ids must be a torch.Tensor"):
        tiny_model([[1, 2, 3]])
    with pytest.raises(TypeError, match="integer token ids"):
        tiny_model(torch.tensor([[1.0, 2.0]]))
    with pytest.raises(ValueError, match="must be 2-D"):
        tiny_model(torch.tensor([1, 2, 3]))
    with pytest.raises(TypeError, match="minibert.BertConfig"):
        BertModel({"hidden_size": 12})


def test_bad_labels(tiny_model):
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        tiny_model(ids, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="one class id per example"):
        tiny_model(ids, labels=torch.tensor([0, 1, 2]))
    mlm = BertForMaskedLM(small_config()).eval()
    with pytest.raises(ValueError, match=r"labels must have shape \(2, 3\)"):
        mlm(ids, labels=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 97\) or -100"):
        mlm(ids, labels=torch.tensor([[-100, 97, -100], [-100, -100, -100]]))
    with pytest.raises(ValueError, match="masked_positions must index into the sequence"):
        mlm(ids, masked_positions=torch.tensor([[0], [3]]))


def test_sequence_classification_loss_kinds():
    torch.manual_seed(6)
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    regression = BertForSequenceClassification(small_config(num_labels=1)).eval()
    out = regression(ids, labels=torch.tensor([0.5, -1.0]))
    torch.testing.assert_close(
        out.loss, ((out.logits.squeeze(-1) - torch.tensor([0.5, -1.0])) ** 2).mean()
    )
    multi = BertForSequenceClassification(small_config()).eval()
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = multi(ids, labels=targets)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, targets)
    torch.testing.assert_close(out.loss, expected)
    with pytest.raises(ValueError, match="multi-label classification needs labels of shape"):
        multi(ids, labels=torch.tensor([0.0, 1.0]))


# -- save / load -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_save_and_load_round_trip(tmp_path, cls):
    torch.manual_seed(7)
    config = small_config(id2label={0: "neg", 1: "neu", 2: "pos"})
    model = cls(config).eval()
    directory = model.save_pretrained(tmp_path / "saved")
    assert sorted(p.name for p in directory.iterdir()) == ["config.json", "model.safetensors"]
    saved_config = json.loads((directory / "config.json").read_text())
    assert saved_config["model_type"] == "bert"
    assert saved_config["architectures"] == [cls.__name__]
    keys = set(load_file(str(directory / "model.safetensors")))
    prefix = "" if cls is BertModel else "bert."
    assert f"{prefix}encoder.layer.1.attention.self.query.weight" in keys
    assert "cls.predictions.decoder.weight" not in keys  # tied weights stored once
    loaded = cls.from_pretrained(directory)
    assert not loaded.training
    assert loaded.config == config
    for (name, a), (_, b) in zip(
        model.state_dict().items(), loaded.state_dict().items(), strict=True
    ):
        assert torch.equal(a, b), name


def test_loading_never_unpickles(tmp_path, monkeypatch):
    model = BertForPreTraining(small_config())
    directory = model.save_pretrained(tmp_path / "saved")

    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    BertForPreTraining.from_pretrained(directory)


def test_encoder_checkpoint_into_a_task_model_and_back(tmp_path, caplog):
    torch.manual_seed(8)
    encoder = BertModel(small_config())
    directory = encoder.save_pretrained(tmp_path / "encoder")
    with caplog.at_level(logging.WARNING, logger="minibert.hf_names"):
        classifier = BertForSequenceClassification.from_pretrained(directory, num_labels=5)
    assert "classifier.weight" in caplog.text and "random initialisation" in caplog.text
    assert classifier.config.num_labels == 5 and classifier.classifier.out_features == 5
    torch.testing.assert_close(
        classifier.bert.layers[1].ffn.up.weight, encoder.layers[1].ffn.up.weight
    )
    pretraining = BertForPreTraining(small_config())
    pre_dir = pretraining.save_pretrained(tmp_path / "pretraining")
    bare = BertModel.from_pretrained(pre_dir)  # the heads' weights are skipped
    torch.testing.assert_close(bare.pooler.dense.weight, pretraining.bert.pooler.dense.weight)


def test_bad_save_directories(tmp_path):
    model = BertForMaskedLM(small_config())
    with pytest.raises(ValueError, match="is not a directory.*from_hf"):
        BertForMaskedLM.from_pretrained(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="has no config.json"):
        BertForMaskedLM.from_pretrained(empty)

    good = model.save_pretrained(tmp_path / "good")
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((good / "config.json").read_text())
    with pytest.raises(ValueError, match="has no model.safetensors"):
        BertForMaskedLM.from_pretrained(no_weights)
    (no_weights / "pytorch_model.bin").write_bytes(b"not opened")
    with pytest.raises(ValueError, match=r"pytorch_model.bin.*pickle format"):
        BertForMaskedLM.from_pretrained(no_weights)

    (no_weights / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        BertForMaskedLM.from_pretrained(no_weights)

    mismatched = tmp_path / "mismatched"
    model.save_pretrained(mismatched)
    config = json.loads((mismatched / "config.json").read_text())
    config["vocab_size"] = 120
    (mismatched / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ValueError, match=r"bert.embeddings.word.weight: checkpoint \(97, 24\) vs model \(120, 24\)"
    ):
        BertForMaskedLM.from_pretrained(mismatched)

    other = tmp_path / "other"
    model.save_pretrained(other)
    config = json.loads((other / "config.json").read_text())
    config["model_type"] = "roberta"
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="'roberta' model, not a BERT model"):
        BertForMaskedLM.from_pretrained(other)

    corrupt = tmp_path / "corrupt"
    model.save_pretrained(corrupt)
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(ValueError, match="could not read the weights"):
        BertForMaskedLM.from_pretrained(corrupt)


def test_missing_encoder_weights_and_unknown_keys_fail(tmp_path):
    model = BertForMaskedLM(small_config())
    directory = model.save_pretrained(tmp_path / "saved")
    tensors = load_file(str(directory / "model.safetensors"))
    del tensors["bert.encoder.layer.1.output.dense.weight"]
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(
        ValueError, match=r"lacks encoder weights: \['bert.layers.1.ffn.down.weight'\]"
    ):
        BertForMaskedLM.from_pretrained(directory)
    tensors["bert.encoder.layer.1.output.dense.weight"] = torch.zeros(24, 40)
    tensors["bert.encoder.layer.0.attention.self.rotary.weight"] = torch.zeros(2)
    save_file(tensors, str(directory / "model.safetensors"))
    with pytest.raises(ValueError, match="cannot place.*rotary"):
        BertForMaskedLM.from_pretrained(directory)


def test_output_positions_compute_the_last_layer_only_where_asked():
    torch.manual_seed(9)
    config = small_config()
    model = BertModel(config).eval()
    inputs = batch(config)
    inputs.pop("labels")
    full = model(**inputs)
    positions = torch.tensor([[0, 3, 7], [0, 1, 1], [0, 9, 2]])
    part = model(**inputs, output_positions=positions)
    assert part.last_hidden_state.shape == (3, 3, 24)
    expected = full.last_hidden_state.gather(1, positions[..., None].expand(-1, -1, 24))
    torch.testing.assert_close(part.last_hidden_state, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(part.pooler_output, full.pooler_output, rtol=1e-5, atol=1e-6)
    with_weights = model(**inputs, output_positions=positions, output_attentions=True)
    assert with_weights.attentions[-1].shape == (3, 3, 3, 10)  # 3 queries, 10 keys
    assert with_weights.attentions[0].shape == (3, 3, 10, 10)
    with pytest.raises(
        ValueError, match=r"output_positions must index into the sequence, \[0, 10\)"
    ):
        model(**inputs, output_positions=torch.tensor([[0], [10], [1]]))
    with pytest.raises(ValueError, match=r"output_positions must have shape \(batch=3, M\)"):
        model(**inputs, output_positions=torch.tensor([0, 1, 2]))


def test_sparse_last_layer_runs_the_last_layer_on_masked_tokens_only():
    torch.manual_seed(10)
    config = small_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config)
    inputs = batch(config)
    positions = torch.tensor([[2, 5], [2, 0], [2, 0]])
    seen = []
    hook = model.bert.layers[-1].ffn.up.register_forward_hook(
        lambda module, args, output: seen.append(tuple(args[0].shape))
    )
    model.train()(**inputs)
    model.train()(**inputs, masked_positions=positions)
    model.train()(**inputs, masked_positions=positions, sparse_last_layer=True)
    model.eval()(**inputs, masked_positions=positions, sparse_last_layer=True)
    hook.remove()
    # Every position unless switched on; then [CLS] for the pooler + the 2 positions per row.
    assert seen == [(3, 10, 24), (3, 10, 24), (3, 3, 24), (3, 3, 24)]


def test_sparse_layer_equals_the_layer_at_those_rows():
    from minibert.functional import attention_bias_from_padding
    from minibert.sparse import gather_positions, layer_at_positions

    torch.manual_seed(11)
    config = small_config()
    layer = BertModel(config).layers[0].eval()
    hidden = torch.randn(3, 10, 24)
    bias = attention_bias_from_padding(batch(config)["attention_mask"], torch.float32)
    positions = torch.tensor([[0, 3, 7], [0, 1, 1], [9, 2, 0]])
    full, _ = layer(hidden, bias)
    part, weights = layer_at_positions(layer, hidden, positions, bias, output_attentions=True)
    torch.testing.assert_close(part, gather_positions(full, positions), rtol=1e-5, atol=1e-6)
    assert weights.shape == (3, 3, 3, 10)


def test_a_batch_with_nothing_to_predict():
    config = small_config()
    model = BertForMaskedLM(config).train()
    inputs = batch(config)
    inputs["labels"] = torch.full_like(inputs["labels"], -100)
    out = model(**inputs)
    assert out.logits.shape == (3, 10, 97)
    assert torch.isnan(out.loss)  # 0 / 0, as in transformers
    positions = torch.zeros(3, 1, dtype=torch.long)  # the collator's width for an empty batch
    out = model(**inputs, masked_positions=positions, sparse_last_layer=True)
    assert out.logits.shape == (3, 1, 97) and torch.isnan(out.loss)
    nothing = torch.zeros(3, 0, dtype=torch.long)  # no column at all
    out = model(**inputs, masked_positions=nothing, sparse_last_layer=True)
    assert out.logits.shape == (3, 0, 97) and torch.isnan(out.loss)


def test_a_bf16_model_runs_every_path():
    config = small_config()
    model = BertForPreTraining(config).to(torch.bfloat16).eval()
    inputs = batch(config)
    for output_attentions in (False, True):
        out = model(
            **inputs, head_mask=torch.tensor([1.0, 0.0, 1.0]), output_attentions=output_attentions
        )
        assert out.prediction_logits.dtype == torch.bfloat16
        assert torch.isfinite(out.loss)


@pytest.mark.parametrize(
    "shard", ["../outside.safetensors", "sub/../../outside.safetensors", "/abs/outside.safetensors"]
)
def test_a_shard_index_cannot_point_outside_the_model_folder(tmp_path, shard):
    from minibert.model import read_safetensors_dir

    folder = tmp_path / "model"
    folder.mkdir()
    outside = tmp_path / "outside.safetensors"
    save_file({"w": torch.ones(2)}, str(outside))
    if shard.startswith("/"):
        shard = str(outside)  # an absolute path to a real file
    index = {"metadata": {}, "weight_map": {"w": shard}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ValueError, match="not a file inside the model folder"):
        read_safetensors_dir(folder)


def test_a_shard_index_inside_the_folder_loads(tmp_path):
    from minibert.model import read_safetensors_dir

    folder = tmp_path / "model"
    (folder / "shards").mkdir(parents=True)
    save_file({"a": torch.ones(2)}, str(folder / "part-1.safetensors"))
    save_file({"b": torch.zeros(3)}, str(folder / "shards" / "part-2.safetensors"))
    index = {"weight_map": {"a": "part-1.safetensors", "b": "shards/part-2.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    assert sorted(read_safetensors_dir(folder)) == ["a", "b"]


def test_torch_compile_traces_one_graph():
    """The value checks that read tensors (minibert.model.is_compiling guards them) stay out of
    a compiled graph: fullgraph=True fails on any graph break, and the numbers match."""
    torch.manual_seed(12)
    config = small_config()
    model = BertForPreTraining(config).eval()
    inputs = batch(config)
    positions = torch.tensor([[2, 5], [2, 0], [2, 0]])
    kwargs = dict(next_sentence_label=torch.tensor([0, 1, 1]), masked_positions=positions)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    out = compiled(**inputs, **kwargs, sparse_last_layer=True)
    expected = model(**inputs, **kwargs, sparse_last_layer=True)
    torch.testing.assert_close(out.loss, expected.loss)
    torch.testing.assert_close(out.prediction_logits, expected.prediction_logits)
