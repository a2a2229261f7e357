"""Learning-rate schedules: warmup, then decay, as a function of training *progress*.

BERT (Devlin et al. 2019, Appendix A.2) warms the learning rate up linearly over the first 10k
steps and then decays it linearly to zero; the Transformer (Vaswani et al. 2017, Eq. 3) warms up
and then decays with the inverse square root of the step. Cosine decay (Loshchilov & Hutter
2017, SGDR) is the other common choice.

Here a schedule is a function of ``progress`` in [0, 1] rather than of the step, because a run
may be bounded by wall-clock time (``--time-budget``) instead of a step count; then progress is
the fraction of the budget spent, as in "Cramming" (Geiping & Goldstein 2022, Sec. 4.2), which
ties the schedule to the budget. With a step budget, progress is ``step / max_steps`` and the
schedule is the familiar step-based one, fully deterministic.

The schedule has no hidden state: the factor is recomputed from (progress) every step, so resuming
a run needs only the step and the time spent, which the trainer state already holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["SCHEDULES", "LRSchedule", "training_progress"]

SCHEDULES = ("linear", "cosine", "constant", "inverse_sqrt")


@dataclass(frozen=True)
class LRSchedule:
    """Multiplier on the peak learning rate as a function of training progress.

    Args:
        kind: ``linear`` (BERT), ``cosine``, ``constant`` (after warmup) or ``inverse_sqrt``
            (Vaswani et al. 2017, Eq. 3, rescaled so the peak is 1 at the end of warmup).
        warmup: fraction of training (in [0, 1)) spent warming up linearly from 0 to the peak.
        min_ratio: the floor the decay ends at, as a fraction of the peak (0 decays to zero).
    """

    kind: str = "linear"
    warmup: float = 0.1
    min_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULES:
            raise ValueError(
                f"unknown schedule {self.kind!r}; choose one of {', '.join(SCHEDULES)}"
            )
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup}")
        if not 0.0 <= self.min_ratio <= 1.0:
            raise ValueError(f"min_ratio must be in [0, 1], got {self.min_ratio}")

    def factor(self, progress: float) -> float:
        """The multiplier at ``progress`` (clamped to [0, 1]).

        The training loop evaluates it at the *middle* of each update (step - 0.5 of max_steps),
        so neither the first update (warmup) nor the last (linear decay) gets a zero rate.
        """
        p = min(max(progress, 0.0), 1.0)
        if self.warmup > 0 and p < self.warmup:
            return p / self.warmup  # linear warmup from 0 to the peak
        decay_progress = (p - self.warmup) / (1.0 - self.warmup)  # 0 at peak, 1 at the end
        if self.kind == "constant":
            shape = 1.0
        elif self.kind == "linear":
            shape = 1.0 - decay_progress
        elif self.kind == "cosine":
            shape = 0.5 * (1.0 + math.cos(math.pi * decay_progress))
        else:  # inverse_sqrt: 1/sqrt(t / t_warmup), the Transformer's decay in progress units
            start = max(self.warmup, 1e-3)
            shape = math.sqrt(start / max(p, start))
        return self.min_ratio + (1.0 - self.min_ratio) * shape


def training_progress(
    step: int,
    elapsed_seconds: float,
    max_steps: int | None,
    time_budget: float | None,
) -> float:
    """How far through training a run is, in [0, 1].

    With both limits set, whichever is closer to running out decides, so the schedule always
    reaches its end exactly when the run stops.
    """
    if max_steps is None and time_budget is None:
        raise ValueError("a run needs max_steps or time_budget to know its progress")
    parts = []
    if max_steps is not None:
        parts.append(step / max_steps)
    if time_budget is not None:
        parts.append(elapsed_seconds / time_budget)
    return min(max(parts), 1.0)
