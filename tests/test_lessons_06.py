"""Lesson 06 (pretraining): the references agree with the library, and the notebook's helpers
measure what they say.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import pytest
import torch

from minibert.lessons import lesson06
from minibert.lessons.checking import get_exercise, run_check
from minibert.train.schedule import LRSchedule

MODULE = "minibert.lessons.lesson06"


@pytest.mark.parametrize("kind", ["linear", "cosine"])
@pytest.mark.parametrize("warmup", [0.0, 0.06, 0.1, 0.5])
@pytest.mark.parametrize("floor", [0.0, 0.1, 0.5])
def test_lr_reference_equals_the_trainers_schedule(kind, warmup, floor):
    schedule = LRSchedule(kind=kind, warmup=warmup, min_ratio=floor)
    for i in range(-5, 306):
        p = i / 300
        assert lesson06.solution_lr_factor(p, warmup, kind, floor) == pytest.approx(
            schedule.factor(p), abs=1e-12
        )


def test_masked_accuracy_reference_counts_only_labelled_positions():
    logits = torch.zeros(2, 4, 5)  # (B, T, V)
    logits[0, 0, 3] = 1.0  # right
    logits[0, 2, 1] = 1.0  # wrong (label 2)
    logits[1, 1, 0] = 1.0  # right, token id 0
    labels = torch.tensor([[3, -100, 2, -100], [-100, 0, -100, -100]])
    assert lesson06.solution_masked_accuracy(logits, labels) == pytest.approx(2 / 3)


def test_masked_accuracy_reference_matches_an_independent_count():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(5, 17, 13, generator=g)
    labels = torch.randint(0, 13, (5, 17), generator=g)
    labels[torch.rand(5, 17, generator=g) < 0.7] = -100
    right = total = 0
    for b in range(5):
        for t in range(17):
            if labels[b, t] != -100:
                total += 1
                right += int(int(logits[b, t].argmax()) == int(labels[b, t]))
    assert lesson06.solution_masked_accuracy(logits, labels) == pytest.approx(right / total)


@pytest.mark.parametrize("name", ["masked_accuracy", "lr_schedule"])
def test_each_mistake_is_named_by_its_own_name(name):
    ex = get_exercise(name, MODULE)
    assert len(ex.mistakes) >= 2
    for mistake, entry in ex.mistakes.items():
        outcome = run_check(ex, entry.fn)
        assert outcome.status == "failed", mistake
        assert outcome.mistake == mistake, (mistake, outcome.text)


def test_a_tensor_answer_is_accepted():
    def as_tensor(logits, labels):
        selected = labels != -100
        return ((logits.argmax(-1) == labels) & selected).sum() / selected.sum()

    assert run_check(get_exercise("masked_accuracy", MODULE), as_tensor).passed


def test_schedule_figure_draws_the_logged_rates():
    logged = [{"time": 1.0, "lr": 0.001}, {"time": 5.0, "lr": 0.002}]
    fig = lesson06.schedule_figure(
        lesson06.solution_lr_factor, peak_lr=0.003, warmup=0.1, logged=logged, time_budget=10
    )
    assert len(fig.data) == 2
    assert list(fig.data[1].x) == [0.1, 0.5]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cache_dir):
    from minibert.train.pretraining import pretrain

    out = tmp_path_factory.mktemp("lesson06") / "run"
    pretrain(
        out=out,
        overrides={
            "preset": "tiny",
            "max_steps": 2,
            "progress": False,
            "num_threads": 1,
            "train.eval_examples": 8,
            "eval_every": 1,
        },
        cache_dir=cache_dir,
    )
    return out


def test_heldout_logits_give_the_trainers_accuracy(tiny_run, cache_dir, monkeypatch):
    from minibert.train.evaluate import evaluate_run

    monkeypatch.setenv("MINIBERT_CACHE", str(cache_dir))
    logits, labels = lesson06.heldout_logits(tiny_run, count=8)
    assert logits.shape[:2] == labels.shape and logits.shape[0] == 8
    library = evaluate_run(tiny_run, eval_examples=8, precision="fp32", cache_dir=cache_dir)
    assert lesson06.solution_masked_accuracy(logits, labels) == pytest.approx(
        library["mlm_accuracy"], abs=1e-6
    )


def test_plateau_rows_read_a_run(tiny_run, monkeypatch, cache_dir):
    monkeypatch.setenv("MINIBERT_CACHE", str(cache_dir))
    rows = lesson06.plateau_rows({"tiny": tiny_run}, ["The [MASK] is here ."], num_sentences=2)
    (row,) = rows
    assert row["steps"] == 2
    assert len(row["entropy_by_layer"]) == 2 and len(row["guesses"]) == 1
    # The recipe's offset heads: layer 0 starts sharp on a neighbour (docs/recipe.md).
    assert row["neighbour_by_layer"][0] > 0.9
    assert row["entropy_by_layer"][0] < 0.2
