"""The ``--out`` rules of a fine-tuning run: what may be written into, and what ``--overwrite``
may replace.

The caller holds the folder's lock (:func:`minibert.locking.acquire_run_lock`) while these run,
so nothing else writes the folder between the check and the replacement. The rules are
pretraining's (:meth:`minibert.train.rundir.RunDirectory.create`): a missing or empty folder is
used as is; a non-empty one needs ``overwrite``, and ``overwrite`` replaces only a minibert run
(:func:`~minibert.train.rundir.why_not_a_run`: a run, a cross-validation folder of runs, or
what a killed one left), never a user's own files.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from minibert.atomic import TRASH_PREFIX, fsync_directory, remove_tree
from minibert.train.rundir import why_not_a_run

__all__ = ["check_out", "prepare_parent_folder"]

logger = logging.getLogger(__name__)


def check_out(out: Path, overwrite: bool) -> None:
    """Raise ``FileExistsError`` unless ``out`` may be (re)written; change nothing.

    Called before any slow work, so a wrong ``--out`` fails at once.
    """
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a directory")
    if not (out.is_dir() and any(out.iterdir())):
        return
    if not overwrite:
        raise FileExistsError(
            f"--out {out} already exists and is not empty. Pass --overwrite to replace it or "
            "choose another --out."
        )
    reason = why_not_a_run(out)
    if reason is not None:
        raise FileExistsError(
            f"--overwrite refuses to empty {out}: {reason}. It replaces only a minibert run "
            "directory (one with run.json, or a cross-validation folder of them) or an empty "
            "one; choose another --out, or move those files away first."
        )


def prepare_parent_folder(out: Path, overwrite: bool) -> None:
    """Make ``out`` an empty folder for runs written inside it (a cross-validation's folds).

    An old run there is renamed aside and then deleted (:func:`minibert.atomic.remove_tree`),
    so a kill midway leaves the whole old run or none of it under ``out``'s name.
    """
    check_out(out, overwrite)
    if out.is_dir() and any(out.iterdir()):
        logger.warning("overwriting the run in %s", out)
        remove_tree(out)
    # An old run that a killed --overwrite renamed aside but did not finish deleting.
    for leftover in out.absolute().parent.glob(f"{TRASH_PREFIX}{out.name}-*"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    fsync_directory(out.absolute().parent)
