"""Lesson 09 (attention analysis): the references agree with minibert.inspect on a real model,
and the notebook's helpers say what they claim.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from minibert import inspect
from minibert.inspect.heads import CLASS_THRESHOLDS
from minibert.inspect.heldout import heldout_sentences
from minibert.lessons import lesson09


@pytest.fixture(scope="module")
def minilm():
    return inspect.load_model("minilm")


@pytest.fixture(scope="module")
def texts():
    return heldout_sentences(6)


@pytest.fixture(scope="module")
def stats(minilm, texts):
    return inspect.head_statistics(minilm, texts)


@pytest.fixture(scope="module")
def batch(minilm, texts):
    return lesson09.attention_batch(minilm, texts)


def test_attention_batch_rows_are_distributions(batch, minilm):
    b, layers, heads, t, _ = batch.weights.shape
    assert (layers, heads) == (minilm.config.num_hidden_layers, minilm.config.num_attention_heads)
    assert tuple(batch.attention_mask.shape) == (b, t)
    assert np.allclose(batch.weights.sum(-1).numpy(), 1.0, atol=1e-4)
    # padded keys get no weight
    pad_keys = (~batch.attention_mask.bool()).double()[:, None, None, None, :]  # (B,1,1,1,T)
    assert float((batch.weights * pad_keys).abs().max()) < 1e-6


def test_entropy_reference_matches_head_statistics(batch, stats):
    for layer in range(batch.weights.shape[1]):
        mine = lesson09.solution_head_entropy(batch.layer(layer), batch.attention_mask)
        assert np.allclose(mine.numpy(), stats.metrics["entropy"][layer], atol=1e-5)


def test_previous_weight_reference_matches_head_statistics(batch, stats):
    for layer in range(batch.weights.shape[1]):
        mine = lesson09.solution_previous_weight(batch.layer(layer), batch.attention_mask)
        assert np.allclose(mine.numpy(), stats.metrics["previous"][layer], atol=1e-5)


def test_classify_reference_matches_the_library_on_every_head(stats):
    layers, heads = stats.classes.shape
    for layer in range(layers):
        for head in range(heads):
            ours = lesson09.solution_classify_head(
                lesson09.stats_of_head(stats, layer, head), CLASS_THRESHOLDS
            )
            assert ours == stats.classes[layer, head], (layer, head)


def test_minilm_has_a_previous_token_head(stats):
    # MiniLM (real pretraining) has a head that looks one token back: the lesson shows it.
    assert stats.metrics["previous"].max() > CLASS_THRESHOLDS["positional"]
    counts = lesson09.class_counts(stats)
    assert sum(counts.values()) == stats.classes.size
    assert counts["previous-token"] >= 1


def test_first_step_over():
    rows = [{"step": 0, "x": 0.1}, {"step": 5, "x": 0.6}, {"step": 9, "x": 0.7}]
    assert lesson09.first_step_over(rows, "x", 0.5) == 5
    assert lesson09.first_step_over(rows, "x", 0.9) is None


def test_entropy_bits():
    assert lesson09.entropy_bits(np.log(8)) == pytest.approx(3.0)
