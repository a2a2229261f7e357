"""Model selection on the validation split, and stopping when it no longer improves.

Devlin et al. (2019, App. A.3) fine-tune for a fixed few epochs and keep "the best fine-tuning
... on the Dev set". We do the same inside one run: every evaluation compares the selection
metric with the best so far; after ``patience`` evaluations without improvement training stops,
and the best evaluation's weights are kept so that ``final/`` can hold them (``restore_best``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
from torch import nn

from minibert.train.settings import check_number

__all__ = ["SELECTION_METRICS", "EarlyStopping", "EarlyStoppingConfig", "selection_metric"]

logger = logging.getLogger(__name__)

SELECTION_METRICS = ("auto", "loss", "accuracy", "macro_f1", "entity_f1")


@dataclass
class EarlyStoppingConfig:
    """Model selection on the validation split (Devlin et al. 2019, App. A.3: "selected the
    best fine-tuning ... on the Dev set")."""

    patience: int = 3  # evaluations without improvement before stopping (0: never stop early)
    metric: str = "auto"  # auto: macro_f1 (sequence), entity_f1 (token); or loss, accuracy
    min_delta: float = 0.0  # an improvement must be larger than this
    restore_best: bool = True  # final/ holds the weights of the best evaluation

    def __post_init__(self) -> None:
        check_number(
            "early_stopping.patience",
            self.patience,
            low=0,
            integer=True,
            fix="a count of evaluations, e.g. 3 (0: never stop early)",
        )
        if self.metric not in SELECTION_METRICS:
            raise ValueError(
                f"early_stopping.metric {self.metric!r} is unknown; use one of "
                f"{', '.join(SELECTION_METRICS)}"
            )
        check_number(
            "early_stopping.min_delta",
            self.min_delta,
            low=0,
            fix="the smallest change that counts as an improvement, e.g. 0 or 0.001",
        )


def selection_metric(metric: str, kind: str) -> str:
    """The metric that picks the model: ``auto`` is macro-F1 for a sequence task (every class
    counts, however rare) and seqeval's entity F1 for tagging (whole spans, not tokens)."""
    if metric == "auto":
        return "macro_f1" if kind == "sequence" else "entity_f1"
    if metric == "entity_f1" and kind != "token":
        raise ValueError(
            "early_stopping.metric entity_f1 is for tagging tasks; use macro_f1, accuracy "
            "or loss for a sequence task"
        )
    return metric


class EarlyStopping:
    """Tracks the best evaluation of one run and says when to stop.

    ``update`` is called with each evaluation's score; it remembers the best score, its step
    and (with ``restore_best``) a CPU copy of the model's weights at that step, and returns
    True once ``patience`` evaluations in a row failed to beat the best by more than
    ``min_delta``. Loss is better lower; every other metric is better higher.
    """

    def __init__(self, config: EarlyStoppingConfig, metric: str) -> None:
        self.config = config
        self.metric = metric
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.evaluations_without_improvement = 0

    def improves(self, score: float) -> bool:
        """Whether ``score`` beats the best so far by more than ``min_delta``."""
        if self.best_score is None:
            return True
        delta = self.config.min_delta
        if self.metric == "loss":
            return score < self.best_score - delta
        return score > self.best_score + delta

    def update(self, step: int, score: float, model: nn.Module) -> bool:
        """Record the evaluation at ``step``; True if training should stop now."""
        if self.improves(score):
            self.best_score, self.best_step = score, step
            self.evaluations_without_improvement = 0
            if self.config.restore_best:
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
        else:
            self.evaluations_without_improvement += 1
        patience = self.config.patience
        if patience and self.evaluations_without_improvement >= patience:
            logger.info(
                "early stopping at step %d: %s has not improved on %.4f (step %d) for %d "
                "evaluations",
                step,
                self.metric,
                self.best_score,
                self.best_step,
                patience,
            )
            return True
        return False
