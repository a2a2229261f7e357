"""Fine-tuning metrics against independent references: scikit-learn and seqeval."""

from __future__ import annotations

import random

import pytest

from minibert.train.metrics import (
    accuracy,
    classification_metrics,
    confusion_matrix,
    entity_metrics,
    macro_f1,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(6))
def test_accuracy_macro_f1_and_confusion_match_scikit_learn(seed):
    rng = random.Random(seed)
    num_labels = rng.randint(2, 6)
    n = rng.randint(1, 60)
    # Skewed labels, so some classes are rare or missing from one side.
    gold = [min(int(rng.expovariate(0.8)), num_labels - 1) for _ in range(n)]
    predicted = [g if rng.random() < 0.5 else rng.randrange(num_labels) for g in gold]
    assert accuracy(gold, predicted) == pytest.approx(
        sklearn_metrics.accuracy_score(gold, predicted)
    )
    assert macro_f1(gold, predicted, num_labels) == pytest.approx(
        sklearn_metrics.f1_score(gold, predicted, average="macro", zero_division=0)
    )
    assert (
        confusion_matrix(gold, predicted, num_labels)
        == sklearn_metrics.confusion_matrix(
            gold, predicted, labels=list(range(num_labels))
        ).tolist()
    )
    names = [f"c{i}" for i in range(num_labels)]
    report = classification_metrics(gold, predicted, names)
    precision, recall, f1, support = sklearn_metrics.precision_recall_fscore_support(
        gold, predicted, labels=list(range(num_labels)), zero_division=0
    )
    for i, name in enumerate(names):
        scores = report.per_class[name]
        assert scores.precision == pytest.approx(precision[i])
        assert scores.recall == pytest.approx(recall[i])
        assert scores.f1 == pytest.approx(f1[i])
        assert scores.support == support[i]
    assert report.count == n
    assert report.as_dict()["confusion"] == report.confusion


def test_hand_computed_macro_f1():
    # class 0: TP 1, FP 1, FN 1 -> F1 0.5; class 1: TP 1, FP 1, FN 1 -> 0.5; class 2 absent.
    gold, predicted = [0, 0, 1, 1], [0, 1, 1, 0]
    assert macro_f1(gold, predicted, 3) == pytest.approx(0.5)
    assert accuracy(gold, predicted) == pytest.approx(0.5)


def test_bad_metric_input_is_a_clear_error():
    with pytest.raises(ValueError, match="same length"):
        accuracy([0, 1], [0])
    with pytest.raises(ValueError, match=r"label ids must be in \[0, 2\)"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="sentence 0"):
        entity_metrics([["O", "B-X"]], [["O"]])
    assert accuracy([], []) == 0.0


def test_entity_metrics_match_seqeval_and_count_spans_not_tokens():
    from seqeval.metrics import f1_score, precision_score, recall_score

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"]]
    # The PER span is cut short: no credit at all at the entity level, though 3 of its 4
    # tokens (and the whole LOC) are right.
    predicted = [["B-PER", "O", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "I-ORG"]]
    scores = entity_metrics(gold, predicted)
    assert scores["entity_precision"] == pytest.approx(precision_score(gold, predicted))
    assert scores["entity_recall"] == pytest.approx(recall_score(gold, predicted))
    assert scores["entity_f1"] == pytest.approx(f1_score(gold, predicted))
    assert scores["entity_precision"] == pytest.approx(2 / 3)
    assert scores["entity_recall"] == pytest.approx(2 / 3)
    assert scores["entities"] == 3
    perfect = entity_metrics(gold, gold)
    assert perfect["entity_f1"] == 1.0
