"""Fine-tuning metrics: accuracy, per-class and macro F1, confusion matrices, entity-level F1.

Written out in plain Python so a student can read every formula:

* accuracy: the share of predictions equal to the label;
* per class ``c``: precision = TP / (TP + FP), recall = TP / (TP + FN),
  F1 = 2 * precision * recall / (precision + recall) (0 when both are 0);
* macro F1: the unweighted mean of the per-class F1 over the classes that occur in the labels or
  the predictions (scikit-learn's ``average="macro"`` convention), so a rare class counts as much
  as a frequent one. GLUE-style tasks with skewed classes report it next to accuracy;
* entity-level F1 for BIO tagging (CoNLL-2003, Tjong Kim Sang & De Meulder 2003): a predicted
  entity counts only if its type and both of its boundaries match a gold entity. Computed with
  ``seqeval`` in its default mode, which reproduces the ``conlleval`` script behind the NER
  results of Devlin et al. (2019, Sec. 5.3).

The confusion matrix has gold labels as rows and predictions as columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ClassScores",
    "ClassificationMetrics",
    "accuracy",
    "classification_metrics",
    "confusion_matrix",
    "entity_metrics",
    "macro_f1",
    "require_seqeval",
]


@dataclass
class ClassScores:
    """Precision, recall and F1 of one class, and how many gold examples it has."""

    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class ClassificationMetrics:
    """Everything :func:`classification_metrics` computes for one split."""

    labels: list[str]
    accuracy: float
    macro_f1: float
    confusion: list[list[int]]  # [gold][predicted] counts
    per_class: dict[str, ClassScores] = field(default_factory=dict)
    count: int = 0

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the form saved in ``confusion_matrix.json`` and ``results.json``)."""
        return {
            "labels": list(self.labels),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "count": self.count,
            "confusion": [list(row) for row in self.confusion],
            "per_class": {name: vars(scores) for name, scores in self.per_class.items()},
        }


def _check_pairs(gold: Sequence[int], predicted: Sequence[int]) -> None:
    if len(gold) != len(predicted):
        raise ValueError(
            f"gold and predicted labels must have the same length, got {len(gold)} and "
            f"{len(predicted)}"
        )


def accuracy(gold: Sequence[int], predicted: Sequence[int]) -> float:
    """The share of positions where ``predicted`` equals ``gold`` (0.0 for no examples)."""
    _check_pairs(gold, predicted)
    if not gold:
        return 0.0
    return sum(int(g == p) for g, p in zip(gold, predicted, strict=True)) / len(gold)


def confusion_matrix(
    gold: Sequence[int], predicted: Sequence[int], num_labels: int
) -> list[list[int]]:
    """``matrix[g][p]``: how many examples of gold class ``g`` were predicted as ``p``."""
    _check_pairs(gold, predicted)
    matrix = [[0] * num_labels for _ in range(num_labels)]
    for g, p in zip(gold, predicted, strict=True):
        if not (0 <= g < num_labels and 0 <= p < num_labels):
            raise ValueError(f"label ids must be in [0, {num_labels}), got gold {g}, predicted {p}")
        matrix[g][p] += 1
    return matrix


def _per_class(matrix: list[list[int]]) -> list[ClassScores]:
    n = len(matrix)
    scores = []
    for c in range(n):
        tp = matrix[c][c]
        support = sum(matrix[c])  # gold examples of c (TP + FN)
        predicted = sum(matrix[g][c] for g in range(n))  # predictions of c (TP + FP)
        precision = tp / predicted if predicted else 0.0
        recall = tp / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.append(ClassScores(precision, recall, f1, support))
    return scores


def _macro_from_matrix(matrix: list[list[int]], scores: list[ClassScores]) -> float:
    n = len(matrix)
    # Classes that never occur, neither as gold nor as prediction, have no defined F1.
    present = [c for c in range(n) if scores[c].support or any(matrix[g][c] for g in range(n))]
    if not present:
        return 0.0
    return sum(scores[c].f1 for c in present) / len(present)


def macro_f1(gold: Sequence[int], predicted: Sequence[int], num_labels: int) -> float:
    """The unweighted mean F1 over the classes present in ``gold`` or ``predicted``."""
    matrix = confusion_matrix(gold, predicted, num_labels)
    return _macro_from_matrix(matrix, _per_class(matrix))


def classification_metrics(
    gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]
) -> ClassificationMetrics:
    """Accuracy, macro F1, the confusion matrix and per-class scores in one pass."""
    matrix = confusion_matrix(gold, predicted, len(labels))
    scores = _per_class(matrix)
    return ClassificationMetrics(
        labels=list(labels),
        accuracy=accuracy(gold, predicted),
        macro_f1=_macro_from_matrix(matrix, scores),
        confusion=matrix,
        per_class=dict(zip(labels, scores, strict=True)),
        count=len(gold),
    )


def require_seqeval() -> Any:
    """Import ``seqeval`` or say how to install it (it is in minibert's ``eval`` extra)."""
    try:
        import seqeval.metrics
    except ImportError as err:
        raise ImportError(
            "entity-level F1 for tagging tasks needs seqeval: pip install 'minibert[eval]' "
            "(or pip install seqeval)"
        ) from err
    return seqeval.metrics


def entity_metrics(
    gold_tags: Sequence[Sequence[str]], predicted_tags: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Entity-level (span) precision, recall and micro F1 of BIO tag sequences, with seqeval.

    Returns ``entity_precision``, ``entity_recall``, ``entity_f1`` and ``entities`` (the number
    of gold entities). Every sentence's two tag lists must have the same length.
    """
    if len(gold_tags) != len(predicted_tags):
        raise ValueError(
            f"{len(gold_tags)} gold sentences but {len(predicted_tags)} predicted ones"
        )
    for i, (g, p) in enumerate(zip(gold_tags, predicted_tags, strict=True)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted tags")
    metrics = require_seqeval()
    gold = [list(s) for s in gold_tags]
    pred = [list(s) for s in predicted_tags]
    report = metrics.classification_report(gold, pred, output_dict=True, zero_division=0)
    micro = report.get(
        "micro avg", {"precision": 0.0, "recall": 0.0, "f1-score": 0.0, "support": 0}
    )
    return {
        "entity_precision": float(micro["precision"]),
        "entity_recall": float(micro["recall"]),
        "entity_f1": float(micro["f1-score"]),
        "entities": int(micro["support"]),
    }
