"""The lesson object every notebook starts with: mode, seeds, threads, figures, exercise checks.

    from minibert import lessons
    lesson = lessons.start("02-attention")

sets torch to at most 2 CPU threads (what the lessons are timed on; ``MINIBERT_THREADS`` or
``OMP_NUM_THREADS`` set by the user win), seeds Python, NumPy and torch, sends minibert's log
warnings to the notebook, makes plotly draw offline, and prints the mode and its time budget.

Environment variables (read here and nowhere else):

* ``MINIBERT_FAST=1``: fast mode, the whole notebook in at most 60 s (CI runs every notebook
  so); ``lesson.pick(full=..., fast=...)`` chooses sizes.
* ``MINIBERT_STRICT_EXERCISES=1``: a check that does not pass raises
  :class:`~minibert.lessons.checking.ExerciseNotPassedError` (the solutions-notebook test).
* ``MINIBERT_RUNS``: where runs are found and made (default: the repository's ``runs/``).
* ``MINIBERT_THREADS``: torch CPU threads for the lesson.
"""

from __future__ import annotations

import importlib
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from minibert.lessons.checking import (
    Exercise,
    ExerciseNotPassedError,
    Outcome,
    function_source,
    get_exercise,
    run_check,
)
from minibert.lessons.runs import RUNS_ENV, find_repo_root, pretrained_run, runs_root

__all__ = [
    "FAST_ENV",
    "FAST_BUDGET_S",
    "FULL_BUDGET_S",
    "RUNS_ENV",
    "STRICT_ENV",
    "THREADS_ENV",
    "Lesson",
    "find_repo_root",
    "is_fast",
    "runs_root",
    "setup_plotly",
    "start",
]

logger = logging.getLogger(__name__)

FAST_ENV = "MINIBERT_FAST"
STRICT_ENV = "MINIBERT_STRICT_EXERCISES"
THREADS_ENV = "MINIBERT_THREADS"
# The promise of every lesson (issue 11): the whole notebook on a 2-core CPU, offline.
FULL_BUDGET_S = 300.0
FAST_BUDGET_S = 60.0
DEFAULT_THREADS = 2

T = TypeVar("T")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def is_fast() -> bool:
    """True when ``MINIBERT_FAST`` is set to 1/true/yes/on."""
    return _flag(FAST_ENV)


def _configure_threads(threads: int | None) -> int:
    import torch

    if threads is None:
        env = os.environ.get(THREADS_ENV)
        if env:
            threads = int(env)
        elif os.environ.get("OMP_NUM_THREADS"):
            return torch.get_num_threads()  # the user chose; leave it
        else:
            threads = min(DEFAULT_THREADS, torch.get_num_threads())
    torch.set_num_threads(max(1, threads))
    return torch.get_num_threads()


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # numpy is a dependency; this only guards odd installs
        pass
    import torch

    torch.manual_seed(seed)


class _NotebookLogHandler(logging.StreamHandler):
    """Writes to the *current* sys.stdout (Jupyter replaces it per cell)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


def _configure_logging(verbose: bool) -> None:
    log = logging.getLogger("minibert")
    if not any(isinstance(h, _NotebookLogHandler) for h in log.handlers):
        handler = _NotebookLogHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO if verbose else logging.WARNING)


def setup_plotly() -> str:
    """Make plotly figures draw with no network; return the renderer chosen.

    ``minibert.viz.setup_notebook`` when the viz package is installed, else plotly's
    ``plotly_mimetype``: the figure travels as JSON and JupyterLab 4 / Notebook 7 (plotly's
    ``jupyterlab-plotly`` extension) and VS Code draw it with the plotly.js they ship. HTML
    exports get plotly.js embedded by :func:`minibert.lessons.build.export_html`. On Colab
    (online by definition) plotly's ``colab`` renderer is the one that draws.
    """
    import plotly.io as pio

    if "google.colab" in sys.modules:
        pio.renderers.default = "colab"
        return "colab"
    try:
        from minibert.viz import setup_notebook
    except ImportError:
        pio.renderers.default = "plotly_mimetype"
        return "plotly_mimetype"
    return setup_notebook()


def _lesson_module(number: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"minibert.lessons.lesson{number}")
    except ModuleNotFoundError as error:
        if error.name == f"minibert.lessons.lesson{number}":
            return None
        raise


@dataclass
class Lesson:
    """One notebook's session: its mode, budget and exercises. Made by :func:`start`."""

    name: str
    fast: bool
    strict: bool
    seed: int
    threads: int
    renderer: str
    module: ModuleType | None
    started: float = field(default_factory=time.perf_counter)
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def number(self) -> str:
        return self.name.split("-", 1)[0]

    @property
    def mode(self) -> str:
        return "fast" if self.fast else "full"

    @property
    def budget_s(self) -> float:
        """The notebook's promised wall time: 60 s fast, 300 s full (2 CPU cores)."""
        return FAST_BUDGET_S if self.fast else FULL_BUDGET_S

    def elapsed(self) -> float:
        """Seconds since :func:`start`."""
        return time.perf_counter() - self.started

    def pick(self, full: T, fast: T) -> T:
        """``fast`` in fast mode, else ``full``: the one place a notebook sizes its work."""
        return fast if self.fast else full

    @property
    def runs_dir(self) -> Path:
        return runs_root()

    # --- exercises ---------------------------------------------------------------------------

    def exercise(self, name: str) -> Exercise:
        if self.module is None:
            raise KeyError(
                f"lesson {self.name} has no exercise module minibert/lessons/lesson{self.number}.py"
            )
        return get_exercise(name, self.module.__name__)

    def check(self, name: str, fn: Callable[..., Any] | None) -> Callable[..., Any]:
        """Check the student's ``fn`` for exercise ``name``, print the report, and return the
        function the rest of the notebook uses: ``fn`` if it passed, else the reference.

        Never raises for a wrong or blank answer (a notebook goes on), unless
        ``MINIBERT_STRICT_EXERCISES=1``.
        """
        ex = self.exercise(name)
        outcome = run_check(ex, fn, seed=self.seed)
        self.outcomes[name] = outcome
        print(outcome.text)
        if self.strict and not outcome.passed:
            raise ExerciseNotPassedError(
                f"{STRICT_ENV}=1 and exercise {name!r} did not pass:\n{outcome.text}"
            )
        return fn if outcome.passed else ex.reference

    def solution(self, name: str, *, show: bool = True) -> str:
        """Print (and return) one correct answer to exercise ``name``."""
        source = function_source(self.exercise(name).solution)
        if show:
            print(source)
        return source

    def reference(self, name: str) -> Callable[..., Any]:
        """The function the notebook falls back on for exercise ``name``."""
        return self.exercise(name).reference

    def mistake(self, name: str, mistake: str) -> Callable[..., Any]:
        """The registered common mistake ``mistake`` of exercise ``name``, as a function (to try
        it and read the report it gets; the mistake tests inject it into the notebook)."""
        ex = self.exercise(name)
        if mistake not in ex.mistakes:
            raise KeyError(
                f"exercise {name!r} has no mistake {mistake!r}; it has {list(ex.mistakes)}"
            )
        return ex.mistakes[mistake].fn

    # --- models ------------------------------------------------------------------------------

    def pretrained_run(self, **kwargs: Any) -> Path:
        """See :func:`minibert.lessons.runs.pretrained_run`."""
        return pretrained_run(self, **kwargs)

    def done(self) -> None:
        """Print the time the notebook took against its budget (the last cell of a lesson)."""
        elapsed = self.elapsed()
        verdict = "within" if elapsed <= self.budget_s else "OVER"
        print(
            f"lesson {self.name} ran in {elapsed:.0f} s ({verdict} the {self.budget_s:.0f} s "
            f"{self.mode}-mode budget)."
        )


def start(name: str, *, seed: int = 0, threads: int | None = None, verbose: bool = False) -> Lesson:
    """Start lesson ``name`` ("NN-topic"): threads, seeds, logging, offline figures; print mode.

    Args:
        name: the notebook's name without extension, e.g. ``"02-attention"``.
        seed: seeds Python's ``random``, NumPy and torch.
        threads: torch CPU threads (default: ``$MINIBERT_THREADS``, else the user's
            ``OMP_NUM_THREADS``, else at most 2 -- what the lessons are timed on).
        verbose: show minibert's INFO logs (default: warnings only).
    """
    number = name.split("-", 1)[0]
    if not (len(number) == 2 and number.isdigit()):
        raise ValueError(f"lesson name {name!r} should look like 'NN-topic', e.g. '02-attention'")
    # Lessons never need the hub; offline settings make a stray download fail at once instead
    # of hanging a class on a slow network. A user who set them keeps their values.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    _configure_logging(verbose)
    used_threads = _configure_threads(threads)
    _seed_everything(seed)
    renderer = setup_plotly()
    lesson = Lesson(
        name=name,
        fast=is_fast(),
        strict=_flag(STRICT_ENV),
        seed=seed,
        threads=used_threads,
        renderer=renderer,
        module=_lesson_module(number),
    )
    mode = (
        f"fast mode ({FAST_ENV}=1): small sizes, at most {FAST_BUDGET_S:.0f} s"
        if lesson.fast
        else f"full mode: at most {FULL_BUDGET_S / 60:.0f} minutes on 2 CPU cores"
    )
    print(
        f"Lesson {name} | {mode} | torch threads: {used_threads} | seed {seed}"
        + (" | exercises strict" if lesson.strict else "")
    )
    return lesson
