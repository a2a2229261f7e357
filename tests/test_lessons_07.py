"""Lesson 07 (fine-tuning, classification): the references agree with the library, and the
notebook's helpers read runs correctly.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest
import torch

from minibert.config import BertConfig
from minibert.heads import BertForSequenceClassification
from minibert.lessons import lesson07
from minibert.lessons.checking import get_exercise, run_check
from minibert.train.metrics import classification_metrics, macro_f1

MODULE = "minibert.lessons.lesson07"


def test_macro_f1_reference_equals_the_library_on_random_labels():
    rng = random.Random(0)
    for _ in range(300):
        n = rng.randint(2, 8)
        size = rng.randint(1, 50)
        gold = [rng.randrange(n) for _ in range(size)]
        predicted = [rng.randrange(n) if rng.random() < 0.6 else g for g in gold]
        assert lesson07.solution_macro_f1(gold, predicted, n) == pytest.approx(
            macro_f1(gold, predicted, n), abs=1e-12
        )


def test_macro_f1_reference_by_hand():
    # Class 0: P = 3/4, R = 3/4 (F1 3/4); class 1: P = 1/3, R = 1/2 (F1 2/5);
    # class 2: P = 1, R = 1/2 (F1 2/3).
    gold = [0, 0, 0, 0, 1, 1, 2, 2]
    predicted = [0, 0, 0, 1, 1, 0, 2, 1]
    expected = (3 / 4 + 2 / 5 + 2 / 3) / 3
    assert lesson07.solution_macro_f1(gold, predicted, 3) == pytest.approx(expected)


def test_head_reference_equals_the_models_logits():
    torch.manual_seed(0)
    config = BertConfig.preset("tiny", vocab_size=50, num_labels=4)
    model = BertForSequenceClassification(config).eval()
    ids = torch.randint(5, 50, (3, 11))
    with torch.no_grad():
        hidden = model.bert(ids).last_hidden_state  # (B, T, H)
        mine = lesson07.solution_classifier_logits(
            hidden,
            model.bert.pooler.dense.weight,
            model.bert.pooler.dense.bias,
            model.classifier.weight,
            model.classifier.bias,
        )
        theirs = model(ids).logits
    torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("name", ["macro_f1", "classifier_head"])
def test_each_mistake_is_named_by_its_own_name(name):
    ex = get_exercise(name, MODULE)
    assert len(ex.mistakes) >= 2
    for mistake, entry in ex.mistakes.items():
        outcome = run_check(ex, entry.fn)
        assert outcome.status == "failed", mistake
        assert outcome.mistake == mistake, (mistake, outcome.text)


def test_macro_f1_as_a_tensor_or_numpy_number_is_accepted():
    def numpy_answer(gold, predicted, num_labels):
        import numpy as np

        return np.float64(lesson07.solution_macro_f1(gold, predicted, num_labels))

    assert run_check(get_exercise("macro_f1", MODULE), numpy_answer).status in ("passed",)


def _fake_run(tmp_path):
    labels = ["a", "b", "c"]
    gold = [0, 0, 1, 1, 2, 2, 2]
    predicted = [0, 1, 1, 2, 2, 2, 0]
    lines = [
        {"split": "test", "label": labels[g], "prediction": labels[p], "text": f"t{i}"}
        for i, (g, p) in enumerate(zip(gold, predicted, strict=True))
    ]
    lines.insert(0, {"split": "validation", "label": "a", "prediction": "c", "text": "v"})
    text = "\n".join(json.dumps(line) for line in lines) + '\n{"split": "te'  # partial line
    (tmp_path / "predictions.jsonl").write_text(text, encoding="utf-8")
    metrics = classification_metrics(gold, predicted, labels)
    report = SimpleNamespace(
        path=tmp_path,
        labels=labels,
        splits={"test": {"labels": labels, "confusion": metrics.confusion}},
    )
    return report, gold, predicted


def test_gold_and_predicted_read_the_predictions_file(tmp_path):
    report, gold, predicted = _fake_run(tmp_path)
    assert lesson07.gold_and_predicted(report, "test") == (gold, predicted)
    assert lesson07.gold_and_predicted(report, "validation") == ([0], [2])


def test_worst_confusions_are_off_diagonal_and_sorted(tmp_path):
    report, _, _ = _fake_run(tmp_path)
    pairs = lesson07.worst_confusions(report, top=10)
    assert all(g != p for g, p, _ in pairs)
    assert sorted(pairs) == sorted([("a", "b", 1), ("b", "c", 1), ("c", "a", 1)])


def test_few_shot_figure_has_one_line_per_init():
    fig = lesson07.few_shot_figure({"x": [(16, 0.1), (64, 0.2)], "y": [(16, 0.3)]}, all_examples=64)
    assert [t.name for t in fig.data] == ["x", "y"]
    assert list(fig.data[0].x) == [16, 64]


def test_repeated_weight_warnings_show_once():
    import logging

    once = lesson07._EachMessageOnce()
    record = logging.LogRecord(
        "minibert.hf_names", logging.WARNING, "", 0, "no weights for %s", ("x",), None
    )
    again = logging.LogRecord(
        "minibert.hf_names", logging.WARNING, "", 0, "no weights for %s", ("x",), None
    )
    other = logging.LogRecord(
        "minibert.hf_names", logging.WARNING, "", 0, "no weights for %s", ("y",), None
    )
    assert once.filter(record) and not once.filter(again) and once.filter(other)
