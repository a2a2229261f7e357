"""The training engine shared by pretraining and fine-tuning.

A :class:`TrainingTask` says what is trained (model, examples, how a batch is built, the loss
terms, how to save); :class:`Trainer` does the rest the same way for every task:

* AdamW with decoupled weight decay (Loshchilov & Hutter 2019), no decay on biases and
  LayerNorm weights (as BERT's optimizer), warmup + decay (:mod:`minibert.train.schedule`),
  gradient clipping, gradient accumulation;
* token-weighted losses: each loss term is a *sum* divided by the number of items (masked
  tokens, sentences) in the whole optimizer step over all micro-batches and processes, so
  accumulation and data parallelism compute exactly the gradient of the full batch (a mean of
  per-micro-batch means would weight a micro-batch with few masked tokens as much as one with
  many);
* bf16 autocast where it pays, DistributedDataParallel under ``torchrun``;
* stops at ``max_steps`` or ``time_budget``; SIGINT/SIGTERM finish the step, save a checkpoint
  and return; a NaN/inf loss stops the run before the bad update, keeping the last good
  checkpoint;
* evaluation every N steps on a fixed held-out set, ``metrics.jsonl`` lines, atomic checkpoints
  with everything needed to resume bit-for-bit on CPU.

Determinism: the data order is a pure function of (seed, epoch); the masks of step ``s`` come
from a generator seeded with (seed, s), drawn for the whole global batch at once (so they do not
depend on accumulation or the number of processes); dropout's global generator is
reseeded with (seed, rank, s) at each step. So a resumed run needs only the step and the epoch
position, and redoes exactly what the uninterrupted run did.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minibert.atomic import crash_point
from minibert.hf_names import load_hf_state_dict
from minibert.model import read_safetensors_dir
from minibert.train.checkpoint import (
    TrainerState,
    capture_rng_state,
    load_optimizer_state,
    load_trainer_state,
    save_checkpoint,
    verify_checkpoint,
)
from minibert.train.distributed import DistributedContext, RemoteFailureError, maybe_no_sync
from minibert.train.rundir import MetricsWriter, RunDirectory, truncate_metrics_after
from minibert.train.schedule import LRSchedule, training_progress
from minibert.train.settings import OptimConfig, TrainConfig

__all__ = [
    "EpochSampler",
    "LossTerms",
    "NonFiniteLossError",
    "StopSignal",
    "Trainer",
    "TrainingResult",
    "TrainingTask",
    "autocast_context",
    "build_optimizer",
    "derive_seed",
    "evaluate_task",
    "resolve_precision",
]

logger = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient norm became NaN or infinite; the run stopped before updating."""


# --------------------------------------------------------------------------------------------
# Seeds, precision, optimizer
# --------------------------------------------------------------------------------------------


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any parts, e.g. ``derive_seed(seed, "mask", step, micro)``.

    Hashing (rather than adding offsets) keeps streams for different purposes independent and
    the same on every machine and Python version.
    """
    digest = hashlib.sha256(repr(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), per torch's checks.

    On CPUs without it, bf16 autocast is emulated and slower than fp32.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for name in checks:
        check = getattr(torch.cpu, name, None)  # private helpers; absent in older torch
        try:
            if check is not None and check():
                return True
        except RuntimeError:  # pragma: no cover - defensive: a build without the probe
            continue
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None: plain fp32).

    ``auto`` chooses bf16 autocast on CUDA GPUs that support bf16 and on CPUs with native bf16
    (AVX512-BF16 or AMX), and fp32 elsewhere (older CPUs, Apple silicon via MPS). Measured on
    an AVX512-BF16 CPU (docs/training.md, "Precision"): bf16 autocast trained the tiny preset
    about 1.4x faster per step than fp32 with the same loss curve. ``bf16`` forces autocast
    anywhere torch supports it; ``fp32`` turns it off.
    """
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU does not support bf16; use --precision fp32")
        return torch.bfloat16
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return None
    raise ValueError(f"unknown precision {precision!r}; use auto, fp32 or bf16")


def autocast_context(device: torch.device, dtype: torch.dtype | None):
    """``torch.autocast`` for ``dtype``, or a no-op context for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def build_optimizer(model: nn.Module, config: OptimConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases and LayerNorm weights).

    BERT's optimizer excluded ``LayerNorm`` and ``bias`` parameters from weight decay; every
    parameter with fewer than two dimensions is one of those.
    """
    decay, no_decay = [], []
    seen: set[int] = set()
    for param in model.parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        (decay if param.ndim >= 2 else no_decay).append(param)
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)


def make_schedule(optim: OptimConfig, max_steps: int | None) -> LRSchedule:
    """The schedule of ``optim``; ``warmup_steps`` becomes a fraction of ``max_steps``."""
    warmup = optim.warmup_fraction
    if optim.warmup_steps is not None:
        if max_steps is None:
            raise ValueError(
                "optim.warmup_steps needs train.max_steps; with only a time budget use "
                "optim.warmup_fraction"
            )
        warmup = min(optim.warmup_steps / max_steps, 0.999)
    return LRSchedule(kind=optim.schedule, warmup=warmup, min_ratio=optim.min_lr_ratio)


# --------------------------------------------------------------------------------------------
# Data order
# --------------------------------------------------------------------------------------------


class EpochSampler:
    """Global batches of example indices: a fresh seeded shuffle each epoch, no replacement.

    The permutation of epoch ``e`` is ``randperm(n)`` under ``derive_seed(seed, "order", e)``,
    so ``(epoch, batch_in_epoch)`` is the complete data-order state. The incomplete last batch
    of an epoch is dropped so every step has the same number of sequences.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int) -> None:
        if num_examples < batch_size:
            raise ValueError(
                f"only {num_examples} training examples for a batch of {batch_size}; lower "
                "train.batch_size or use more data"
            )
        self.num_examples = num_examples
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        self.batch_in_epoch = 0
        self._order: list[int] | None = None

    @property
    def batches_per_epoch(self) -> int:
        return self.num_examples // self.batch_size

    def _permutation(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", epoch))
        return torch.randperm(self.num_examples, generator=generator).tolist()

    def next_batch(self) -> list[int]:
        if self.batch_in_epoch >= self.batches_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0
            self._order = None
        if self._order is None:
            self._order = self._permutation(self.epoch)
        start = self.batch_in_epoch * self.batch_size
        self.batch_in_epoch += 1
        return self._order[start : start + self.batch_size]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch}

    def load_state_dict(self, state: Mapping[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        self._order = None


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


@dataclass
class LossTerms:
    """One micro-batch's loss terms as *sums*, and correct-prediction counts for accuracy.

    ``losses["mlm"]`` is the summed cross-entropy over the masked tokens of the micro-batch;
    the trainer divides it by the number of masked tokens in the whole step.
    """

    losses: dict[str, torch.Tensor]
    correct: dict[str, torch.Tensor] = field(default_factory=dict)


class TrainingTask(ABC):
    """What one kind of training supplies to :class:`Trainer`.

    Subclasses set ``model`` (the unwrapped module) and ``term_names`` (the loss terms, in
    logging order) and implement the abstract methods. Batches are dicts of tensors whose first
    dimension is the example.
    """

    model: nn.Module
    term_names: tuple[str, ...]

    @abstractmethod
    def num_train_examples(self) -> int: ...

    @abstractmethod
    def train_batch(self, indices: Sequence[int], seed: int) -> dict[str, torch.Tensor]:
        """The batch of the training examples at ``indices`` (a whole optimizer step).

        Any randomness (MLM masking) must come from ``seed`` alone: every process builds the
        same batch and keeps its own slices of it.
        """

    @abstractmethod
    def item_counts(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """How many items each loss term averages over in ``batch`` (e.g. masked tokens)."""

    @abstractmethod
    def loss_terms(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> LossTerms:
        """Forward ``batch`` through ``model`` (possibly DDP-wrapped) and return summed terms."""

    @abstractmethod
    def eval_batches(self) -> list[dict[str, torch.Tensor]]:
        """The fixed held-out batches (same examples, same masks, every time)."""

    @abstractmethod
    def save_model(self, directory: Path) -> None:
        """Write the HF-loadable model files (config.json + model.safetensors)."""

    def save_extras(self, directory: Path) -> None:  # noqa: B027 - optional hook
        """Write anything else a checkpoint should carry (e.g. the tokenizer)."""

    def load_weights(self, directory: Path) -> None:
        """Load the model weights saved by :meth:`save_model` (minibert's HF-named safetensors)."""
        load_hf_state_dict(self.model, read_safetensors_dir(Path(directory)), source=str(directory))

    def derived_metrics(self, metrics: Mapping[str, float]) -> dict[str, float]:
        """Extra metrics computed from the standard ones (e.g. perplexity)."""
        return {}

    def after_evaluation(self, step: int, metrics: dict[str, float]) -> str | None:
        """Called after each held-out evaluation, before its ``metrics`` are logged.

        May add metrics that are not sums over batches (fine-tuning's macro-F1) to ``metrics``,
        and may end training early by returning the stop reason (e.g. ``"early_stopping"``).
        Runs on every process and must return the same there.
        """
        return None

    def count_tokens(self, batch: Mapping[str, torch.Tensor]) -> int:
        """Real (non-padding) tokens in ``batch``, for throughput and ``tokens`` in the logs."""
        if "attention_mask" in batch:
            return int(batch["attention_mask"].sum())
        return int(batch["input_ids"].numel())


def _slice_rows(batch: Mapping[str, torch.Tensor], start: int, stop: int) -> dict:
    return {k: v[start:stop] for k, v in batch.items()}


def _to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _summarize(
    term_names: Sequence[str],
    losses: Mapping[str, float],
    correct: Mapping[str, float],
    counts: Mapping[str, float],
) -> dict[str, float]:
    """Means from sums: ``<term>_loss``, ``<term>_accuracy`` and ``loss`` (sum of the means)."""
    metrics: dict[str, float] = {}
    total = 0.0
    for name in term_names:
        count = counts.get(name, 0.0)
        if count <= 0:
            continue
        mean = losses[name] / count
        metrics[f"{name}_loss"] = mean
        total += mean
        if name in correct:
            metrics[f"{name}_accuracy"] = correct[name] / count
    metrics = {"loss": total, **metrics}
    return metrics


@torch.no_grad()
def evaluate_task(
    task: TrainingTask,
    context: DistributedContext | None = None,
    *,
    autocast_dtype: torch.dtype | None = None,
    batches: Sequence[Mapping[str, torch.Tensor]] | None = None,
) -> dict[str, float]:
    """Held-out metrics of ``task.model`` in eval mode (dropout off) on the fixed batches.

    Each process evaluates its share of every batch's rows; sums are added over processes, so
    the result is the same for any number of processes. The model's train/eval mode is restored.
    """
    context = context or DistributedContext()
    model = task.model
    was_training = model.training
    model.eval()
    names = task.term_names
    device = context.device
    sums = torch.zeros(3 * len(names), dtype=torch.float64, device=device)
    examples = 0
    try:
        for batch in batches if batches is not None else task.eval_batches():
            rows = next(iter(batch.values())).shape[0]
            bounds = torch.linspace(0, rows, context.world_size + 1).round().long().tolist()
            local = _slice_rows(batch, bounds[context.rank], bounds[context.rank + 1])
            examples += rows
            if next(iter(local.values())).shape[0] == 0:
                continue
            local = _to_device(local, device)
            counts = task.item_counts(local)
            with autocast_context(device, autocast_dtype):
                terms = task.loss_terms(model, local)
            for i, name in enumerate(names):
                if counts.get(name, 0) > 0:
                    sums[i] += terms.losses[name].detach().double()
                    if name in terms.correct:
                        sums[len(names) + i] += terms.correct[name].double()
                sums[2 * len(names) + i] += counts.get(name, 0)
        context.all_reduce_sum(sums)
    finally:
        model.train(was_training)
    values = sums.tolist()
    n = len(names)
    losses = {name: values[i] for i, name in enumerate(names)}
    counts_all = {name: values[2 * n + i] for i, name in enumerate(names)}
    correct = {name: values[n + i] for i, name in enumerate(names)}
    metrics = _summarize(names, losses, correct, counts_all)
    metrics.update(task.derived_metrics(metrics))
    metrics["examples"] = examples
    return metrics


# --------------------------------------------------------------------------------------------
# Signals
# --------------------------------------------------------------------------------------------


class StopSignal:
    """Turn SIGINT/SIGTERM into a request to stop after the current step.

    A second signal restores the default behaviour and interrupts at once. Outside the main
    thread (where Python cannot install handlers) this does nothing.
    """

    def __init__(self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        self.signals = tuple(signals)
        self.received: str | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            logger.warning("%s again: stopping now, without a checkpoint", name)
            self.uninstall()
            signal.raise_signal(signum)
            return
        self.received = name
        logger.warning("%s received: finishing this step, then saving a checkpoint", name)

    def install(self) -> StopSignal:
        if threading.current_thread() is not threading.main_thread():
            logger.debug("not in the main thread: SIGINT/SIGTERM handlers not installed")
            return self
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()

    def __enter__(self) -> StopSignal:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.uninstall()


# --------------------------------------------------------------------------------------------
# The trainer
# --------------------------------------------------------------------------------------------


@dataclass
class TrainingResult:
    """What a finished (or stopped) run did."""

    run_dir: Path
    step: int
    tokens: int
    elapsed: float
    stop_reason: str  # "max_steps", "time_budget", "signal:SIGTERM", ...
    final_dir: Path | None
    last_checkpoint: Path | None
    last_train: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        lines = [
            f"stopped after step {self.step} ({self.stop_reason}): {self.tokens:,} tokens in "
            f"{self.elapsed:.1f}s ({self.tokens / max(self.elapsed, 1e-9):,.0f} tokens/s)",
        ]
        if self.last_train:
            lines.append("last train: " + _format_metrics(self.last_train))
        if self.last_eval:
            lines.append("held-out:   " + _format_metrics(self.last_eval))
        if self.final_dir is not None:
            lines.append(f"final weights: {self.final_dir}")
        if self.last_checkpoint is not None:
            lines.append(f"last checkpoint: {self.last_checkpoint}")
        return "\n".join(lines)


def _format_metrics(metrics: Mapping[str, float]) -> str:
    keys = [k for k in metrics if k.endswith(("loss", "accuracy", "perplexity"))]
    return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys)


class Trainer:
    """Runs a :class:`TrainingTask` in a :class:`RunDirectory` (see the module docstring).

    Args:
        task: what to train.
        optim: optimizer and schedule settings.
        train: loop settings (budget, batch, cadence, precision).
        run: the run directory (rank 0 writes it; other ranks only read).
        context: the distributed context (one process by default).
        resume_from: a checkpoint directory to continue from.
    """

    def __init__(
        self,
        task: TrainingTask,
        optim: OptimConfig,
        train: TrainConfig,
        run: RunDirectory,
        context: DistributedContext | None = None,
        *,
        resume_from: Path | None = None,
    ) -> None:
        self.task = task
        self.optim_config = optim
        self.config = train
        self.run = run
        self.context = context or DistributedContext()
        self.resume_from = resume_from
        self.max_steps = train.resolved_max_steps()
        self.schedule = make_schedule(optim, self.max_steps)
        self.autocast_dtype = resolve_precision(train.precision, self.context.device)
        world = self.context.world_size
        if train.micro_batch_size % world:
            raise ValueError(
                f"a micro-batch of {train.micro_batch_size} sequences (train.batch_size / "
                f"train.grad_accum_steps) does not split over {world} processes; make it a "
                "multiple of the number of processes"
            )
        self.sampler = EpochSampler(task.num_train_examples(), train.batch_size, train.seed)
        task.model.to(self.context.device)
        self.optimizer = build_optimizer(task.model, optim)
        self.state = TrainerState(world_size=world)
        if resume_from is not None:
            self._load(resume_from)
        task.model.train()
        self.ddp_model: nn.Module = task.model
        if self.context.is_distributed:
            device_ids = [self.context.device.index] if self.context.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(
                task.model, device_ids=device_ids, process_group=self.context.group
            )

    # -- resume ------------------------------------------------------------------------------
    def _load(self, checkpoint: Path) -> None:
        state = load_trainer_state(checkpoint)
        verify_checkpoint(checkpoint, state)  # before trusting any of its files
        self.task.load_weights(checkpoint)
        self.optimizer.load_state_dict(load_optimizer_state(checkpoint))
        self.sampler.load_state_dict({"epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch})
        self.state = state
        self.state.world_size = self.context.world_size
        logger.info("resuming from %s at step %d", checkpoint, state.step)

    # -- helpers -----------------------------------------------------------------------------
    def _progress(self, elapsed: float) -> float:
        return training_progress(self.state.step, elapsed, self.max_steps, self.config.time_budget)

    def _lr_for_next_step(self, elapsed: float) -> float:
        # The middle of the coming update (see LRSchedule.factor); by time: where it starts.
        parts = []
        if self.max_steps is not None:
            parts.append((self.state.step + 0.5) / self.max_steps)
        if self.config.time_budget is not None:
            parts.append(elapsed / self.config.time_budget)
        return self.optim_config.lr * self.schedule.factor(max(parts))

    def _save(self, target: Path, *, with_optimizer: bool) -> Path | None:
        """Rank 0 writes ``target`` atomically; every rank waits until it is complete.

        If rank 0's save fails (disk full, permissions), every rank stops with its reason:
        rank 0 re-raises the error, the others raise :class:`RemoteFailureError`.
        """
        path = None
        failure: BaseException | None = None
        if self.context.is_main:
            self.state.rng = capture_rng_state()
            self.state.rng["scheme"] = (
                "per-step: torch.manual_seed(derive_seed(seed, 'dropout', rank, step))"
            )
            # The schedule has no hidden state: its factor is a function of the progress,
            # which the step and the elapsed time above determine. Recorded for readers.
            self.state.extra["scheduler"] = {
                "kind": self.schedule.kind,
                "warmup": self.schedule.warmup,
                "min_ratio": self.schedule.min_ratio,
                "peak_lr": self.optim_config.lr,
                "progress": self._progress(self.state.elapsed),
                "last_lr": self.state.window.get("lr", self.optimizer.param_groups[0]["lr"]),
            }
            self.state.epoch = self.sampler.epoch
            self.state.batch_in_epoch = self.sampler.batch_in_epoch
            try:
                path = save_checkpoint(
                    target,
                    save_model=self.task.save_model,
                    trainer_state=self.state,
                    optimizer=self.optimizer if with_optimizer else None,
                    extra_files=self.task.save_extras,
                )
            except Exception as err:
                failure = err
        # Every rank waits here (as at a barrier) and learns whether rank 0's save worked.
        message = self.context.share_main_error(
            None if failure is None else f"{type(failure).__name__}: {failure}"
        )
        if failure is not None:
            raise failure
        if message is not None:
            raise RemoteFailureError(f"rank 0 could not save {target}: {message}")
        return path

    def _save_checkpoint(self) -> Path | None:
        path = self._save(self.run.checkpoint_dir(self.state.step), with_optimizer=True)
        if self.context.is_main:
            removed = self.run.prune_checkpoints(self.config.keep_checkpoints)
            logger.info(
                "checkpoint %s%s",
                path,
                f" (removed {len(removed)} older)" if removed else "",
            )
        self._last_checkpoint_step = self.state.step
        return path

    def _micro_batches(self) -> Iterator[dict[str, torch.Tensor]]:
        """This process's share of each micro-batch of the next global batch.

        The whole global batch is built (and masked) at once from the step's seed, then cut
        into micro-batches and each of those into one slice per process. So the same step sees
        the same examples with the same masks whatever the accumulation and process count: only
        where the sums are computed changes.
        """
        cfg = self.config
        indices = self.sampler.next_batch()
        batch = self.task.train_batch(indices, derive_seed(cfg.seed, "mask", self.state.step))
        micro = cfg.micro_batch_size
        per_rank = micro // self.context.world_size
        for a in range(cfg.grad_accum_steps):
            start = a * micro + self.context.rank * per_rank
            yield _slice_rows(batch, start, start + per_rank)

    # -- one optimizer step ------------------------------------------------------------------
    def _train_step(self, lr: float) -> dict[str, float]:
        cfg, task, context = self.config, self.task, self.context
        names = task.term_names
        n = len(names)
        device = context.device
        crash_point("train_step")  # fault injection for tests (a no-op otherwise)
        torch.manual_seed(derive_seed(cfg.seed, "dropout", context.rank, self.state.step))
        micro_batches = [_to_device(b, device) for b in self._micro_batches()]

        # Items per loss term over the whole step and all processes: the loss normalizers.
        counts = torch.zeros(n + 1, dtype=torch.float64, device=device)
        for batch in micro_batches:
            item_counts = task.item_counts(batch)
            for i, name in enumerate(names):
                counts[i] += item_counts.get(name, 0)
            counts[n] += task.count_tokens(batch)
        context.all_reduce_sum(counts)
        totals = counts.tolist()

        stats = torch.zeros(2 * n, dtype=torch.float64, device=device)
        for a, batch in enumerate(micro_batches):
            last = a == len(micro_batches) - 1
            with maybe_no_sync(self.ddp_model, skip_sync=not last):
                with autocast_context(device, self.autocast_dtype):
                    terms = task.loss_terms(self.ddp_model, batch)
                loss = sum(
                    terms.losses[name] / totals[i] for i, name in enumerate(names) if totals[i] > 0
                )
                # DDP averages gradients over processes; our normalizers already cover all of
                # them, so undo the average to get the gradient of the global sum.
                (loss * context.world_size).backward()
            for i, name in enumerate(names):
                stats[i] += terms.losses[name].detach().double()
                if name in terms.correct:
                    stats[n + i] += terms.correct[name].double()
        context.all_reduce_sum(stats)

        max_norm = self.optim_config.max_grad_norm
        grad_norm = torch.nn.utils.clip_grad_norm_(
            self.task.model.parameters(), max_norm if max_norm is not None else float("inf")
        )
        values = stats.tolist()
        losses = {name: values[i] for i, name in enumerate(names)}
        correct = {name: values[n + i] for i, name in enumerate(names)}
        step_metrics = _summarize(names, losses, correct, dict(zip(names, totals[:n], strict=True)))
        grad_norm_value = float(grad_norm)
        if not (math.isfinite(step_metrics["loss"]) and math.isfinite(grad_norm_value)):
            self.optimizer.zero_grad(set_to_none=True)
            raise NonFiniteLossError(
                f"the loss became {step_metrics['loss']} (gradient norm {grad_norm_value}) at "
                f"step {self.state.step + 1} with learning rate {lr:.3g}. The run stopped "
                "before applying that update."
            )
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

        # Accumulate the logging window (sums over steps; identical on every process).
        window = self.state.window
        for i, name in enumerate(names):
            window[f"sum_{name}"] = window.get(f"sum_{name}", 0.0) + losses[name]
            window[f"correct_{name}"] = window.get(f"correct_{name}", 0.0) + correct[name]
            window[f"count_{name}"] = window.get(f"count_{name}", 0.0) + totals[i]
        window["grad_norm"] = window.get("grad_norm", 0.0) + grad_norm_value
        window["lr"] = lr
        window["steps"] = window.get("steps", 0.0) + 1
        window["tokens"] = window.get("tokens", 0.0) + totals[n]
        self.state.tokens += int(totals[n])
        self.state.step += 1
        return step_metrics

    def _window_metrics(self, window_seconds: float) -> dict[str, float]:
        window = self.state.window
        names = self.task.term_names
        metrics = _summarize(
            names,
            {name: window.get(f"sum_{name}", 0.0) for name in names},
            {name: window.get(f"correct_{name}", 0.0) for name in names},
            {name: window.get(f"count_{name}", 0.0) for name in names},
        )
        metrics.update(self.task.derived_metrics(metrics))
        steps = max(window.get("steps", 1.0), 1.0)
        metrics["lr"] = window.get("lr", 0.0)
        metrics["grad_norm"] = window.get("grad_norm", 0.0) / steps
        metrics["tokens_per_second"] = window.get("tokens", 0.0) / max(window_seconds, 1e-9)
        metrics["epoch"] = self.sampler.epoch + self.sampler.batch_in_epoch / max(
            self.sampler.batches_per_epoch, 1
        )
        return metrics

    # -- the loop ----------------------------------------------------------------------------
    def fit(self) -> TrainingResult:
        """Train until the budget runs out or a signal arrives; return what happened."""
        cfg, context = self.config, self.context
        is_main = context.is_main
        writer = MetricsWriter(self.run.metrics_path) if is_main else None
        if is_main and self.resume_from is not None:
            writer.close()
            truncate_metrics_after(self.run.metrics_path, self.state.step)
            writer = MetricsWriter(self.run.metrics_path)
        self._last_checkpoint_step = self.state.step if self.resume_from is not None else -1
        last_eval_step = self.state.extra.get("last_eval_step", -1)
        session_start = time.perf_counter()
        elapsed_before = self.state.elapsed
        # A resumed run that had already reached its budget only completes what is missing.
        already_finished = self.resume_from is not None and self._progress(elapsed_before) >= 1.0
        if already_finished and is_main:
            logger.warning(
                "this run already finished at step %d; raise --max-steps or --time-budget to "
                "train longer",
                self.state.step,
            )

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - session_start

        def log(split: str, **metrics: Any) -> None:
            if writer is not None:
                writer.write(
                    step=self.state.step,
                    split=split,
                    time=elapsed(),
                    tokens=self.state.tokens,
                    **metrics,
                )

        if self.resume_from is not None:
            log("event", event="resume", checkpoint=str(self.resume_from))

        bar = None
        if is_main and cfg.progress:
            from tqdm.auto import tqdm

            by_steps = cfg.time_budget is None
            bar = tqdm(
                total=self.max_steps if by_steps else cfg.time_budget,
                initial=self.state.step if by_steps else min(elapsed(), cfg.time_budget),
                desc="pretrain" if "mlm" in self.task.term_names else "train",
                unit="step" if by_steps else "s",
                dynamic_ncols=True,
                bar_format=None
                if by_steps
                else "{l_bar}{bar}| {n:.0f}/{total:.0f}s [{elapsed}<{remaining}{postfix}]",
            )
        stop_reason = "max_steps"
        has_eval = bool(self.task.eval_batches())  # no held-out set (eval_examples=0): no eval
        window_start = time.perf_counter()
        last_train: dict[str, float] = {}
        signals = StopSignal()
        try:
            with signals:
                while True:
                    now = elapsed()
                    if cfg.time_budget is not None:
                        # Clocks differ a little between processes; all must agree on the
                        # learning rate and on when to stop, so they use the largest.
                        now = context.max_value(now)
                    if self._progress(now) >= 1.0:
                        stop_reason = (
                            "max_steps"
                            if self.max_steps is not None and self.state.step >= self.max_steps
                            else "time_budget"
                        )
                        break
                    lr = self._lr_for_next_step(now)
                    stop_early: str | None = None
                    try:
                        step_metrics = self._train_step(lr)
                    except NonFiniteLossError as err:
                        log("event", event="nonfinite_loss", message=str(err))
                        raise NonFiniteLossError(f"{err} {self._nonfinite_advice()}") from None
                    step = self.state.step
                    if bar is not None:
                        if cfg.time_budget is None:
                            bar.update(1)
                        else:
                            bar.n = min(elapsed(), cfg.time_budget)
                        bar.set_postfix(
                            loss=f"{step_metrics['loss']:.3f}",
                            tok_s=f"{self.state.window.get('tokens', 0) / max(time.perf_counter() - window_start, 1e-9):,.0f}",
                            step=step,
                            refresh=False,
                        )
                    if step % cfg.log_every == 0:
                        last_train = self._window_metrics(time.perf_counter() - window_start)
                        log("train", **last_train)
                        self.state.window = {}
                        window_start = time.perf_counter()
                    if has_eval and cfg.eval_every and step % cfg.eval_every == 0:
                        self.state.last_eval = evaluate_task(
                            self.task, context, autocast_dtype=self.autocast_dtype
                        )
                        stop_early = self.task.after_evaluation(step, self.state.last_eval)
                        log("eval", **self.state.last_eval)
                        self.state.extra["last_eval_step"] = step
                        if is_main:
                            logger.info(
                                "step %d held-out: %s", step, _format_metrics(self.state.last_eval)
                            )
                        last_eval_step = step
                        window_start = time.perf_counter()
                    self.state.elapsed = elapsed()
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        self._save_checkpoint()
                        window_start = time.perf_counter()
                    if context.any(signals.received is not None):
                        stop_reason = f"signal:{signals.received or 'remote'}"
                        break
                    if stop_early:
                        stop_reason = stop_early
                        break
            # The end: a last evaluation (not when asked to stop quickly), a checkpoint, final/.
            stopped_by_signal = stop_reason.startswith("signal")
            if has_eval and not stopped_by_signal and last_eval_step != self.state.step:
                self.state.last_eval = evaluate_task(
                    self.task, context, autocast_dtype=self.autocast_dtype
                )
                self.task.after_evaluation(self.state.step, self.state.last_eval)
                log("eval", **self.state.last_eval)
                self.state.extra["last_eval_step"] = self.state.step
            if self.state.window.get("steps"):
                last_train = self._window_metrics(time.perf_counter() - window_start)
                log("train", **last_train)
                self.state.window = {}
            self.state.elapsed = elapsed()
            last_checkpoint = self.run.latest_checkpoint()
            if self._last_checkpoint_step != self.state.step:
                last_checkpoint = self._save_checkpoint()
            final_dir = None
            if already_finished and self.run.final_dir.is_dir():
                final_dir = self.run.final_dir
            elif not stopped_by_signal:
                final_dir = self._save(self.run.final_dir, with_optimizer=False)
            if not already_finished:
                log("event", event="stop", reason=stop_reason)
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        result = TrainingResult(
            run_dir=self.run.root,
            step=self.state.step,
            tokens=self.state.tokens,
            elapsed=self.state.elapsed,
            stop_reason=stop_reason,
            final_dir=final_dir,
            last_checkpoint=last_checkpoint,
            last_train=last_train,
            last_eval=dict(self.state.last_eval),
        )
        if is_main:
            if stopped_by_signal:
                logger.warning(
                    "stopped by %s at step %d; checkpoint saved in %s. Continue with --resume.",
                    stop_reason.split(":", 1)[1],
                    self.state.step,
                    last_checkpoint,
                )
            logger.debug("%s", result.summary())
        return result

    def _nonfinite_advice(self) -> str:
        last = self.run.latest_checkpoint()
        where = (
            f"The last good checkpoint is {last}."
            if last is not None
            else "No checkpoint had been written yet."
        )
        return (
            f"{where} Try a lower --lr (now {self.optim_config.lr:g}), a longer warmup, "
            "gradient clipping (--max-grad-norm 1.0) or --precision fp32."
        )
