"""What every dashboard page shares: the runs folder, run and model pickers, the error guard.

Pages hold layout and widgets only; everything here is glue between widgets and
:mod:`minibert.inspect` (numbers) and :mod:`minibert.viz` (figures):

* :func:`runs_root` is the folder given on the command line (``MINIBERT_RUNS``); every path a
  page opens comes from :func:`open_run`, which resolves it inside that folder;
* :func:`guard` turns any error into a message on the page, so one bad input never shows a
  traceback or stops the app;
* :func:`load_model_cached` keeps models in ``st.cache_resource`` keyed on (folder, modification
  time): a checkpoint rewritten in place is loaded again, an unchanged one never is.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import streamlit as st

from minibert.inspect.runs import (
    RunSummary,
    UnsafePathError,
    list_run_checkpoints,
    list_runs,
    read_run,
    resolve_inside,
)

logger = logging.getLogger(__name__)

RUNS_ENV = "MINIBERT_RUNS"
MAX_TEXT_CHARS = 2000  # longer input is cut (with a note): 512 tokens need ~2,500 characters
MINILM_LABEL = "MiniLM (all-MiniLM-L6-v2, offline)"

HOW_TO_MAKE_A_RUN = """\
Make a run, and it appears here (this page looks again every 2 seconds):

```
minibert demo --dashboard                 # the whole story, with this dashboard on it
minibert pretrain --preset tiny --time-budget 120 --out {root}/tiny
```
"""


def runs_root() -> Path:
    """The runs folder the dashboard was started on (only the command line sets it)."""
    return Path(os.environ.get(RUNS_ENV, "runs")).expanduser().resolve()


# --------------------------------------------------------------------------------------------
# Errors, help, presentation mode
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def guard(what: str) -> Iterator[None]:
    """Show any error raised in the block as a message; the rest of the page goes on.

    Our own errors (:class:`ValueError` and subclasses such as ``InspectError``, missing files)
    already say what to do, so they are shown as they are. Anything else is a bug in minibert:
    it is logged with its traceback and named on the page in one line.
    """
    try:
        yield
    except (ValueError, FileNotFoundError, NotADirectoryError, PermissionError) as err:
        st.error(f"{what}: {err}")
    except ImportError as err:
        st.error(f"{what}: {err}. Install the missing package (pip install 'minibert[all]').")
    except Exception as err:  # noqa: BLE001 - the page must survive; the log keeps the details
        logger.exception("dashboard: %s failed", what)
        st.error(
            f"{what} failed: {type(err).__name__}: {err}. The rest of the dashboard still "
            "works; the full traceback is in the terminal that runs it."
        )


def help_line(text: str) -> None:
    """The one line at the top of each page that says what to look at."""
    st.caption(f"**What to look at:** {text}")


def presentation_css() -> str:
    """Larger text for a projector: Streamlit sizes its text in rem, so the root size scales it."""
    return (
        "<style>html { font-size: 24px; } "
        "[data-testid='stSidebar'] { min-width: 22rem; } "
        ".stDataFrame, .stTable { font-size: 1rem; }</style>"
    )


def apply_theme(presentation: bool) -> None:
    """Switch figures and page text between the normal and the projector look."""
    from minibert.viz.theme import use_theme

    use_theme("presentation" if presentation else "default")
    if presentation:
        st.markdown(presentation_css(), unsafe_allow_html=True)


def show_figure(fig: Any, key: str, **kwargs: Any) -> Any:
    """``st.plotly_chart`` with the theme's sizes; ``uirevision`` keeps zoom across reruns."""
    fig.update_layout(uirevision=key)
    return st.plotly_chart(
        fig, key=key, width="stretch", config={"displaylogo": False}, theme=None, **kwargs
    )


def clip_text(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """``text`` cut to ``limit`` characters, with a note on the page when it was cut."""
    if len(text) > limit:
        st.info(
            f"The text has {len(text):,} characters; only the first {limit:,} are used (a BERT "
            "reads at most 512 word pieces, and the model's own limit may be lower)."
        )
        return text[:limit]
    return text


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------


def all_runs() -> list[RunSummary]:
    return list_runs(runs_root())


def no_runs_message() -> None:
    root = runs_root()
    if not root.is_dir():
        st.warning(f"The runs folder `{root}` does not exist yet.")
    else:
        st.info(f"There are no runs in `{root}` yet.")
    st.markdown(HOW_TO_MAKE_A_RUN.format(root=_shown_root(root)))


def _shown_root(root: Path) -> str:
    try:
        return str(root.relative_to(Path.cwd()))
    except ValueError:
        return str(root)


def open_run(name: str) -> RunSummary | None:
    """The run called ``name`` (relative to the runs folder), or None with a message.

    The name is resolved inside the runs folder, symlinks included; a name that leaves it, or a
    run deleted since it was listed, gets a message instead of an error.
    """
    try:
        path = resolve_inside(runs_root(), name)
    except UnsafePathError as err:
        st.error(f"Refused: {err}.")
        return None
    try:
        return read_run(path, runs_root())
    except FileNotFoundError:
        st.warning(f"The run `{name}` is gone (deleted or moved); pick another one.")
        return None


def pick_run(
    label: str, runs: list[RunSummary], *, key: str, kinds: tuple[str, ...] | None = None
) -> RunSummary | None:
    """A select box over ``runs`` (optionally only some kinds) remembering the choice per page.

    The run chosen on the Runs page (``st.session_state["run"]``) is the default elsewhere.
    """
    names = [r.name for r in runs if kinds is None or r.kind in kinds]
    if not names:
        return None
    remembered = st.session_state.get("run")
    index = names.index(remembered) if remembered in names else 0
    name = st.selectbox(label, names, index=index, key=key)
    if name is None:
        return None
    return open_run(name)


def checkpoint_steps(run: RunSummary) -> list[int]:
    return [step for step, _ in list_run_checkpoints(run.path)]


def chosen_step(run: RunSummary) -> int | None:
    """The checkpoint step picked on the Runs page for ``run`` (None when none was picked)."""
    picked = st.session_state.get("checkpoint")
    if isinstance(picked, dict) and picked.get("run") == run.name:
        return picked.get("step")
    return None


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _folder_mtime(folder: Path) -> float:
    times = []
    for name in ("config.json", "model.safetensors"):
        with contextlib.suppress(OSError):
            times.append((folder / name).stat().st_mtime)
    return max(times, default=0.0)


@st.cache_resource(max_entries=24, show_spinner="Loading the model...")
def _load_model(spec: str, mtime: float) -> Any:
    """One loaded model per (folder or "minilm", modification time); never mutated."""
    from minibert.inspect import load_model

    return load_model("minilm" if spec == "minilm" else Path(spec))


def load_model_cached(folder: Path | str) -> Any:
    """A :class:`minibert.inspect.LoadedModel` for ``folder`` (or ``"minilm"``), cached."""
    if folder == "minilm":
        return _load_model("minilm", 0.0)
    folder = Path(folder)
    return _load_model(str(folder), _folder_mtime(folder))


def model_folders(runs: list[RunSummary]) -> list[tuple[str, Path]]:
    """Saved models inside the runs folder: each run's final/ and every other folder holding
    ``config.json`` at most two levels down (e.g. ``runs/exported-bert``)."""
    root = runs_root()
    found: list[tuple[str, Path]] = []
    for run in runs:
        if run.has_final:
            found.append((f"{run.name}/final", run.path / "final"))
    if root.is_dir():
        for config in sorted(root.glob("*/config.json")) + sorted(root.glob("*/*/config.json")):
            folder = config.parent
            if any(folder == f for _, f in found) or folder.parent.name == "checkpoints":
                continue
            try:
                resolve_inside(root, folder.relative_to(root))
            except (UnsafePathError, ValueError):
                continue
            found.append((folder.relative_to(root).as_posix(), folder))
    return found


def pick_model(runs: list[RunSummary], *, key: str) -> Any | None:
    """Widgets to choose a model: a run's checkpoint, a saved model folder, or MiniLM.

    Returns the loaded model (cached), or None with a message saying why there is none.
    """
    kinds = ["Run checkpoint", "Saved model", MINILM_LABEL]
    choice = st.radio("Model", kinds, horizontal=True, key=f"{key}-kind")
    if choice == MINILM_LABEL:
        return load_model_cached("minilm")
    if choice == "Saved model":
        folders = model_folders(runs)
        if not folders:
            st.info("No saved model folders (with config.json) in the runs folder.")
            return None
        names = [name for name, _ in folders]
        name = st.selectbox("Model folder", names, key=f"{key}-folder")
        folder = dict(folders)[name]
        return load_model_cached(resolve_inside(runs_root(), folder.relative_to(runs_root())))
    pretrain_runs = [r for r in runs if r.num_checkpoints or r.has_final]
    if not pretrain_runs:
        st.info("No run has a checkpoint yet; pick MiniLM, or wait for the first checkpoint.")
        return None
    run = pick_run("Run", pretrain_runs, key=f"{key}-run")
    if run is None:
        return None
    steps = checkpoint_steps(run)
    options: list[Any] = [*steps] + (["final"] if run.has_final else [])
    if not options:
        st.info(f"`{run.name}` has no complete checkpoint yet (one may be being written).")
        return None
    picked = chosen_step(run)
    default = picked if picked in options else options[-1]
    where = st.select_slider("Checkpoint (step)", options, value=default, key=f"{key}-step")
    folder = run.path / "final" if where == "final" else dict(list_run_checkpoints(run.path))[where]
    return load_model_cached(folder)
