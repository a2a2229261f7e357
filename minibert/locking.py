"""Exclusive locks that say who holds them: one writer per run directory and per cache entry.

A lock is ``flock(2)`` on a small lock file that holds the holder's pid, host, start time and
command, so the process that is refused can name the one in its way. Why ``flock`` on a file
of our own rather than the ``filelock`` package: ``filelock`` truncates the lock file when it
opens it, which would erase the holder's pid before the waiting process could read it, and
the standard library's ``fcntl`` needs no dependency. What ``flock`` gives us:

* the kernel releases the lock when the holder's process ends, however it ends (``kill -9``,
  a crash, the OOM killer): a lock file left behind by a dead process blocks nobody, and the
  next holder simply overwrites its contents;
* a lock belongs to one open file, so two opens conflict even inside one process. A run lock
  is nevertheless re-entrant within a process (:func:`acquire_run_lock` counts its holders),
  because one process owns one run: ``pretrain`` locks ``--out`` early and
  :meth:`RunDirectory.create` locks it again.

On a network file system ``flock`` works when the client maps it to NFS locks (Linux does for
NFSv4); the host name in the lock file tells users on other machines who holds it.
Windows has no ``fcntl``: there locks are not taken and a warning says so once.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import socket
import sys
import threading
from pathlib import Path
from typing import Any

try:  # POSIX (Linux, macOS)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "FileLock",
    "LockHeldError",
    "RunLock",
    "acquire_run_lock",
    "describe_holder",
    "run_lock_path",
]

logger = logging.getLogger(__name__)


class LockHeldError(OSError):
    """Another process holds the lock (its pid and host are in the message and attributes)."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.holder = holder or {}


def _holder_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300],
    }


def describe_holder(holder: dict[str, Any]) -> str:
    """``process 1234 on host-a (since 2026-...: minibert pretrain ...)``, or a fallback."""
    if not holder.get("pid"):
        return "another process"
    text = f"process {holder['pid']}"
    if holder.get("host") and holder["host"] != socket.gethostname():
        text += f" on {holder['host']}"
    details = [str(holder[k]) for k in ("started", "command") if holder.get(k)]
    if details:
        text += f" ({', '.join(details)})"
    return text


_warned_no_fcntl = False


class FileLock:
    """An exclusive ``flock`` on ``path`` whose contents name the holder.

    ``acquire(wait=False)`` raises :class:`LockHeldError` at once if another open file holds
    it; ``acquire(wait=True)`` blocks until it is free. Each :class:`FileLock` is its own open
    file, so two of them on one path exclude each other even in one process (threads).
    """

    def __init__(self, path: str | os.PathLike[str], what: str = "") -> None:
        self.path = Path(path)
        self.what = what or str(self.path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def read_holder(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return {}

    def acquire(self, *, wait: bool = False) -> FileLock:
        global _warned_no_fcntl
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already locked by this FileLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_CREAT without O_TRUNC: the current holder's record must survive our open.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:  # pragma: no cover - Windows
            if not _warned_no_fcntl:
                logger.warning("file locks need fcntl (POSIX); running without them")
                _warned_no_fcntl = True
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = self.read_holder()
                if not wait:
                    os.close(fd)
                    raise LockHeldError(
                        f"{self.what} is in use by {describe_holder(holder)}", holder
                    ) from None
                logger.info("waiting for %s, held by %s", self.what, describe_holder(holder))
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(_holder_record()) + "\n").encode("utf-8"))
        self._fd = fd
        return self

    def release(self) -> None:
        """Unlock. The file stays (deleting it would race with a process about to lock it)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale pid for the next reader to misreport
        os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> FileLock:
        # ``with lock.acquire(wait=True):`` enters a lock already held; plain ``with lock:``
        # acquires without waiting.
        return self if self.held else self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# --------------------------------------------------------------------------------------------
# Run directories
# --------------------------------------------------------------------------------------------


def run_lock_path(run_dir: str | os.PathLike[str]) -> Path:
    """``runs/.<name>.lock``: beside the run directory, not inside it.

    Beside, so that replacing the whole directory (``--overwrite`` renames it aside and
    starts a fresh one) never replaces the lock file that other processes are waiting on.
    """
    run_dir = Path(os.path.abspath(run_dir))
    return run_dir.parent / f".{run_dir.name}.lock"


_run_locks: dict[Path, tuple[FileLock, int]] = {}
_run_locks_guard = threading.Lock()


class RunLock:
    """One holder's share of a process's lock on a run directory; :meth:`release` it once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._released = False

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with _run_locks_guard:
            lock, count = _run_locks[self.path]
            if count > 1:
                _run_locks[self.path] = (lock, count - 1)
                return
            del _run_locks[self.path]
        lock.release()

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def acquire_run_lock(run_dir: str | os.PathLike[str]) -> RunLock:
    """Lock run directory ``run_dir`` for this process, or raise :class:`LockHeldError` at once.

    Re-entrant within a process: each call returns a :class:`RunLock` to release once; the
    file is unlocked when the last one is released (or the process ends).
    """
    path = run_lock_path(run_dir)
    with _run_locks_guard:
        if path in _run_locks:
            lock, count = _run_locks[path]
            _run_locks[path] = (lock, count + 1)
            return RunLock(path)
        lock = FileLock(path, what=f"run directory {Path(run_dir)}")
        try:
            lock.acquire(wait=False)
        except LockHeldError as err:
            raise LockHeldError(
                f"{err}. Two runs cannot write one directory: wait for that one to finish, "
                "stop it, or choose another --out.",
                err.holder,
            ) from None
        _run_locks[path] = (lock, 1)
        return RunLock(path)
