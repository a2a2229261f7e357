"""Every lesson notebook: in sync with its source, runs in fast mode (blank and solved), its
checks name an injected mistake, and its HTML export draws offline in headless Chromium.

Notebooks are discovered from ``notebooks/NN-*.py``, so a new lesson is tested by being added.
Execution uses :func:`minibert.lessons.execute.run_notebook` (nbclient, with a fix for its
missed-wake-up wait) and the ``python3`` kernel of this interpreter, ``MINIBERT_FAST=1``,
``cwd = notebooks/``, a session-wide data cache and a temporary ``MINIBERT_RUNS`` holding one
pretrained run shared by every notebook (made once, before the first notebook runs, so each
notebook's time is its own).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("jupytext")
pytest.importorskip("ipykernel")

from minibert.lessons import build  # noqa: E402
from minibert.lessons import execute as execute_module  # noqa: E402
from minibert.lessons.core import FAST_BUDGET_S  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
SOURCES = build.lesson_sources(NOTEBOOKS)
IDS = [p.stem for p in SOURCES]
# A fast-mode notebook should finish within its 60 s budget on a quiet 2-core machine; that
# goal is measured by bench/bench_lessons.py. This is a guard against a lesson that grew far
# past it (or hangs), with room for a shared CI runner (MINIBERT_NOTEBOOK_LIMIT_S).
TIME_LIMIT_S = float(os.environ.get("MINIBERT_NOTEBOOK_LIMIT_S", 3 * FAST_BUDGET_S))

pytestmark = pytest.mark.skipif(not SOURCES, reason="no notebooks/NN-*.py yet")


# --------------------------------------------------------------------------------------------
# Session setup: environment, data cache, the shared pretrained run
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def lesson_env(tmp_path_factory, cache_dir):
    """The environment every notebook kernel runs in, with the data cache and a pretrained
    run made once for the whole session."""
    runs = tmp_path_factory.mktemp("lesson-runs")
    env = {
        "MINIBERT_FAST": "1",
        "MINIBERT_CACHE": str(cache_dir),
        "MINIBERT_RUNS": str(runs),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    # Warm the caches in this process so no notebook pays for them: the cleaned corpus and
    # tokenizer (every lesson), and the pretrained run (lessons that look at a trained model).
    from minibert.data.pipeline import DataConfig, prepare_data

    prepare_data(DataConfig(), cache_dir, progress=False)
    if any("pretrained_run(" in source.read_text(encoding="utf-8") for source in SOURCES):
        from minibert.lessons.runs import FAST_PRETRAIN_BUDGET_S, pretrained_run

        pretrained_run(
            budget=FAST_PRETRAIN_BUDGET_S, root=runs, progress=False, cache_dir=cache_dir
        )
    return env


@pytest.fixture
def kernel_env(lesson_env, monkeypatch):
    """Set the lesson environment for kernels started in this test (they inherit os.environ)."""
    for key, value in lesson_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MINIBERT_STRICT_EXERCISES", raising=False)
    return monkeypatch


def execute(nb, *, cwd: Path = NOTEBOOKS, allow_errors: bool = False):
    """Run ``nb`` top to bottom in a fresh python3 kernel; return the timed run."""
    return execute_module.run_notebook(nb, cwd=cwd, timeout=TIME_LIMIT_S, allow_errors=allow_errors)


def printed(nb) -> str:
    """Everything the notebook printed (stream outputs and text/plain results)."""
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif "data" in output:
                parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


_EXECUTED: dict[str, object] = {}  # notebook stem -> executed student notebook (for HTML)


# --------------------------------------------------------------------------------------------
# (1) sync
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_matches_its_source(source):
    problems = build.out_of_date(source)
    assert not problems, (
        "\n".join(problems) + "\nRun `python -m minibert.lessons.build` and commit the notebooks."
    )


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_is_well_formed(source):
    """Starts with lessons.start, names its objectives, prerequisites, recap; exercises checked."""
    nb = build.read_source(source)
    text = "\n".join(c.source for c in nb.cells)
    assert build.lesson_module_name(nb), "the notebook never calls lessons.start('NN-topic')"
    assert f'lessons.start("{source.stem}")' in text, "lessons.start should get the file's name"
    for heading in ("objectives", "prerequisites", "recap", "things to try"):
        assert heading in text.lower(), f"the lesson has no '{heading}' section"
    cells = build.exercise_cells(nb)  # raises if an exercise cell has no check
    if int(source.stem[:2]) >= 1:
        assert len({c.exercise for c in cells}) >= 2, "lessons from 01 have at least 2 exercises"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_lesson_has_its_written_side(source):
    """lessons/NN-topic/README.md exists with the sections lessons/README.md promises, and the
    table in lessons/README.md links it."""
    written = REPO / "lessons" / source.stem / "README.md"
    assert written.is_file(), f"{written.relative_to(REPO)} is missing"
    text = written.read_text(encoding="utf-8").lower()
    for section in ("objectives", "prerequisites", "timing", "demo", "discussion", "mistake"):
        assert section in text, f"{written.relative_to(REPO)} has no '{section}' section"
    assert "colab" in text or "../readme.md#running-elsewhere" in text
    index = (REPO / "lessons" / "README.md").read_text(encoding="utf-8")
    assert f"(../notebooks/{source.stem}.ipynb)" in index, (
        f"lessons/README.md's table has no row for {source.stem}"
    )


# --------------------------------------------------------------------------------------------
# (2) student notebooks (blank exercises), (3) solutions, strict
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_student_notebook_runs_in_fast_mode(source, kernel_env):
    ran = execute(build.student_notebook(source))
    nb = _EXECUTED[source.stem] = ran.notebook
    out = printed(nb)
    for cell in build.exercise_cells(nb):
        assert f"[ ] {cell.exercise}: not filled in yet" in out, (
            f"the blank exercise {cell.exercise!r} did not report 'not filled in'"
        )
    assert ran.seconds <= TIME_LIMIT_S, f"{source.stem} in fast mode: {ran.timing_report()}"
    print(f"{source.stem}: {ran.timing_report()}")


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_solutions_notebook_passes_every_check(source, kernel_env):
    kernel_env.setenv("MINIBERT_STRICT_EXERCISES", "1")
    ran = execute(build.solutions_notebook(source))
    out = printed(ran.notebook)
    for cell in build.exercise_cells(build.student_notebook(source)):
        assert f"[ok] {cell.exercise}: passed" in out
    assert ran.seconds <= TIME_LIMIT_S, f"{source.stem} solutions: {ran.timing_report()}"


# --------------------------------------------------------------------------------------------
# (2b) a named mistake injected into the notebook is named by the printed report
# --------------------------------------------------------------------------------------------


def _first_mistake(source):
    import importlib

    nb = build.student_notebook(source)
    cells = build.exercise_cells(nb)
    if not cells:
        return None
    module = importlib.import_module(build.lesson_module_name(nb))
    from minibert.lessons.checking import get_exercise

    for cell in cells:
        ex = get_exercise(cell.exercise, module.__name__)
        if ex.mistakes:
            return cell, next(iter(ex.mistakes))
    return None


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_injected_mistake_is_named(source, kernel_env):
    found = _first_mistake(source)
    if found is None:
        pytest.skip(f"{source.stem} has no exercise with a named mistake")
    cell, mistake = found
    nb = build.mistake_notebook(source, cell.exercise, mistake)
    # Run up to the cell that checks this exercise: the report is all this test reads.
    check_index = next(
        i
        for i, c in enumerate(nb.cells)
        if c.cell_type == "code" and f'lesson.check("{cell.exercise}"' in c.source
    )
    nb.cells = nb.cells[: check_index + 1]
    out = printed(execute(nb).notebook)
    assert f"[x] {cell.exercise}: not yet right" in out, out[-2000:]
    assert f"This is a common mistake: {mistake}." in out, out[-2000:]


# --------------------------------------------------------------------------------------------
# (4) HTML export, offline, in headless Chromium
# --------------------------------------------------------------------------------------------


def _browser_support():
    """tests/browser_support.py (offline Chromium, request blocking) when it is here."""
    sys.path.insert(0, str(Path(__file__).parent))
    try:
        import browser_support
    except ImportError:
        return None
    finally:
        sys.path.pop(0)
    return browser_support


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_html_export_draws_offline(source, kernel_env, tmp_path):
    support = _browser_support()
    if support is None:
        pytest.skip("needs tests/browser_support.py (offline Chromium helper)")
    nb = _EXECUTED.get(source.stem)
    if nb is None:
        nb = execute(build.student_notebook(source)).notebook
    page_path = tmp_path / f"{source.stem}.html"
    html = build.export_html(nb, page_path)
    figures = html.count('class="plotly-graph-div"')
    for fragment in ("cdn.", "unpkg.com", "require.min.js", "MathJax.js"):
        assert fragment not in html.split("<body", 1)[0], f"the page head loads {fragment}"
    with support.launch_chromium() as browser, support.open_offline_page(browser) as page:
        page.page.goto(page_path.as_uri())
        page.page.wait_for_load_state("load")
        drawn = page.page.evaluate(
            "() => Array.from(document.querySelectorAll('.plotly-graph-div'))"
            ".filter(d => d.querySelector('.main-svg')).length"
        )
        page.screenshot(f"notebook-{source.stem}")
        page.assert_clean()
    assert drawn == figures, f"{drawn} of {figures} plotly figures drawn"
