"""What a fine-tuning run reports, and the files it writes next to pretraining's layout.

    runs/<name>/
      run.json, metrics.jsonl, tokenizer/, checkpoints/, final/   (as for pretraining)
      results.json            final metrics on validation (and test) of final/
      predictions.jsonl       one line per validation/test example: gold, prediction, scores
      confusion_matrix.json   gold x predicted counts and per-class scores per split

A cross-validation writes one such run per fold (``fold-<k>/``) and, at its top, a
``run.json`` of kind ``finetune-cv`` and a ``results.json`` with the mean and spread over folds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minibert.atomic import atomic_file, write_json_atomic
from minibert.train.finetune.data import EncodedSplit
from minibert.train.finetune.predictions import SplitPredictions, predict, split_metrics
from minibert.train.finetune.task import FinetuningTask
from minibert.train.loop import TrainingResult
from minibert.train.metrics import ClassificationMetrics
from minibert.train.rundir import MetricsWriter, RunDirectory

__all__ = [
    "CONFUSION_FILE",
    "PREDICTIONS_FILE",
    "RESULTS_FILE",
    "RUN_FORMAT_VERSION",
    "FinetuneResult",
    "report_final_weights",
    "write_confusion_matrix",
    "write_json",
    "write_predictions",
    "write_predictions_file",
]

RUN_FORMAT_VERSION = 1
PREDICTIONS_FILE = "predictions.jsonl"
CONFUSION_FILE = "confusion_matrix.json"
RESULTS_FILE = "results.json"


@dataclass
class FinetuneResult:
    """What a fine-tuning run (or a cross-validation of several) produced.

    ``validation``/``test`` are the metrics of the weights in ``final/`` (the best evaluation's
    with ``restore_best``). For cross-validation, ``folds`` holds each fold's result,
    ``validation`` the mean over folds and ``cross_validation`` ``{metric: {"mean", "std",
    "min", "max"}}`` (``std`` is the sample standard deviation over folds).
    """

    run_dir: Path
    task: str
    kind: str
    init: str
    labels: list[str]
    stop_reason: str
    steps: int
    elapsed: float
    selection_metric: str
    best_step: int | None = None
    final_step: int | None = None
    final_dir: Path | None = None
    validation: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] | None = None
    training: TrainingResult | None = None
    folds: list[FinetuneResult] = field(default_factory=list)
    cross_validation: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``results.json`` holds)."""
        data = {
            "run_dir": str(self.run_dir),
            "task": self.task,
            "kind": self.kind,
            "init": self.init,
            "labels": list(self.labels),
            "stop_reason": self.stop_reason,
            "steps": self.steps,
            "elapsed": round(self.elapsed, 3),
            "selection_metric": self.selection_metric,
            "best_step": self.best_step,
            "final_step": self.final_step,
            "final_dir": None if self.final_dir is None else str(self.final_dir),
            "validation": self.validation,
            "test": self.test,
        }
        if self.folds:
            data["cross_validation"] = self.cross_validation
            data["folds"] = [fold.to_dict() for fold in self.folds]
        return data

    def summary(self) -> str:
        """A few printable lines: the scores, how training ended and where the run is."""

        def scores(metrics: Mapping[str, float] | None) -> str:
            keys = ("accuracy", "macro_f1", "entity_f1", "entity_precision", "entity_recall")
            return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if metrics and k in metrics)

        lines = [f"fine-tuned {self.task} ({self.kind}) from {self.init}"]
        if self.folds:
            lines.append(f"{len(self.folds)}-fold cross-validation (validation fold of each run):")
            for name, stats in self.cross_validation.items():
                lines.append(
                    f"  {name:<16} mean {stats['mean']:.4f}  std {stats['std']:.4f}  "
                    f"(min {stats['min']:.4f}, max {stats['max']:.4f})"
                )
            for k, fold in enumerate(self.folds):
                lines.append(f"  fold {k}: {scores(fold.validation)}  ({fold.stop_reason})")
        else:
            lines.append(
                f"{self.steps} steps in {self.elapsed:.1f}s, stopped by {self.stop_reason}; "
                f"final/ = step {self.final_step} (best {self.selection_metric} at step "
                f"{self.best_step})"
            )
            if self.validation:
                lines.append(f"validation: {scores(self.validation)}")
            if self.test:
                lines.append(f"test:       {scores(self.test)}")
        lines.append(f"run directory: {self.run_dir}")
        return "\n".join(lines)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a reader (or a crash) sees the old file or the new."""
    write_json_atomic(path, data)


def write_predictions(
    handle: Any,
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    predictions: SplitPredictions,
) -> None:
    for i, example in enumerate(split.examples):
        record: dict[str, Any] = {"split": split.name, "index": i, "id": example.id}
        if kind == "sequence":
            predicted = predictions.classes[i]
            record.update(
                text=example.text,
                label=labels[example.label],
                prediction=labels[predicted],
                correct=predicted == example.label,
                probabilities=dict(zip(labels, predictions.probabilities[i], strict=True)),
            )
            if example.text_pair is not None:
                record["text_pair"] = example.text_pair
        else:
            tags = predictions.word_tags[i]
            record.update(
                words=list(example.words),
                tags=[labels[t] for t in example.tags],
                predicted=[labels[t] for t in tags],
                correct_words=sum(int(g == p) for g, p in zip(example.tags, tags, strict=True)),
                truncated_words=sum(1 for p in split.word_positions[i] if p < 0),
            )
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_predictions_file(
    path: Path,
    kind: str,
    labels: Sequence[str],
    splits: Sequence[tuple[EncodedSplit, SplitPredictions]],
) -> None:
    """Write ``predictions.jsonl`` for ``splits`` all at once: the lines go to a temporary file
    that replaces ``path`` only when complete, so a failure midway keeps the previous file."""
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for split, predictions in splits:
            write_predictions(handle, split, kind, labels, predictions)


def write_confusion_matrix(
    path: Path,
    labels: Sequence[str],
    kind: str,
    step: int | None,
    reports: Mapping[str, ClassificationMetrics],
) -> None:
    """Gold x predicted counts and per-class scores of each split (``confusion_matrix.json``)."""
    write_json(
        path,
        {
            "labels": list(labels),
            "rows": "gold label",
            "columns": "predicted label",
            "unit": "example" if kind == "sequence" else "word",
            "step": step,
            "splits": {name: report.as_dict() for name, report in reports.items()},
        },
    )


def report_final_weights(
    run: RunDirectory,
    result: FinetuneResult,
    finetuning: FinetuningTask,
    training: TrainingResult,
    splits: Sequence[EncodedSplit],
    *,
    weights: str,
    batch_size: int,
    device: torch.device,
    autocast_dtype: torch.dtype | None,
) -> None:
    """Evaluate the model now in ``final/`` (``weights``: "best" or "last") on ``splits``
    (validation, then test if the task has one) and write the run's reports.

    ``metrics.jsonl`` gets a ``final_weights`` event and one line per split at
    ``result.final_step``; ``predictions.jsonl``, ``confusion_matrix.json`` and
    ``results.json`` are written; ``result.validation``/``result.test`` are filled in.
    """
    kind, labels = finetuning.kind, finetuning.labels
    reports: dict[str, ClassificationMetrics] = {}
    predicted: list[tuple[EncodedSplit, SplitPredictions]] = []
    with MetricsWriter(run.metrics_path) as writer:
        writer.write(
            step=training.step,
            split="event",
            time=training.elapsed,
            tokens=training.tokens,
            event="final_weights",
            weights=weights,
            final_step=result.final_step,
        )
        for split in splits:
            predictions = predict(
                finetuning.model,
                split,
                kind,
                labels,
                pad_id=finetuning.pad_id,
                batch_size=batch_size,
                device=device,
                autocast_dtype=autocast_dtype,
            )
            metrics, report = split_metrics(split, kind, labels, predictions)
            metrics["examples"] = len(split)
            reports[split.name] = report
            writer.write(
                step=result.final_step,
                split=split.name,
                time=training.elapsed,
                tokens=training.tokens,
                weights=weights,
                **metrics,
            )
            if split.name == "validation":
                result.validation = metrics
            else:
                result.test = metrics
            predicted.append((split, predictions))
    # Each report file is written aside and renamed into place (minibert.atomic).
    write_predictions_file(run.root / PREDICTIONS_FILE, kind, labels, predicted)
    write_confusion_matrix(run.root / CONFUSION_FILE, labels, kind, result.final_step, reports)
    write_json(run.root / RESULTS_FILE, result.to_dict())
