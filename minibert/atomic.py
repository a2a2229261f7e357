"""Crash-safe writes: a file or a directory is either the old complete one or the new one.

Every writer in minibert (``save_pretrained``, run directories, checkpoints, the data cache)
goes through this module, so the rules live in one place:

* **Write aside, then rename.** New content goes to a dot-prefixed temporary sibling
  (``.tmp-<name>-<pid>-<random>``) on the same file system and is renamed over the target
  when complete: ``rename(2)`` is atomic, so a reader sees the old or the new version, never a
  mix, and a killed writer leaves only a temporary that readers ignore.
* **fsync before and after.** The new file's data is flushed (``fsync``) before the rename, and
  the parent directory after it: without the second, a power loss can forget the rename itself
  (POSIX: a rename is recorded in the directory, whose own data is only durable once synced).
* **Replace a directory in two renames.** A directory cannot be renamed over a non-empty one,
  so :func:`replace_directory` renames the old one aside (``.old-<name>-<pid>``), the new one
  into place, then deletes the old. A kill between the two renames leaves the old copy beside
  the missing target; :func:`restore_interrupted_replace` puts it back.
* **Delete by renaming first.** :func:`remove_tree` renames a directory to ``.trash-...``
  before deleting it, so a kill midway never leaves a half-deleted directory under a name a
  reader trusts (a ``step-*`` checkpoint, a cache entry).

Fault injection: tests set ``MINIBERT_FAULT=kill:<point>`` in a child process and the process
kills itself (SIGKILL, no clean-up) when it reaches :func:`crash_point` with that name, so each
crash window is tested by a real kill at that moment rather than by planting files
(``fail:<point>`` raises an ``OSError`` there instead, ``hang:<point>`` never returns).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "FAULT_ENV",
    "atomic_directory",
    "atomic_file",
    "crash_point",
    "fsync_directory",
    "fsync_tree",
    "remove_tree",
    "replace_directory",
    "restore_interrupted_replace",
    "temporary_sibling",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

logger = logging.getLogger(__name__)

FAULT_ENV = "MINIBERT_FAULT"

# Prefixes of the siblings this module creates; readers skip them, writers' recovery finds them.
TMP_PREFIX = ".tmp-"
OLD_PREFIX = ".old-"
TRASH_PREFIX = ".trash-"


def crash_point(name: str) -> None:
    """A fault-injection point: a no-op unless ``$MINIBERT_FAULT`` names this point.

    ``MINIBERT_FAULT=<kind>:<point>[@<rank>]``, where kind is ``kill`` (SIGKILL at once: no
    ``finally``, no ``atexit``, exactly like ``kill -9`` or the OOM killer), ``fail`` (raise
    ``OSError``, as a full disk would) or ``hang`` (sleep forever, as a stuck process would).
    ``@1`` limits it to the process whose ``$RANK`` is 1 (under ``torchrun``).
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    kind, _, rest = spec.partition(":")
    point, _, rank = rest.partition("@")
    if point != name or (rank and rank != os.environ.get("RANK", "0")):
        return
    logger.error("fault injection: %s at %s", kind, name)
    if kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "fail":
        raise OSError(f"injected failure at {name} (${FAULT_ENV})")
    elif kind == "hang":
        while True:
            time.sleep(3600)
    else:
        raise ValueError(f"${FAULT_ENV}={spec!r}: the kind must be kill, fail or hang")


def fsync_directory(path: str | os.PathLike[str]) -> None:
    """Make the entries of directory ``path`` (renames, new files) durable.

    Some systems (Windows, a few network file systems) cannot open a directory for fsync;
    there the rename is as durable as the file system makes it, and we go on.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: str | os.PathLike[str]) -> None:
    """fsync every file under ``root``, then every directory (deepest first), then ``root``."""
    root = Path(root)
    directories = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        elif path.is_dir():
            directories.append(path)
    for directory in reversed(directories):
        fsync_directory(directory)
    fsync_directory(root)


def temporary_sibling(target: str | os.PathLike[str], prefix: str = TMP_PREFIX) -> Path:
    """A fresh hidden name next to ``target``: ``.tmp-<name>-<pid>-<random>``.

    The pid says which process left it; the random part keeps two writers in one process apart.
    """
    target = Path(target)
    return target.parent / f"{prefix}{target.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; when the body succeeds, rename it there.

    For writers that want a path (``safetensors.save_file``, ``torch.save``). The file is
    fsynced before the rename and the directory after it. If the body raises, the temporary
    file is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        crash_point("atomic_file:before_rename")
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    fsync_directory(target.parent)


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` so that a reader or a crash sees the old or the new file."""
    target = Path(target)
    with atomic_file(target) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return target


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(target, text.encode("utf-8"))


def write_json_atomic(target: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as indented JSON (plus a final newline) atomically (``results.json``...)."""
    return write_text_atomic(target, json.dumps(obj, indent=indent) + "\n")


# --------------------------------------------------------------------------------------------
# Directories
# --------------------------------------------------------------------------------------------


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Delete directory ``path``: rename it to ``.trash-...`` first, then delete that.

    After the rename, nothing under ``path``'s name is half deleted; a kill during the deletion
    leaves a ``.trash-`` folder that the next writer sweeps. A missing ``path`` is fine.
    """
    path = Path(path)
    trash = temporary_sibling(path, TRASH_PREFIX)
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    fsync_directory(path.parent)
    crash_point("remove_tree:renamed")
    shutil.rmtree(trash, ignore_errors=True)


def replace_directory(new: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Put the complete directory ``new`` in ``target``'s place, replacing what is there.

    Two renames: the old ``target`` to ``.old-<name>-<pid>``, then ``new`` to ``target``; then
    the old copy is deleted. At every moment the old or the new complete directory exists,
    under ``target``'s name or beside it (see :func:`restore_interrupted_replace`).
    """
    new, target = Path(new), Path(target)
    old = None
    if target.exists():
        old = target.parent / f"{OLD_PREFIX}{target.name}-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
        crash_point("replace_directory:between_renames")
    try:
        os.rename(new, target)
    except OSError:
        if old is not None and not target.exists():
            os.rename(old, target)  # put the old copy back rather than leave no copy
        raise
    fsync_directory(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def restore_interrupted_replace(target: str | os.PathLike[str]) -> Path | None:
    """Undo a :func:`replace_directory` killed between its two renames.

    If ``target`` is missing and an ``.old-<name>-*`` copy lies beside it, rename the newest
    such copy back to ``target`` and return it. The new copy, if it got written, is a ``.tmp-``
    sibling that the caller's clean-up removes: the old copy is the one known to be complete.
    Only a process that owns the directory (holds its lock) may call this.
    """
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return None
    candidates = [p for p in target.parent.glob(f"{OLD_PREFIX}{target.name}-*") if p.is_dir()]
    if not candidates:
        return None
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    os.rename(newest, target)
    fsync_directory(target.parent)
    logger.warning(
        "restored %s from %s, left by a save that was killed while replacing it",
        target,
        newest.name,
    )
    return target


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Write a directory all at once: yield a temporary sibling, rename it to ``target`` after.

    If the body raises, the temporary directory is removed and ``target`` is untouched. If the
    process dies, the temporary directory (``.tmp-*``) is left for the owner's clean-up and is
    never mistaken for the real thing. An existing ``target`` is replaced with
    :func:`replace_directory`. Everything is fsynced before it becomes visible.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(target)
    tmp.mkdir()
    try:
        yield tmp
        fsync_tree(tmp)
        crash_point("atomic_directory:before_rename")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_directory(tmp, target)
