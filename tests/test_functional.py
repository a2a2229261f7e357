"""minibert.functional: each reference function equals the module path and `transformers`.

Also the attention-kernel switch (``BertConfig.attn_implementation``): eager and SDPA agree, the
eager path really runs in training when chosen, and the choice survives config.json both ways.
"""

from __future__ import annotations

import json
import math
import pathlib

import gensim
import pytest
import torch

import minibert
import minibert.attention
from minibert import BertConfig
from minibert.constants import IGNORE_INDEX
from minibert.data.examples import MaskingCollator
from minibert.data.tokenizer import train_wordpiece
from minibert.functional import (
    MaskKind,
    TokenMasking,
    attention_bias_from_padding,
    mask_tokens,
    mlm_loss,
    nsp_loss,
    positions_from_labels,
    pretraining_loss,
    scaled_dot_product_attention,
)
from minibert.hf import to_hf

transformers = pytest.importorskip("transformers")

LEE = pathlib.Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"


def small_config(**overrides) -> BertConfig:
    values = dict(
        vocab_size=97,
        hidden_size=24,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=40,
        max_position_embeddings=32,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    values.update(overrides)
    return BertConfig(**values)


def model_inputs(config: BertConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, config.vocab_size, (3, 12), generator=g)
    input_ids[:, 0] = 2  # [CLS]
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 8:] = 0
    input_ids[attention_mask == 0] = config.pad_token_id
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[:, 3] = input_ids[:, 3]
    labels[0, 6] = input_ids[0, 6]
    labels[2, 10] = input_ids[2, 10]
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


# -- attention ---------------------------------------------------------------------------------


def test_attention_bias_from_padding_values_and_shape():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    bias = attention_bias_from_padding(mask, torch.float32)
    assert bias.shape == (2, 1, 1, 3) and bias.dtype == torch.float32
    assert bias[0, 0, 0].tolist() == [0.0, 0.0, torch.finfo(torch.float32).min]
    assert (bias[1] == 0).all()
    assert (
        attention_bias_from_padding(mask, torch.bfloat16).min() == torch.finfo(torch.bfloat16).min
    )


def test_scaled_dot_product_attention_equals_torch_and_transformers():
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g) for _ in range(3))  # (B, nh, T, hs)
    bias = attention_bias_from_padding(torch.tensor([[1, 1, 1, 0, 0], [1] * 5]), torch.float32)
    output, weights = scaled_dot_product_attention(q, k, v, bias)
    assert output.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5))
    assert (weights[0, :, :, 3:] == 0).all()  # padding keys get no weight
    fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    torch.testing.assert_close(output, fused, rtol=1e-5, atol=1e-6)

    from transformers.models.bert.modeling_bert import eager_attention_forward

    module = torch.nn.Module().eval()
    hf_output, hf_weights = eager_attention_forward(module, q, k, v, bias, dropout=0.0)
    torch.testing.assert_close(output.transpose(1, 2), hf_output, rtol=0, atol=1e-6)
    torch.testing.assert_close(weights, hf_weights, rtol=0, atol=1e-6)

    # A head mask multiplies each head's weights (and so its output); M != T queries work.
    head_mask = torch.tensor([1.0, 0.0, 0.5])
    masked, masked_weights = scaled_dot_product_attention(q, k, v, bias, head_mask=head_mask)
    torch.testing.assert_close(masked_weights, weights * head_mask.view(1, 3, 1, 1))
    torch.testing.assert_close(masked, output * head_mask.view(1, 3, 1, 1))
    part, part_weights = scaled_dot_product_attention(q[:, :, :2], k, v, bias)
    assert part.shape == (2, 3, 2, 4) and part_weights.shape == (2, 3, 2, 5)
    torch.testing.assert_close(part, output[:, :, :2])


def test_dropout_only_in_training():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 6, 4, generator=g) for _ in range(3))
    plain, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    torch.testing.assert_close(plain, scaled_dot_product_attention(q, k, v)[0])
    torch.manual_seed(0)
    _, dropped = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=True)
    assert (dropped == 0).any()


def test_the_attention_module_calls_the_reference(monkeypatch):
    """MultiHeadSelfAttention's eager path is functional.scaled_dot_product_attention."""
    config = small_config()
    attention = minibert.BertModel(config).layers[0].attention.eval()
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return scaled_dot_product_attention(*args, **kwargs)

    monkeypatch.setattr(minibert.attention, "scaled_dot_product_attention", spy)
    x = torch.randn(2, 7, 24)
    out, weights = attention(x, output_attentions=True)
    assert len(calls) == 1 and weights.shape == (2, 3, 7, 7)
    # By hand from the module's own projections and the reference function.
    q, k, v = (
        layer(x).view(2, 7, 3, 8).transpose(1, 2)
        for layer in (attention.query, attention.key, attention.value)
    )
    context, expected_weights = scaled_dot_product_attention(q, k, v)
    expected = attention.output(context.transpose(1, 2).reshape(2, 7, 24))
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights, expected_weights)


# -- the attention kernel switch --------------------------------------------------------------------


def test_attn_implementation_is_validated():
    assert BertConfig().attn_implementation == "sdpa"
    with pytest.raises(ValueError, match="attn_implementation='flash'.*'eager'.*'sdpa'"):
        BertConfig(attn_implementation="flash")
    assert BertConfig.from_dict({"attn_implementation": None}).attn_implementation == "sdpa"
    loose = BertConfig.from_dict({"attn_implementation": "flash_attention_2"}, strict=False)
    assert loose.attn_implementation == "sdpa"  # same weights, our default kernel
    model = minibert.BertModel(small_config())
    with pytest.raises(ValueError, match="attn_implementation"):
        model.set_attn_implementation("flex")


@pytest.mark.parametrize("class_name", ["BertForPreTraining", "BertForMaskedLM"])
def test_eager_and_sdpa_kernels_give_the_same_outputs_and_gradients(class_name):
    torch.manual_seed(3)
    config = small_config()
    inputs = model_inputs(config)
    positions, _ = positions_from_labels(inputs["labels"])
    if class_name == "BertForPreTraining":
        inputs["next_sentence_label"] = torch.tensor([0, 1, 1])
    results = {}
    weights = getattr(minibert, class_name)(config).state_dict()
    for kernel in ("sdpa", "eager"):
        model = getattr(minibert, class_name)(config.replace(attn_implementation=kernel))
        model.load_state_dict(weights)
        out = model.train()(**inputs, masked_positions=positions, sparse_last_layer=True)
        out.loss.backward()
        grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        results[kernel] = (out.loss.detach(), grads)
    torch.testing.assert_close(results["eager"][0], results["sdpa"][0], rtol=1e-5, atol=1e-6)
    for name, grad in results["sdpa"][1].items():
        torch.testing.assert_close(results["eager"][1][name], grad, rtol=1e-4, atol=1e-6)


def test_eager_kernel_runs_in_training_and_sdpa_does_not(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(1)
        return scaled_dot_product_attention(*args, **kwargs)

    monkeypatch.setattr(minibert.attention, "scaled_dot_product_attention", spy)
    config = small_config()
    inputs = model_inputs(config)
    model = minibert.BertForMaskedLM(config).train()
    model(**inputs).loss.backward()
    assert calls == []  # sdpa: the fused kernel, never the written-out steps
    model(**inputs, output_attentions=True)
    assert len(calls) == 2  # asking for the weights runs that call eagerly, every layer
    calls.clear()
    model.set_attn_implementation("eager")
    model(**inputs).loss.backward()
    assert len(calls) == 2  # every layer took the written-out path, in training
    assert model.config.attn_implementation == "eager"


def test_attn_implementation_round_trips_through_config_json(tmp_path):
    config = small_config(attn_implementation="eager")
    config.to_json_file(tmp_path / "config.json")
    assert BertConfig.from_json_file(tmp_path / "config.json") == config

    model = minibert.BertForMaskedLM(config)
    directory = model.save_pretrained(tmp_path / "eager")
    saved = json.loads((directory / "config.json").read_text())
    assert saved["attn_implementation"] == "eager"
    theirs = transformers.AutoModelForMaskedLM.from_pretrained(str(directory))
    assert theirs.config._attn_implementation == "eager"
    ours = minibert.BertForMaskedLM.from_pretrained(directory)
    assert ours.config.attn_implementation == "eager"
    # transformers' own save (no such key in its config.json) reads as the default kernel,
    # and from_hf carries the kernel of the transformers object over.
    theirs.save_pretrained(tmp_path / "hf")
    assert minibert.BertForMaskedLM.from_pretrained(tmp_path / "hf").config.attn_implementation
    assert minibert.from_hf(theirs).config.attn_implementation == "eager"
    assert to_hf(ours).config._attn_implementation == "eager"
    assert to_hf(ours, attn_implementation="sdpa").config._attn_implementation == "sdpa"


# -- masked-LM corruption ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    lines = [line for line in LEE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return train_wordpiece(lines[:120], vocab_size=1200)


def random_batch(tokenizer, rows: int, width: int = 128, seed: int = 0):
    """[CLS] random non-special tokens [SEP] [PAD]..., lengths varied."""
    g = torch.Generator().manual_seed(seed)
    special = set(tokenizer.all_special_ids)
    normal = torch.tensor([i for i in range(len(tokenizer)) if i not in special])
    ids = normal[torch.randint(len(normal), (rows, width), generator=g)]
    lengths = torch.randint(16, width + 1, (rows,), generator=g)
    positions = torch.arange(width)[None, :]
    ids[:, 0] = tokenizer.cls_token_id
    ids = torch.where(positions == (lengths - 1)[:, None], tokenizer.sep_token_id, ids)
    attention_mask = (positions < lengths[:, None]).long()
    ids = torch.where(attention_mask.bool(), ids, tokenizer.pad_token_id)
    return ids, attention_mask


def special_mask(tokenizer, ids):
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    return torch.isin(ids, special)


def masking_rates(original, masking: TokenMasking, candidates, mask_id):
    """(selection rate, MASK share, RANDOM share, KEPT share) from what the inputs show."""
    selected = masking.labels != IGNORE_INDEX
    n = selected.sum().item()
    became_mask = selected & (masking.input_ids == mask_id)
    unchanged = selected & (masking.input_ids == original)
    changed = selected & ~became_mask & ~unchanged
    return (
        n / candidates.sum().item(),
        became_mask.sum().item() / n,
        changed.sum().item() / n,
        unchanged.sum().item() / n,
    )


def test_mask_tokens_kinds_labels_and_inputs_agree(tokenizer):
    ids, attention_mask = random_batch(tokenizer, 64)
    not_selectable = special_mask(tokenizer, ids) | (attention_mask == 0)
    g = torch.Generator().manual_seed(0)
    masking = mask_tokens(
        ids, not_selectable, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
        generator=g,
    )  # fmt: skip
    kind = masking.kind
    assert masking.input_ids.shape == masking.labels.shape == kind.shape == ids.shape
    assert torch.equal(masking.selected, masking.labels != IGNORE_INDEX)
    assert not (masking.selected & not_selectable).any()
    assert torch.equal(masking.labels[masking.selected], ids[masking.selected])
    assert (masking.input_ids[kind == MaskKind.MASK] == tokenizer.mask_token_id).all()
    assert torch.equal(masking.input_ids[kind == MaskKind.KEPT], ids[kind == MaskKind.KEPT])
    assert torch.equal(masking.input_ids[kind == MaskKind.NONE], ids[kind == MaskKind.NONE])
    assert set(kind.unique().tolist()) == {0, 1, 2, 3}
    # The same generator state gives the same masks.
    again = mask_tokens(
        ids, not_selectable, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    assert torch.equal(again.input_ids, masking.input_ids) and torch.equal(again.kind, kind)


def test_mask_tokens_statistics_match_transformers_collator(tokenizer):
    """Selection rate and 80/10/10 split: ours and DataCollatorForLanguageModeling's agree
    (statistics, not random streams) over ~160k candidate tokens."""
    ids, attention_mask = random_batch(tokenizer, 2000, seed=1)
    candidates = ~special_mask(tokenizer, ids) & (attention_mask == 1)
    torch.manual_seed(0)
    ours = mask_tokens(
        ids, ~candidates, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id
    )
    collator = transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    torch.manual_seed(0)
    hf_ids, hf_labels = collator.torch_mask_tokens(ids.clone(), special_tokens_mask=~candidates)
    hf = TokenMasking(hf_ids, hf_labels, torch.zeros_like(ids))
    mask_id = tokenizer.mask_token_id
    ours_rates = masking_rates(ids, ours, candidates, mask_id)
    hf_rates = masking_rates(ids, hf, candidates, mask_id)
    for mine, theirs, expected in zip(ours_rates, hf_rates, (0.15, 0.8, 0.1, 0.1), strict=True):
        assert abs(mine - expected) < 0.01 and abs(theirs - expected) < 0.01
        assert abs(mine - theirs) < 0.015
    # The kinds say the same as the inputs: a random replacement equal to the original token
    # counts as RANDOM in `kind` but looks unchanged, so compare within one vocabulary's chance.
    kinds = torch.bincount(ours.kind[ours.selected], minlength=4)[1:].double() / ours.selected.sum()
    torch.testing.assert_close(
        kinds, torch.tensor(ours_rates[1:], dtype=torch.float64), atol=2e-3, rtol=0
    )


def test_fixed_count_and_whole_words(tokenizer):
    ids, attention_mask = random_batch(tokenizer, 200, seed=2)
    candidates = ~special_mask(tokenizer, ids) & (attention_mask == 1)
    fixed = mask_tokens(
        ids, ~candidates, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
        max_predictions=12, generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    budget = torch.floor(candidates.sum(1) * 0.15 + 0.5).clamp(1, 12)
    assert torch.equal(fixed.selected.sum(1), budget.long())

    # Words of three tokens each: every word is selected whole and corrupted one way.
    word_ids = torch.arange(ids.shape[1]).div(3, rounding_mode="floor").expand_as(ids)
    words = mask_tokens(
        ids, ~candidates, vocab_size=len(tokenizer), mask_token_id=tokenizer.mask_token_id,
        word_ids=word_ids, generator=torch.Generator().manual_seed(1),
    )  # fmt: skip
    for row in range(ids.shape[0]):
        for word in range(1, ids.shape[1] // 3):  # word 0 holds [CLS]
            span = slice(3 * word, 3 * word + 3)
            usable = candidates[row, span]
            if usable.all():
                assert len(set(words.kind[row, span].tolist())) == 1


def test_collator_masks_with_the_reference_function(tokenizer):
    ids, attention_mask = random_batch(tokenizer, 32, seed=3)
    collator = MaskingCollator(tokenizer, seed=5, max_predictions=20)
    from_collator = collator.mask(ids, attention_mask)
    direct = mask_tokens(
        ids,
        ~attention_mask.bool() | special_mask(tokenizer, ids),
        vocab_size=collator.vocab_size,
        mask_token_id=tokenizer.mask_token_id,
        max_predictions=20,
        generator=torch.Generator().manual_seed(5),
        replacement_ids=collator._replacement_ids,
    )
    for field in ("input_ids", "labels", "kind"):
        assert torch.equal(getattr(from_collator, field), getattr(direct, field)), field
    collator.reseed(5)
    assert torch.equal(collator.mask_tokens(ids, attention_mask)[1], direct.labels)


# -- positions --------------------------------------------------------------------------------


def test_positions_from_labels():
    labels = torch.tensor([[-100, 7, -100, 9], [-100, -100, -100, -100], [-100, 5, 6, 8]])
    positions, real = positions_from_labels(labels)
    assert positions.tolist() == [[1, 3, 0], [0, 0, 0], [1, 2, 3]]
    assert real.tolist() == [[True, True, False], [False] * 3, [True] * 3]
    assert torch.equal(labels.gather(1, positions)[real], labels[labels != -100])
    assert positions_from_labels(labels, 4)[0].shape == (3, 4)
    assert positions_from_labels(torch.full((2, 3), -100))[0].shape == (2, 0)


# -- losses -----------------------------------------------------------------------------------


def test_losses_equal_the_heads_and_transformers():
    torch.manual_seed(4)
    config = small_config()
    inputs = model_inputs(config)
    labels = inputs.pop("labels")
    nsp_labels = torch.tensor([0, 1, 1])
    ours = minibert.BertForPreTraining(config).eval()
    out = ours(**inputs, labels=labels, next_sentence_label=nsp_labels)
    mlm = mlm_loss(out.prediction_logits, labels)
    nsp = nsp_loss(out.seq_relationship_logits, nsp_labels)
    torch.testing.assert_close(out.mlm_loss, mlm)
    torch.testing.assert_close(out.nsp_loss, nsp)
    torch.testing.assert_close(out.loss, pretraining_loss(mlm, nsp))
    theirs = to_hf(ours)(**inputs, labels=labels, next_sentence_label=nsp_labels)
    torch.testing.assert_close(pretraining_loss(mlm, nsp), theirs.loss, rtol=0, atol=1e-5)

    # Written out: the mean negative log-likelihood over the labelled positions.
    chosen = labels != IGNORE_INDEX
    log_probs = out.prediction_logits.log_softmax(-1)[chosen]  # (N, V)
    by_hand = -log_probs.gather(1, labels[chosen][:, None]).mean()
    torch.testing.assert_close(mlm, by_hand)
    nsp_by_hand = -out.seq_relationship_logits.log_softmax(-1)[torch.arange(3), nsp_labels].mean()
    torch.testing.assert_close(nsp, nsp_by_hand)

    # The same loss at masked positions only, (B, M, V) logits against gathered labels.
    positions, _ = positions_from_labels(labels)
    sparse = ours(**inputs, labels=labels, masked_positions=positions)
    torch.testing.assert_close(mlm_loss(sparse.prediction_logits, labels.gather(1, positions)), mlm)
    assert math.isnan(mlm_loss(torch.zeros(2, 5), torch.full((2,), IGNORE_INDEX)).item())
