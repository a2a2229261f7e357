"""Distributed data parallel training with ``torchrun`` (one process per GPU or CPU slot).

``torchrun`` starts the processes and sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE`` and the
rendezvous address; :func:`setup_distributed` reads them, joins the process group (NCCL on GPUs,
gloo on CPUs) and picks the device. Without those variables it returns a one-process context, so
the same training code runs on a laptop and on many machines.

Rules the training loop follows (see docs/training.md):

* every process builds the same model from the same seed, and DDP broadcasts rank 0's weights;
* each global micro-batch is built identically on every process and each process trains on its
  own contiguous slice of it (``DistributedSampler``-style sharding without a DataLoader);
* gradients are synchronised only on the last micro-batch of an accumulation window
  (``no_sync`` on the others), so accumulation costs one all-reduce per optimizer step;
* every process prepares the data; the cache entry's lock lets one process build an entry
  while the others (on this machine, or on any machine sharing the cache folder) wait and then
  read it; then all check that they hold the same data and tokenizer fingerprints;
* only rank 0 writes the run directory; after each save it tells the others whether the save
  worked, so a failed save (disk full) stops every process with rank 0's reason instead of
  leaving them in a collective;
* training collectives time out after :data:`DEFAULT_COLLECTIVE_TIMEOUT` (5 minutes, or
  ``$MINIBERT_COLLECTIVE_TIMEOUT`` seconds): a dead or stuck process ends the run in minutes,
  not after torch's default 30. The startup (rendezvous, waiting for the data cache) keeps a
  longer :data:`STARTUP_TIMEOUT`, since building a cache may take that long.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

__all__ = [
    "COLLECTIVE_TIMEOUT_ENV",
    "DEFAULT_COLLECTIVE_TIMEOUT",
    "STARTUP_TIMEOUT",
    "DistributedContext",
    "RemoteFailureError",
    "collective_timeout",
    "maybe_no_sync",
    "setup_distributed",
]

logger = logging.getLogger(__name__)

# A training collective waits for the slowest process. The longest legitimate wait inside
# training is rank 0 writing a checkpoint (seconds for a base-sized model, a minute on a slow
# network disk); 5 minutes covers that with a wide margin and still ends a run whose peer died
# long before torch's default of 30 minutes.
DEFAULT_COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=5)
COLLECTIVE_TIMEOUT_ENV = "MINIBERT_COLLECTIVE_TIMEOUT"
# The rendezvous and the data-cache stage: one machine may build the cache while the others
# wait for it (see minibert.data.pipeline), which can take much longer than a training step.
STARTUP_TIMEOUT = datetime.timedelta(minutes=30)


class RemoteFailureError(RuntimeError):
    """Another process (rank 0) failed; this one stops with its reason."""


def collective_timeout(seconds: float | None = None) -> datetime.timedelta:
    """The training collectives' timeout: ``seconds``, else ``$MINIBERT_COLLECTIVE_TIMEOUT``
    (seconds), else :data:`DEFAULT_COLLECTIVE_TIMEOUT`."""
    if seconds is None:
        text = os.environ.get(COLLECTIVE_TIMEOUT_ENV, "").strip()
        if text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"${COLLECTIVE_TIMEOUT_ENV}={text!r} is not a number of seconds"
                ) from None
    if seconds is None:
        return DEFAULT_COLLECTIVE_TIMEOUT
    if seconds <= 0:
        raise ValueError(f"the collective timeout must be positive, got {seconds} seconds")
    return datetime.timedelta(seconds=seconds)


@dataclass
class DistributedContext:
    """Who this process is in a (possibly one-process) run, and the device it trains on."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - an immutable default
    initialized_here: bool = False
    # The process group of the training collectives (short timeout); None: the default group.
    group: Any = None

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs at INFO level."""
        return self.rank == 0

    def barrier(self, *, startup: bool = False) -> None:
        """Wait for every process. ``startup``: in the default group, whose timeout is the
        long :data:`STARTUP_TIMEOUT` (waiting for a data cache), not the training one."""
        if self.is_distributed:
            dist.barrier(group=None if startup else self.group)

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes, in place, and return it (a no-op for one process)."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=self.group)
        return tensor

    def share_main_error(self, message: str | None) -> str | None:
        """Rank 0's ``message`` (an error, or None for success) on every process.

        Used after rank 0 writes a file, in place of a barrier: every process waits there
        anyway, and learns whether to go on or to stop with rank 0's reason.
        """
        if not self.is_distributed:
            return message
        data = (message or "").encode("utf-8")[:4000] if self.is_main else b""
        length = torch.tensor([len(data)], dtype=torch.int64, device=self.device)
        dist.broadcast(length, src=0, group=self.group)
        size = int(length.item())
        if size == 0:
            return None
        buffer = torch.zeros(size, dtype=torch.uint8, device=self.device)
        if self.is_main:
            buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        dist.broadcast(buffer, src=0, group=self.group)
        return bytes(buffer.cpu().tolist()).decode("utf-8", errors="replace")

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any (to stop all of them together)."""
        if not self.is_distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX, group=self.group)
        return bool(value.item() > 0)

    def max_value(self, value: float) -> float:
        """The largest ``value`` over processes (e.g. elapsed time, so all agree on it)."""
        if not self.is_distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX, group=self.group)
        return float(tensor.item())

    def same_everywhere(self, text: str) -> bool:
        """Whether every process holds the same ``text`` (e.g. a data fingerprint).

        Runs in the default group (startup timeout): it follows the data preparation, which
        some processes may have spent waiting for another's cache build.
        """
        if not self.is_distributed:
            return True
        digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "little")
        low = torch.tensor([digest], dtype=torch.int64, device=self.device)
        high = low.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)  # default group: startup timeout
        dist.all_reduce(high, op=dist.ReduceOp.MAX)
        return bool(low.item() == high.item())

    def shard(self, items: list) -> list:
        """This process's contiguous share of a global micro-batch (equal sizes required)."""
        if len(items) % self.world_size:
            raise ValueError(
                f"a micro-batch of {len(items)} does not split evenly over {self.world_size} "
                "processes; make train.batch_size / train.grad_accum_steps a multiple of the "
                "number of processes"
            )
        per_rank = len(items) // self.world_size
        return items[self.rank * per_rank : (self.rank + 1) * per_rank]

    def close(self) -> None:
        if self.initialized_here and dist.is_initialized():
            dist.destroy_process_group()
            self.initialized_here = False


def _resolve_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                "train.device is cuda but this torch build sees no CUDA GPU; use --device cpu"
            )
        if device.index is None:
            device = torch.device("cuda", local_rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    return device


def setup_distributed(
    device: str = "auto", timeout_seconds: float | None = None
) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        timeout_seconds: how long a training collective waits for a slow or dead process
            (default: :func:`collective_timeout`). The startup uses :data:`STARTUP_TIMEOUT`.
    """
    training_timeout = collective_timeout(timeout_seconds)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world_size = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    resolved = _resolve_device(device, local_rank)
    context = DistributedContext(
        rank=rank,
        local_rank=local_rank,
        world_size=world_size,
        local_world_size=local_world_size,
        device=resolved,
    )
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=STARTUP_TIMEOUT)
        context.initialized_here = True
        # A second group over the same processes, for training, with the shorter timeout.
        context.group = dist.new_group(timeout=training_timeout)
        logger.info(
            "joined a %d-process %s group as rank %d (local rank %d) on %s; collectives time "
            "out after %.0f s",
            world_size,
            backend,
            rank,
            local_rank,
            resolved,
            training_timeout.total_seconds(),
        )
    return context


@contextlib.contextmanager
def maybe_no_sync(model: torch.nn.Module, skip_sync: bool) -> Iterator[None]:
    """``model.no_sync()`` when ``skip_sync`` and the model is DDP-wrapped, else nothing.

    Inside ``no_sync`` DDP only accumulates local gradients; the all-reduce happens on the
    backward pass of the last micro-batch, which then averages the *sum* of all micro-batches.
    """
    if skip_sync and isinstance(model, torch.nn.parallel.DistributedDataParallel):
        with model.no_sync():
            yield
    else:
        yield
