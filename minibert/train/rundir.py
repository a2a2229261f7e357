"""The run directory: the contract between training and everything that reads a run.

    runs/<name>/
      run.json                 resolved config, versions, seed, corpus + tokenizer fingerprints
      metrics.jsonl            one JSON object per line, appended and flushed as training goes
      tokenizer/               standard HF tokenizer files
      checkpoints/step-000500/ HF-loadable weights (+ trainer state for resume)
      final/                   same layout, the last good weights
    runs/.<name>.lock          the writer's lock (pid, host, command), beside the run

Writers: :class:`RunDirectory` (layout, the ``--out``/``--resume``/``--overwrite`` rules, the
lock that keeps a second run out, repairs after a killed save) and :class:`MetricsWriter`; every
file goes through :mod:`minibert.atomic` (temporary name, fsync, rename, fsync the parent).
Readers take no lock: :func:`read_metrics`, which tolerates the partial last line a
concurrent writer may have left, and :meth:`RunDirectory.checkpoints`, which never lists a
checkpoint still being written (those live under a dot-prefixed temporary name until renamed).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from minibert.atomic import (
    OLD_PREFIX,
    TMP_PREFIX,
    TRASH_PREFIX,
    atomic_directory,
    fsync_directory,
    remove_tree,
    restore_interrupted_replace,
    write_json_atomic,
    write_text_atomic,
)
from minibert.locking import LockHeldError, RunLock, acquire_run_lock

__all__ = [
    "CHECKPOINT_PATTERN",
    "LockHeldError",
    "MetricsWriter",
    "RunDirectory",
    "checkpoint_name",
    "iter_metrics",
    "read_metrics",
    "why_not_a_run",
    "write_json_atomic",
]

logger = logging.getLogger(__name__)

RUN_JSON = "run.json"
METRICS = "metrics.jsonl"
TOKENIZER = "tokenizer"
CHECKPOINTS = "checkpoints"
FINAL = "final"
CHECKPOINT_PATTERN = re.compile(r"^step-(\d+)$")


def checkpoint_name(step: int) -> str:
    """``step-000500``: zero-padded so names sort in step order."""
    return f"step-{step:06d}"


class RunDirectory:
    """Paths and rules of one run directory.

    Use :meth:`create` to start a run (refuses a non-empty directory unless ``overwrite``, and
    ``overwrite`` replaces only a run) and :meth:`open_for_resume` to continue one (refuses a
    directory with no checkpoint). Both hold the run's lock (:mod:`minibert.locking`) until
    :meth:`close`, the end of a ``with`` block, the object's collection or the process's end,
    so a second run on the same directory fails at once, naming the first one's pid.
    ``RunDirectory(root)`` alone only reads: it takes no lock.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._lock: RunLock | None = None

    # paths ---------------------------------------------------------------------------------
    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def metrics_path(self) -> Path:
        return self.root / METRICS

    @property
    def tokenizer_dir(self) -> Path:
        return self.root / TOKENIZER

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def final_dir(self) -> Path:
        return self.root / FINAL

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints_dir / checkpoint_name(step)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.root)!r})"

    # the lock ------------------------------------------------------------------------------
    def _hold(self, lock: RunLock) -> None:
        self._lock = lock
        weakref.finalize(self, lock.release)

    @property
    def locked(self) -> bool:
        """Whether this object holds the run's lock (it was created or opened for resume)."""
        return self._lock is not None and not self._lock._released

    def close(self) -> None:
        """Release the run's lock (if this object holds it). Safe to call twice."""
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RunDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # creating and reopening ----------------------------------------------------------------
    @classmethod
    def create(cls, root: str | Path, *, overwrite: bool = False) -> RunDirectory:
        """Start a fresh run in ``root`` and hold its lock.

        A missing or empty directory is used as is. A non-empty one is an error unless
        ``overwrite`` is true and it is a run (see :func:`why_not_a_run`): then it is renamed
        aside and deleted, and a fresh directory takes its place, so a crash midway leaves
        either the whole old run or none of it under ``root``, never half of one.

        The lock is re-entrant within a process: ``pretrain`` locks ``root`` with
        :func:`minibert.locking.acquire_run_lock` before its slow data preparation, and this
        takes a second share of the same lock.

        Raises:
            LockHeldError: another process is running in ``root``.
            FileExistsError: ``root`` is a file, or holds something other than a run.
        """
        run = cls(root)
        if run.root.exists() and not run.root.is_dir():
            raise FileExistsError(f"--out {run.root} is a file, not a directory")
        lock = acquire_run_lock(run.root)
        try:
            if run.root.is_dir() and any(run.root.iterdir()):
                if not overwrite:
                    raise FileExistsError(
                        f"--out {run.root} already exists and is not empty. Pass --resume to "
                        "continue that run, --overwrite to replace it, or choose another --out."
                    )
                reason = why_not_a_run(run.root)
                if reason is not None:
                    raise FileExistsError(
                        f"--overwrite refuses to empty {run.root}: {reason}. It replaces only "
                        f"a minibert run directory (one with {RUN_JSON}) or an empty one; "
                        "choose another --out, or move those files away first."
                    )
                logger.warning("overwriting the run in %s", run.root)
                remove_tree(run.root)
            _sweep_siblings(run.root, (TRASH_PREFIX,))
            run.root.mkdir(parents=True, exist_ok=True)
            run.checkpoints_dir.mkdir(exist_ok=True)
            fsync_directory(run.root.parent)
        except BaseException:
            lock.release()
            raise
        run._hold(lock)
        return run

    @classmethod
    def open_for_resume(cls, root: str | Path) -> RunDirectory:
        """Reopen an existing run that has at least one complete checkpoint; hold its lock.

        Repairs what a killed save left: a ``final/`` or checkpoint whose replacement was
        killed between its two renames gets its old copy back, then leftovers are removed.
        """
        run = cls(root)
        if not run.root.is_dir():
            raise FileNotFoundError(f"--resume: {run.root} does not exist; nothing to resume")
        lock = acquire_run_lock(run.root)
        try:
            if not run.run_json.is_file():
                raise FileNotFoundError(
                    f"--resume: {run.root} has no {RUN_JSON}, so it is not a minibert run directory"
                )
            run.recover_interrupted_saves()
            if run.latest_checkpoint() is None:
                raise FileNotFoundError(
                    f"--resume: {run.root} has no checkpoint yet (checkpoints/step-*/ is "
                    "empty). Start it again without --resume (add --overwrite to replace what "
                    "is there)."
                )
            run.remove_partial_checkpoints()
        except BaseException:
            lock.release()
            raise
        run._hold(lock)
        return run

    # run.json, results, tokenizer ----------------------------------------------------------
    def write_run_json(self, info: Mapping[str, Any]) -> None:
        """Write ``run.json`` atomically (temp file + rename)."""
        write_text_atomic(self.run_json, json.dumps(info, indent=2, sort_keys=False) + "\n")

    def read_run_json(self) -> dict[str, Any]:
        if not self.run_json.is_file():
            raise FileNotFoundError(f"{self.root} has no {RUN_JSON}; is it a minibert run?")
        return json.loads(self.run_json.read_text(encoding="utf-8"))

    def write_json(self, name: str, obj: Any) -> Path:
        """Write ``<run>/<name>`` (``results.json``...) as JSON, atomically."""
        return write_json_atomic(self.root / name, obj)

    def write_tokenizer(self, save: Callable[[Path], None]) -> Path:
        """Write ``tokenizer/`` all at once: ``save(directory)`` fills a temporary folder that
        then replaces ``tokenizer/`` (so a reader never loads half a tokenizer)."""
        with atomic_directory(self.tokenizer_dir) as tmp:
            save(tmp)
        return self.tokenizer_dir

    # checkpoints ---------------------------------------------------------------------------
    def checkpoints(self) -> list[tuple[int, Path]]:
        """Complete checkpoints as ``(step, path)``, oldest first.

        Temporary directories of a save in progress start with a dot and are never listed.
        """
        if not self.checkpoints_dir.is_dir():
            return []
        found = []
        for child in self.checkpoints_dir.iterdir():
            match = CHECKPOINT_PATTERN.match(child.name)
            if match and child.is_dir():
                found.append((int(match.group(1)), child))
        return sorted(found)

    def latest_checkpoint(self) -> Path | None:
        found = self.checkpoints()
        return found[-1][1] if found else None

    def recover_interrupted_saves(self) -> list[Path]:
        """Put back ``final/``, ``tokenizer/`` or a checkpoint whose replacement was killed
        between its two renames (its old copy lies beside it as ``.old-<name>-<pid>``)."""
        restored = []
        targets = [self.final_dir, self.tokenizer_dir]
        if self.checkpoints_dir.is_dir():
            for child in self.checkpoints_dir.glob(f"{OLD_PREFIX}step-*"):
                name = child.name[len(OLD_PREFIX) :].rsplit("-", 1)[0]
                if CHECKPOINT_PATTERN.match(name):
                    targets.append(self.checkpoints_dir / name)
        for target in targets:
            if restore_interrupted_replace(target) is not None:
                restored.append(target)
        return restored

    def remove_partial_checkpoints(self) -> list[Path]:
        """Delete leftovers of saves and deletions that were killed midway (dot-prefixed).

        Call :meth:`recover_interrupted_saves` first: an ``.old-`` copy may be the only one.
        """
        removed = []
        for parent in (self.checkpoints_dir, self.root):
            if parent.is_dir():
                removed += _sweep_children(parent, _LEFTOVER_PREFIXES)
        if removed:
            logger.info("removed %d leftover(s) of an interrupted save", len(removed))
        return removed

    def prune_checkpoints(self, keep: int) -> list[Path]:
        """Keep the newest ``keep`` checkpoints; delete older ones (``keep <= 0`` keeps all).

        Each is renamed out of the ``step-*`` names before it is deleted, so a kill midway
        never leaves a half-deleted checkpoint that :meth:`checkpoints` would list.
        """
        if keep <= 0:
            return []
        found = self.checkpoints()
        doomed = [path for _, path in found[:-keep]]
        for path in doomed:
            remove_tree(path)
        return doomed


_LEFTOVER_PREFIXES = (TMP_PREFIX, OLD_PREFIX, TRASH_PREFIX)


def _sweep_children(parent: Path, prefixes: tuple[str, ...]) -> list[Path]:
    removed = []
    for child in parent.iterdir():
        if child.name.startswith(prefixes):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
            removed.append(child)
    return removed


def _sweep_siblings(root: Path, prefixes: tuple[str, ...]) -> None:
    """Remove ``.trash-<name>-*`` beside ``root``: a killed ``--overwrite``'s old run."""
    parent = root.absolute().parent
    if not parent.is_dir():
        return
    for child in parent.iterdir():
        if child.name.startswith(tuple(f"{p}{root.name}-" for p in prefixes)) and child.is_dir():
            shutil.rmtree(child, ignore_errors=True)


def why_not_a_run(path: str | Path, *, _depth: int = 0) -> str | None:
    """Why ``--overwrite`` must not empty ``path`` (None: it may).

    It may when ``path`` is a run directory (it has ``run.json``, or ``demo.json``), or holds
    nothing but runs, empty folders and leftovers of minibert's own writes: a demo or
    cross-validation folder interrupted before its summary, a run killed before ``run.json``.
    Anything else (a user's notes, a source tree, the working directory) is refused.
    """
    path = Path(path)
    if _depth == 0 and Path.cwd().resolve().is_relative_to(path.resolve()):
        return "it is the working directory (or contains it)"
    if (path / RUN_JSON).is_file() or (path / "demo.json").is_file():
        return None
    if _depth >= 3:
        return f"{path} holds nested folders that are not a minibert run"
    for child in sorted(path.iterdir()):
        if child.name.startswith(_LEFTOVER_PREFIXES) or (
            child.name.startswith(".") and child.name.endswith(".lock")
        ):
            continue
        if child.is_dir() and not child.is_symlink():
            reason = why_not_a_run(child, _depth=_depth + 1)
            if reason is not None:
                return reason
        else:
            return f"it holds {child.name}, which is not part of a minibert run"
    return None


# --------------------------------------------------------------------------------------------
# metrics.jsonl
# --------------------------------------------------------------------------------------------


def _json_safe(value: Any) -> Any:
    """NaN and infinity are not JSON; write them as null so any reader can parse the line."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # 0-d tensors and numpy scalars
        return _json_safe(value.item())
    return value


class MetricsWriter:
    """Appends one JSON object per line to ``metrics.jsonl`` and flushes each line.

    Every line carries ``step``, ``split`` (``train``, ``eval``, ...), ``time`` (seconds of
    training so far, summed over resumed sessions), ``wall_time`` (Unix time) and ``tokens``
    (tokens seen so far), then the metrics. Each line goes out in one ``write`` call, so a
    concurrent reader sees either nothing of it or a prefix of it (which :func:`read_metrics`
    skips).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def write(
        self, *, step: int, split: str, time: float, tokens: int, **metrics: Any
    ) -> dict[str, Any]:
        import time as _time

        record = {
            "step": int(step),
            "split": split,
            "time": round(float(time), 3),
            "wall_time": round(_time.time(), 3),
            "tokens": int(tokens),
            **metrics,
        }
        line = json.dumps(_json_safe(record), allow_nan=False) + "\n"
        self._handle.write(line)
        self._handle.flush()
        return record

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_metrics(path: str | Path, split: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the complete metric records of ``metrics.jsonl`` (see :func:`read_metrics`)."""
    path = Path(path)
    if not path.exists():
        return
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().split("\n")
    # The text after the last newline is either empty or a line still being written.
    *complete, tail = lines
    for number, line in enumerate(complete, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            logger.warning("%s:%d is not valid JSON; skipped", path, number)
            continue
        if split is None or record.get("split") == split:
            yield record
    if tail.strip():
        try:
            record = json.loads(tail)
        except json.JSONDecodeError:
            return  # a partial last line: the writer has not finished it yet
        if isinstance(record, dict) and (split is None or record.get("split") == split):
            yield record


def read_metrics(path: str | Path, split: str | None = None) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` (a run directory or the file) while it may still be written.

    A partial last line (the writer is mid-line, or was killed mid-line) is skipped, not an
    error. ``split`` keeps only lines of that split (``"train"``, ``"eval"``). A missing file
    reads as no records.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METRICS
    return list(iter_metrics(path, split=split))


def truncate_metrics_after(path: str | Path, step: int) -> int:
    """Drop records past ``step`` (and any partial line), atomically. Returns how many dropped.

    Used on resume: lines a killed run wrote after its last checkpoint are recomputed.
    """
    path = Path(path)
    if not path.exists():
        return 0
    records = read_metrics(path)
    kept = [r for r in records if int(r.get("step", 0)) <= step]
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept)
    write_text_atomic(path, text)
    dropped = len(records) - len(kept)
    if dropped:
        logger.info("dropped %d metric line(s) written after step %d", dropped, step)
    return dropped


def wait_for_metrics(
    path: str | Path, predicate, timeout: float = 60.0, poll: float = 0.05
) -> dict[str, Any] | None:
    """Poll ``metrics.jsonl`` until a record satisfies ``predicate`` (for watchers and tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in read_metrics(path):
            if predicate(record):
                return record
        time.sleep(poll)
    return None
