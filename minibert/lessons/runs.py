"""Find or make the pretrained run that later lessons look inside.

One helper for every lesson, so a class pays for pretraining once:

1. ``runs/lesson-06/``: the run the student trained in lesson 06 (pretraining), if finished;
2. ``runs/demo*/pretrain/``: the newest finished run of ``minibert demo``;
3. ``runs/lesson-pretrained/``: made here, if missing or shorter than asked for, by
   :func:`minibert.train.pretraining.pretrain` with the ``tiny`` preset and a time budget (about
   90 s in full mode, 10 s in fast mode), with a progress bar.

A run is *finished* when its ``final/`` holds ``config.json`` and ``model.safetensors`` and the
run has a ``tokenizer/``: what ``transformers.AutoModelForMaskedLM.from_pretrained`` and
minibert's loaders need. The run is trained in a temporary folder and renamed into place when
complete, so a kernel interrupted mid-training never leaves a half run that a later lesson
would pick up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from minibert.lessons.core import Lesson

__all__ = [
    "FAST_PRETRAIN_BUDGET_S",
    "FULL_PRETRAIN_BUDGET_S",
    "LESSON_RUN_NAME",
    "RUNS_ENV",
    "find_repo_root",
    "runs_root",
    "find_pretrained_run",
    "is_finished_run",
    "pretrained_run",
]

logger = logging.getLogger(__name__)

RUNS_ENV = "MINIBERT_RUNS"  # where lessons find and make runs (default: the checkout's runs/)
LESSON_RUN_NAME = "lesson-pretrained"
# Seconds of pretraining when no better run exists. 90 s of the tiny preset on 2 cores is
# enough for fill-mask to guess frequent words ("the", "of") and for the attention heads to
# differ; 10 s is CI's fast mode: a run that exists, not one that has learned much.
FULL_PRETRAIN_BUDGET_S = 90.0
FAST_PRETRAIN_BUDGET_S = 10.0


def find_repo_root(start: str | Path | None = None) -> Path | None:
    """The minibert checkout that holds ``start`` (default: the working directory), if any."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        project = folder / "pyproject.toml"
        if project.is_file() and (folder / "minibert").is_dir():
            try:
                if 'name = "minibert"' in project.read_text(encoding="utf-8"):
                    return folder
            except OSError:
                continue
    return None


def runs_root(start: str | Path | None = None) -> Path:
    """Where lessons find and make runs: ``$MINIBERT_RUNS``, else the checkout's ``runs/``,
    else ``./runs`` (an installed package, e.g. on Colab)."""
    env = os.environ.get(RUNS_ENV)
    if env:
        return Path(env).expanduser()
    root = find_repo_root(start)
    return (root if root is not None else Path(start or Path.cwd())) / "runs"


def is_finished_run(path: str | Path) -> bool:
    """True if ``path`` is a run directory with loadable final weights and a tokenizer."""
    path = Path(path)
    final = path / "final"
    tokenizer = path / "tokenizer"
    return (
        (final / "config.json").is_file()
        and (final / "model.safetensors").is_file()
        and ((tokenizer / "tokenizer.json").is_file() or (tokenizer / "vocab.txt").is_file())
    )


def _time_budget(run: Path) -> float | None:
    try:
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        return info["config"]["train"]["time_budget"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_lock_file(run: Path) -> None:
    """Training leaves its writer's lock file beside the run (``.<name>.lock``, see
    :mod:`minibert.locking`); the scratch folder's name is used once, so its lock file goes."""
    try:
        from minibert.locking import run_lock_path
    except ImportError:  # a minibert without run locks
        return
    with contextlib.suppress(OSError):
        run_lock_path(run).unlink()


def find_pretrained_run(root: str | Path | None = None, *, min_budget: float = 0.0) -> Path | None:
    """The best existing run under ``root`` (see the module docstring), or None.

    ``min_budget`` applies to ``lesson-pretrained`` only: a 10-second fast-mode run is not
    reused when a full-mode lesson asks for 90 seconds.
    """
    root = Path(root) if root is not None else runs_root()
    lesson06 = root / "lesson-06"
    if is_finished_run(lesson06):
        return lesson06
    demos = [d / "pretrain" for d in root.glob("demo*") if is_finished_run(d / "pretrain")]
    if demos:
        return max(demos, key=lambda d: (d / "final").stat().st_mtime)
    ours = root / LESSON_RUN_NAME
    if is_finished_run(ours) and (_time_budget(ours) or 0.0) >= min_budget - 1e-6:
        return ours
    return None


def pretrained_run(
    lesson: Lesson | None = None,
    *,
    budget: float | None = None,
    root: str | Path | None = None,
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> Path:
    """A finished pretraining run for the lesson to look inside; trains one if needed.

    Args:
        lesson: the :class:`~minibert.lessons.core.Lesson` (its mode picks the budget).
        budget: seconds of pretraining if a run must be made (default: 90 full, 10 fast).
        root: the runs folder (default: ``$MINIBERT_RUNS`` or the checkout's ``runs/``).
        progress: show a progress bar while training.
        cache_dir: the data cache (default ``$MINIBERT_CACHE`` or ``~/.cache/minibert``).

    Returns:
        The run directory (load it with ``minibert.inspect.load_model(path)`` or
        ``transformers.AutoModelForMaskedLM.from_pretrained(path / "final")``).
    """
    fast = lesson.fast if lesson is not None else False
    if budget is None:
        budget = FAST_PRETRAIN_BUDGET_S if fast else FULL_PRETRAIN_BUDGET_S
    root = Path(root) if root is not None else runs_root()
    found = find_pretrained_run(root, min_budget=budget)
    if found is not None:
        print(f"pretrained model: {found} (found; no training needed)")
        return found

    import torch

    from minibert.train.pretraining import pretrain

    target = root / LESSON_RUN_NAME
    print(
        f"No pretrained run in {root}: pretraining the tiny BERT for {budget:.0f} s "
        f"into {target} (once; later lessons reuse it)."
    )
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / f".{LESSON_RUN_NAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    try:
        pretrain(
            out=scratch,
            overrides={
                "preset": "tiny",
                "time_budget": float(budget),
                "seed": 0,
                "progress": progress,
                # The lesson's thread count (start() chose it), not pretrain's "all cores".
                "num_threads": torch.get_num_threads(),
                # Checkpoints are what lesson 09 scrubs through; a few over a short run.
                "checkpoint_every": 100,
                "keep_checkpoints": 0,
                "eval_every": 100,
            },
            cache_dir=cache_dir,
        )
        if not is_finished_run(scratch):
            raise RuntimeError(f"pretraining finished but {scratch} has no final/ weights")
        if target.exists():
            # Another notebook finished first (or an older, shorter run): replace it.
            stale = target.with_name(f".{LESSON_RUN_NAME}.old-{uuid.uuid4().hex[:6]}")
            target.rename(stale)
            shutil.rmtree(stale, ignore_errors=True)
        scratch.rename(target)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)
        _remove_lock_file(scratch)
    print(f"pretrained model: {target} ({time.perf_counter() - started:.0f} s)")
    return target
