"""An on-disk cache of inspection results: one ``.npz`` file per (checkpoint, question).

The key is a hash of the checkpoint folder, the modification times of its weights and config,
and the question (the function, the text, its options), so a checkpoint rewritten in place is
recomputed and nothing stale is ever returned. Files hold numpy arrays plus one JSON string;
they are read with ``allow_pickle=False`` (no code runs on load) and written to a temporary
name then renamed, so a reader never sees half a file.

The default folder is ``$MINIBERT_CACHE/inspect`` or ``~/.cache/minibert/inspect``: outside
the run directory, which belongs to the training run that writes it (and may be read-only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_VERSION", "DiskCache", "default_cache_dir"]

logger = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the stored layout changes: old files are then simply not found
_META = "__meta__"


def default_cache_dir() -> Path:
    """``$MINIBERT_CACHE/inspect``, else ``~/.cache/minibert/inspect``."""
    root = os.environ.get("MINIBERT_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "minibert"
    return base / "inspect"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns / 1e9
    except OSError:
        return 0.0


class DiskCache:
    """Get and put results keyed on (checkpoint folder + its mtimes, question)."""

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_cache_dir()

    def key(self, checkpoint: Path, question: dict[str, Any]) -> str:
        checkpoint = Path(checkpoint).resolve()
        parts = {
            "version": CACHE_VERSION,
            "path": str(checkpoint),
            "weights": _mtime(checkpoint / "model.safetensors"),
            "config": _mtime(checkpoint / "config.json"),
            "question": question,
        }
        text = json.dumps(parts, sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.npz"

    def get(self, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
        """(arrays, meta) stored under ``key``, or None (missing or unreadable: recompute)."""
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files if name != _META}
                meta = json.loads(str(data[_META]))
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as err:
            logger.warning("ignoring unreadable cache file %s (%s)", path, err)
            return None
        return arrays, meta

    def put(self, key: str, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Store ``arrays`` and ``meta`` (JSON-able) under ``key``; a failure only logs."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=self.directory)
            with os.fdopen(handle, "wb") as file:
                np.savez(file, **arrays, **{_META: np.array(json.dumps(meta))})
            os.replace(tmp, self._path(key))
        except OSError as err:  # a read-only or full disk costs speed, not the answer
            logger.warning("could not write the inspect cache in %s: %s", self.directory, err)
