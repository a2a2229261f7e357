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
* the first process on each machine prepares the data cache while the others wait, then all
  check that they hold the same data and tokenizer fingerprints;
* only rank 0 writes the run directory; the others wait at barriers around checkpoints.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistributedContext", "maybe_no_sync", "setup_distributed"]

logger = logging.getLogger(__name__)


@dataclass
class DistributedContext:
    """Who this process is in a (possibly one-process) run, and the device it trains on."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")  # noqa: RUF009 - an immutable default
    initialized_here: bool = False

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and logs at INFO level."""
        return self.rank == 0

    def barrier(self) -> None:
        if self.is_distributed:
            dist.barrier()

    def all_reduce_sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over processes, in place, and return it (a no-op for one process)."""
        if self.is_distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every process if ``flag`` is true on any (to stop all of them together)."""
        if not self.is_distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item() > 0)

    def max_value(self, value: float) -> float:
        """The largest ``value`` over processes (e.g. elapsed time, so all agree on it)."""
        if not self.is_distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())

    def same_everywhere(self, text: str) -> bool:
        """Whether every process holds the same ``text`` (e.g. a data fingerprint)."""
        if not self.is_distributed:
            return True
        digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "little")
        low = torch.tensor([digest], dtype=torch.int64, device=self.device)
        high = low.clone()
        dist.all_reduce(low, op=dist.ReduceOp.MIN)
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


def setup_distributed(device: str = "auto", timeout_minutes: float = 30.0) -> DistributedContext:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Args:
        device: ``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:1``, ``mps``.
        timeout_minutes: how long collective operations wait for a slow process.
    """
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
        dist.init_process_group(
            backend=backend, timeout=datetime.timedelta(minutes=timeout_minutes)
        )
        context.initialized_here = True
        logger.info(
            "joined a %d-process %s group as rank %d (local rank %d) on %s",
            world_size,
            backend,
            rank,
            local_rank,
            resolved,
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
