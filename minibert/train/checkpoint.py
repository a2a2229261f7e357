"""Atomic checkpoints: HF-loadable weights plus everything needed to resume exactly.

A checkpoint directory holds

    config.json, model.safetensors   the model, as ``transformers`` loads it
    tokenizer files                  so ``pipeline("fill-mask", model=dir)`` works on its own
    trainer_state.json               step, data order, RNG states, time and tokens so far (JSON)
    optimizer.pt                     AdamW moments (``torch.save``; read back with
                                     ``torch.load(weights_only=True)`` only, never pickle)

It is written into a dot-prefixed temporary directory next to its final place and renamed when
complete (:func:`minibert.atomic.atomic_directory`), so a reader, and a resume after
``kill -9``, never sees half a checkpoint. ``trainer_state.json`` also records the SHA-256 of
every other file, and resume checks them (:func:`verify_checkpoint`): a checkpoint damaged
after it was written (a disk error, a copy cut short) is refused instead of trained on.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from minibert.atomic import atomic_directory, crash_point

__all__ = [
    "OPTIMIZER_FILE",
    "TRAINER_STATE_FILE",
    "CheckpointCorruptError",
    "TrainerState",
    "atomic_directory",
    "capture_rng_state",
    "checkpoint_checksums",
    "load_optimizer_state",
    "load_trainer_state",
    "restore_rng_state",
    "save_checkpoint",
    "verify_checkpoint",
]

logger = logging.getLogger(__name__)

TRAINER_STATE_FILE = "trainer_state.json"
OPTIMIZER_FILE = "optimizer.pt"


@dataclass
class TrainerState:
    """Where a run is, in JSON: enough (with weights and optimizer) to continue it exactly.

    ``epoch`` and ``batch_in_epoch`` are the data-order state: the shuffle of each epoch is a
    pure function of (seed, epoch), so the position within it is all a resume needs.
    ``window`` holds the running sums of the train metrics not yet logged, so a resumed run
    logs the same averages as an uninterrupted one.
    """

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    tokens: int = 0
    elapsed: float = 0.0
    world_size: int = 1
    rng: dict[str, Any] = field(default_factory=dict)
    window: dict[str, float] = field(default_factory=dict)
    last_eval: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    # SHA-256 of every other file of the checkpoint, filled in by save_checkpoint.
    checksums: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> TrainerState:
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------
# RNG state as JSON
# --------------------------------------------------------------------------------------------


def _bytes_to_text(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.cpu().numpy().tobytes()).decode("ascii")


def _text_to_bytes(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8).clone()


def capture_rng_state() -> dict[str, Any]:
    """The global RNG states (Python, NumPy, torch CPU and CUDA) as JSON-ready values.

    Dropout draws from torch's global generator; restoring it makes a resumed run's dropout
    masks the same as an uninterrupted run's.
    """
    state: dict[str, Any] = {"torch": _bytes_to_text(torch.get_rng_state())}
    py_version, py_state, py_gauss = random.getstate()
    state["python"] = [py_version, list(py_state), py_gauss]
    try:
        import numpy as np

        kind, keys, pos, has_gauss, cached = np.random.get_state()
        state["numpy"] = [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [_bytes_to_text(s) for s in torch.cuda.get_rng_state_all()]
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Undo :func:`capture_rng_state`. Missing entries are left alone."""
    if "torch" in state:
        torch.set_rng_state(_text_to_bytes(state["torch"]))
    if "python" in state:
        version, values, gauss = state["python"]
        random.setstate((version, tuple(values), gauss))
    if "numpy" in state:
        import numpy as np

        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "cuda" in state and torch.cuda.is_available():
        saved = [_text_to_bytes(s) for s in state["cuda"]]
        if len(saved) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(saved)


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------


def save_checkpoint(
    target: str | Path,
    *,
    save_model: Callable[[Path], None],
    trainer_state: TrainerState | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    extra_files: Callable[[Path], None] | None = None,
) -> Path:
    """Write one checkpoint atomically and return its path.

    Args:
        target: the final directory (e.g. ``runs/x/checkpoints/step-000500`` or ``runs/x/final``).
        save_model: writes the HF-loadable model files into the directory it is given
            (for minibert models: ``model.save_pretrained``).
        trainer_state: resume state, written as ``trainer_state.json``.
        optimizer: its ``state_dict()`` is written with ``torch.save`` as ``optimizer.pt``.
        extra_files: writes anything else (the tokenizer) into the directory.
    """
    target = Path(target)
    with atomic_directory(target) as tmp:
        save_model(tmp)
        if extra_files is not None:
            extra_files(tmp)
        if optimizer is not None:
            torch.save(optimizer.state_dict(), tmp / OPTIMIZER_FILE)
        crash_point("save_checkpoint:files_written")
        if trainer_state is not None:
            # Written last, so its checksums cover every other file.
            trainer_state.checksums = checkpoint_checksums(tmp)
            (tmp / TRAINER_STATE_FILE).write_text(trainer_state.to_json(), encoding="utf-8")
    logger.debug("saved checkpoint %s", target)
    return target


class CheckpointCorruptError(ValueError):
    """A checkpoint's files do not match the checksums recorded when it was saved."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_checksums(directory: str | Path) -> dict[str, str]:
    """SHA-256 of every file under ``directory`` except ``trainer_state.json``, by relative
    path (``/``-separated)."""
    directory = Path(directory)
    return {
        path.relative_to(directory).as_posix(): _sha256(path)
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != TRAINER_STATE_FILE
    }


def verify_checkpoint(checkpoint: str | Path, state: TrainerState | None = None) -> None:
    """Check a checkpoint's files against the checksums its ``trainer_state.json`` recorded.

    Raises :class:`CheckpointCorruptError` naming the missing or changed files. A checkpoint
    saved before checksums were recorded (an empty ``checksums``) passes with a warning.
    """
    checkpoint = Path(checkpoint)
    state = state if state is not None else load_trainer_state(checkpoint)
    if not state.checksums:
        logger.warning(
            "%s records no checksums (an older minibert saved it); not verified", checkpoint
        )
        return
    problems = []
    for name, expected in state.checksums.items():
        path = checkpoint / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif _sha256(path) != expected:
            problems.append(f"{name} has changed")
    if problems:
        raise CheckpointCorruptError(
            f"checkpoint {checkpoint} is damaged: {'; '.join(problems)} since it was saved. "
            "Delete that checkpoint folder to resume from the one before it, or start again."
        )


def load_trainer_state(checkpoint: str | Path) -> TrainerState:
    path = Path(checkpoint) / TRAINER_STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{checkpoint} has no {TRAINER_STATE_FILE}: it holds weights only and cannot be resumed"
        )
    return TrainerState.from_json(path.read_text(encoding="utf-8"))


def load_optimizer_state(checkpoint: str | Path) -> dict[str, Any]:
    """The optimizer state dict, read with ``torch.load(weights_only=True)`` (no pickle code)."""
    path = Path(checkpoint) / OPTIMIZER_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint} has no {OPTIMIZER_FILE}; cannot resume from it")
    return torch.load(path, map_location="cpu", weights_only=True)
