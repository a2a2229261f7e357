"""Logits -> per-example predictions -> accuracy, macro-F1 and (tagging) entity F1.

A sequence task predicts one class per example (the argmax of the ``[CLS]`` classifier, with
its softmax probabilities kept for ``predictions.jsonl``); a tagging task predicts one tag per
word, read at the word's first WordPiece (Devlin et al. 2019, Sec. 5.3). Words cut off by
``max_seq_len`` are predicted "O" so that every word is scored, as seqeval expects.
Macro-F1 and entity F1 are not sums over batches, so they are computed from the predictions of
the whole split at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from minibert.train.finetuning.data import EncodedSplit, batches, collate
from minibert.train.metrics import ClassificationMetrics, classification_metrics, entity_metrics

__all__ = ["SplitPredictions", "gather_predictions", "predict", "split_metrics"]


@dataclass
class SplitPredictions:
    """Per-example predictions: class ids (+ probabilities) or, for tagging, word tag ids."""

    classes: list[int] = field(default_factory=list)  # sequence tasks
    probabilities: list[list[float]] = field(default_factory=list)  # sequence tasks
    word_tags: list[list[int]] = field(default_factory=list)  # token tasks, one per word


def _outside_tag(labels: Sequence[str]) -> int:
    """The id of the "no entity" tag, given to words cut off by truncation."""
    return list(labels).index("O") if "O" in labels else 0


def gather_predictions(
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    records: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> SplitPredictions:
    """Turn (example_index (B,), logits (B, C) or (B, T, C)) records into per-example predictions
    in split order."""
    n = len(split)
    out = SplitPredictions()
    if kind == "sequence":
        classes: list[int | None] = [None] * n
        probs: list[list[float] | None] = [None] * n
        for index, logits in records:
            p = logits.float().softmax(dim=-1)  # (B, C)
            for row, i in enumerate(index.tolist()):
                classes[i] = int(p[row].argmax())
                probs[i] = [round(v, 5) for v in p[row].tolist()]
        out.classes = [c if c is not None else 0 for c in classes]
        out.probabilities = [p if p is not None else [] for p in probs]
        return out
    outside = _outside_tag(labels)
    tags: list[list[int] | None] = [None] * n
    for index, logits in records:
        best = logits.argmax(dim=-1)  # (B, T)
        for row, i in enumerate(index.tolist()):
            positions = split.word_positions[i]
            row_best = best[row].tolist()
            tags[i] = [row_best[p] if p >= 0 else outside for p in positions]
    out.word_tags = [t if t is not None else [] for t in tags]
    return out


def split_metrics(
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    predictions: SplitPredictions,
    covered: Sequence[int] | None = None,
) -> tuple[dict[str, float], ClassificationMetrics]:
    """Accuracy and macro-F1 (per example, or per word for tagging) and, for tagging, seqeval's
    entity-level scores, over the examples ``covered`` (default: all)."""
    indices = range(len(split)) if covered is None else covered
    if kind == "sequence":
        gold = [split.examples[i].label for i in indices]
        predicted = [predictions.classes[i] for i in indices]
        report = classification_metrics(gold, predicted, labels)
        return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}, report
    gold_words = [list(split.examples[i].tags) for i in indices]
    predicted_words = [predictions.word_tags[i] for i in indices]
    flat_gold = [t for sentence in gold_words for t in sentence]
    flat_predicted = [t for sentence in predicted_words for t in sentence]
    report = classification_metrics(flat_gold, flat_predicted, labels)
    metrics = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
    metrics.update(
        entity_metrics(
            [[labels[t] for t in s] for s in gold_words],
            [[labels[t] for t in s] for s in predicted_words],
        )
    )
    return metrics, report


@torch.no_grad()
def predict(
    model: nn.Module,
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    *,
    pad_id: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> SplitPredictions:
    """Predictions of ``model`` (eval mode, no dropout) for every example of ``split``.

    ``autocast_dtype`` (e.g. the trainer's bf16) makes them match the evaluations logged during
    training, which ran under the same autocast.
    """
    from minibert.train.loop import autocast_context

    device = torch.device(device)
    was_training = model.training
    model.eval()
    records = []
    try:
        for indices in batches(len(split), batch_size):
            batch = collate(split, indices, pad_id, kind == "token")
            with autocast_context(device, autocast_dtype):
                out = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    token_type_ids=batch["token_type_ids"].to(device),
                )
            records.append((batch["example_index"], out.logits.float().cpu()))
    finally:
        model.train(was_training)
    return gather_predictions(split, kind, labels, records)
