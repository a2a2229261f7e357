"""The fine-tuning objective as a :class:`~minibert.train.loop.TrainingTask`.

BERT is fine-tuned by adding one linear layer and training *all* parameters on the labelled
task (Devlin et al. 2019, Sec. 4): on the pooled ``[CLS]`` vector for a sequence label
(Sec. 4.1), on every token's final vector for tags (Sec. 5.3). The shared
:class:`~minibert.train.loop.Trainer` runs the loop; this class supplies batches, the loss and,
after each evaluation, the metrics that need the whole split and the early-stopping decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minibert.train.finetuning.data import IGNORE_INDEX, EncodedSplit, batches, collate
from minibert.train.finetuning.early_stopping import (
    EarlyStopping,
    EarlyStoppingConfig,
    selection_metric,
)
from minibert.train.finetuning.predictions import gather_predictions, split_metrics
from minibert.train.loop import LossTerms, TrainingTask

__all__ = ["FinetuningTask"]


class FinetuningTask(TrainingTask):
    """Sequence classification or token tagging on encoded splits, for :class:`Trainer`.

    The loss term is ``cls`` (one item per example) or ``tag`` (one item per word: its first
    piece); the trainer averages them over the whole step. In evaluation the task keeps the
    logits, so :meth:`after_evaluation` can add accuracy, macro-F1 (and entity F1), track the
    best evaluation and stop training after ``patience`` evaluations without improvement.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        kind: str,
        labels: Sequence[str],
        train_split: EncodedSplit,
        eval_split: EncodedSplit,
        *,
        eval_batch_size: int = 32,
        early_stopping: EarlyStoppingConfig | None = None,
    ) -> None:
        if kind not in ("sequence", "token"):
            raise ValueError(f"kind must be 'sequence' or 'token', got {kind!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.labels = list(labels)
        self.train_split = train_split
        self.eval_split = eval_split
        self.eval_batch_size = eval_batch_size
        self.term_names = ("cls",) if kind == "sequence" else ("tag",)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.early_stopping = early_stopping or EarlyStoppingConfig()
        self.selection_metric = selection_metric(self.early_stopping.metric, kind)
        self.stopper = EarlyStopping(self.early_stopping, self.selection_metric)
        self._eval_records: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._eval_batches: list[dict[str, torch.Tensor]] | None = None

    # The best evaluation so far, as the early-stopping tracker saw it.
    @property
    def best_score(self) -> float | None:
        return self.stopper.best_score

    @property
    def best_step(self) -> int | None:
        return self.stopper.best_step

    @property
    def best_state(self) -> dict[str, torch.Tensor] | None:
        return self.stopper.best_state

    # -- TrainingTask ------------------------------------------------------------------------
    def num_train_examples(self) -> int:
        return len(self.train_split)

    def train_batch(self, indices: Sequence[int], seed: int) -> dict[str, torch.Tensor]:
        # No randomness beyond the order (the trainer's) and dropout (seeded per step).
        return collate(self.train_split, indices, self.pad_id, self.kind == "token")

    def eval_batches(self) -> list[dict[str, torch.Tensor]]:
        if self._eval_batches is None:
            self._eval_batches = [
                collate(self.eval_split, batch, self.pad_id, self.kind == "token")
                for batch in batches(len(self.eval_split), self.eval_batch_size)
            ]
        return self._eval_batches

    def item_counts(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        if self.kind == "sequence":
            return {"cls": float(batch["labels"].shape[0])}
        return {"tag": float((batch["labels"] != IGNORE_INDEX).sum())}

    def loss_terms(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> LossTerms:
        """Summed cross-entropy (the model's mean times the item count) and correct counts."""
        labels = batch["labels"]
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            labels=labels,
        )
        logits = out.logits  # (B, C) or (B, T, C)
        with torch.no_grad():
            predicted = logits.argmax(dim=-1)  # (B,) or (B, T)
            if self.kind == "sequence":
                count = labels.shape[0]
                correct = (predicted == labels).sum()
            else:
                real = labels != IGNORE_INDEX  # (B, T)
                count = int(real.sum())
                correct = ((predicted == labels) & real).sum()
        # With no tagged word in this slice, a zero that keeps the graph connected.
        loss_sum = out.loss.float() * count if count > 0 else logits.float().sum() * 0.0
        if not model.training:
            # Macro-F1 and entity F1 are not sums over batches: keep the logits of the whole
            # evaluation for after_evaluation.
            self._eval_records.append((batch["example_index"].cpu(), logits.detach().cpu()))
        name = self.term_names[0]
        return LossTerms(losses={name: loss_sum}, correct={name: correct})

    def after_evaluation(self, step: int, metrics: dict[str, float]) -> str | None:
        """Add accuracy/macro-F1 (and entity F1); track the best; stop after ``patience``."""
        records, self._eval_records = self._eval_records, []
        if not records:
            return None
        predictions = gather_predictions(self.eval_split, self.kind, self.labels, records)
        covered = sorted({i for index, _ in records for i in index.tolist()})
        extra, _ = split_metrics(self.eval_split, self.kind, self.labels, predictions, covered)
        metrics.update(extra)
        stop = self.stopper.update(step, metrics[self.selection_metric], self.model)
        metrics[f"best_{self.selection_metric}"] = self.best_score
        metrics["best_step"] = self.best_step
        return "early_stopping" if stop else None

    def save_model(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def save_extras(self, directory: Path) -> None:
        from minibert.data.tokenizer import save_tokenizer

        save_tokenizer(self.tokenizer, directory)
