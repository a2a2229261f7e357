"""minibert.lessons: the checks every exercise gets for free, and the infrastructure.

The generic tests at the top hold *every registered exercise* of every
``minibert/lessons/lessonNN.py`` to the contract: its solution passes, a blank answer is "not
filled in" (never an error), and each named common mistake gets a report that names it. A
lesson registers an exercise and is tested here without writing a line.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import sys
from pathlib import Path

import pytest
import torch

import minibert.lessons
from minibert.lessons import build, checking, core, runs
from minibert.lessons.checking import Mistake, compare, exercise, is_blank, run_check

# --------------------------------------------------------------------------------------------
# Every registered exercise
# --------------------------------------------------------------------------------------------

LESSON_MODULES = sorted(
    f"minibert.lessons.{m.name}"
    for m in pkgutil.iter_modules(minibert.lessons.__path__)
    if re.fullmatch(r"lesson\d\d", m.name)
)
for _name in LESSON_MODULES:
    importlib.import_module(_name)
EXERCISES = [ex for name in LESSON_MODULES for ex in checking.exercises(name)]
EXERCISE_IDS = [f"{ex.module.rsplit('.', 1)[-1]}.{ex.name}" for ex in EXERCISES]
MISTAKES = [(ex, name) for ex in EXERCISES for name in ex.mistakes]
MISTAKE_IDS = [f"{ex.module.rsplit('.', 1)[-1]}.{ex.name}: {name}" for ex, name in MISTAKES]


def blank_raises(*args, **kwargs):
    """The template a student starts from."""
    # YOUR CODE HERE
    raise NotImplementedError


def blank_ellipsis(*args, **kwargs):
    """A template whose body is `...`."""
    ...


def blank_pass(*args, **kwargs):
    pass


@pytest.mark.parametrize("ex", EXERCISES, ids=EXERCISE_IDS)
def test_solution_passes(ex):
    outcome = run_check(ex, ex.solution)
    assert outcome.passed, outcome.text
    assert f"[ok] {ex.name}: passed" in outcome.text
    if ex.reference is not ex.solution:
        assert run_check(ex, ex.reference).passed


@pytest.mark.parametrize("ex", EXERCISES, ids=EXERCISE_IDS)
@pytest.mark.parametrize("blank", [blank_raises, blank_ellipsis, blank_pass, None])
def test_blank_is_not_filled_in(ex, blank):
    outcome = run_check(ex, blank)
    assert outcome.status == "blank", outcome.text
    assert "not filled in" in outcome.text and "use the reference" in outcome.text


@pytest.mark.parametrize(("ex", "mistake"), MISTAKES, ids=MISTAKE_IDS)
def test_each_named_mistake_is_recognised(ex, mistake):
    outcome = run_check(ex, ex.mistakes[mistake].fn)
    assert outcome.status == "failed", f"the check passed the mistake {mistake!r}"
    assert outcome.mistake == mistake, (
        f"the report names {outcome.mistake!r}, not {mistake!r}:\n{outcome.text}"
    )
    assert f"This is a common mistake: {mistake}." in outcome.text
    assert "use the reference" in outcome.text


@pytest.mark.parametrize("ex", EXERCISES, ids=EXERCISE_IDS)
def test_checks_are_deterministic_and_teach(ex):
    """Same report twice (seeded inputs); a check describes itself; solutions have source."""
    wrong = next(iter(ex.mistakes.values())).fn if ex.mistakes else ex.solution
    assert run_check(ex, wrong).text == run_check(ex, wrong).text
    assert ex.description, f"check_{ex.name} has no docstring saying what it tests"
    assert "def " in ex.solution_source()


def test_every_lesson_from_01_registers_two_exercises():
    for name in LESSON_MODULES:
        number = int(name[-2:])
        if number >= 1:
            assert len(checking.exercises(name)) >= 2, f"{name} registers fewer than 2 exercises"


# --------------------------------------------------------------------------------------------
# A toy exercise for the machinery itself
# --------------------------------------------------------------------------------------------


def solution_softmax(x):
    e = (x - x.amax(-1, keepdim=True)).exp()
    return e / e.sum(-1, keepdim=True)


def _wrong_axis(x):
    return solution_softmax(x.transpose(0, -1)).transpose(0, -1)


def _no_shift(x):
    return x.exp() / x.exp().sum(-1, keepdim=True)


@exercise(
    "softmax",
    solution=solution_softmax,
    mistakes={
        "softmax over the wrong axis": Mistake(_wrong_axis, why="normalise the last axis"),
        "no max subtraction": _no_shift,
    },
)
def check_softmax(fn, report):
    """Random scores, then a very large score."""
    report.expect(torch.randn(3, 4, generator=report.generator), case="random")
    report.expect(torch.tensor([[1000.0, 0.0]]), case="large")


TOY = checking.get_exercise("softmax", __name__)


def test_report_shape_first_then_values():
    out = run_check(TOY, lambda x: x.softmax(-1)[0])
    assert out.status == "failed" and "shape (4,), expected (3, 4)" in out.text
    out = run_check(TOY, lambda x: x.softmax(-1) * 2)
    assert "values differ" in out.text and "expected" in out.text and out.mistake is None


def test_report_explains_exceptions_and_missing_return():
    def raises(x):
        return x @ torch.ones(7, 2)

    out = run_check(TOY, raises)
    assert out.status == "failed" and "raised RuntimeError" in out.text
    assert "x @ torch.ones(7, 2)" in out.text  # the student's line

    def no_return(x):
        x.softmax(-1)

    out = run_check(TOY, no_return)
    assert out.status == "failed" and "returned None" in out.text
    assert run_check(TOY, 3).status == "failed"


def test_mistake_matching_and_why():
    out = run_check(TOY, _wrong_axis)
    assert out.mistake == "softmax over the wrong axis" and "normalise the last axis" in out.text
    out = run_check(TOY, _no_shift)
    assert out.mistake == "no max subtraction" and "NaN" in out.text
    assert out.cases == ["random"]  # the first case passed


def test_is_blank():
    assert is_blank(blank_raises) and is_blank(blank_ellipsis) and is_blank(blank_pass)
    assert not is_blank(solution_softmax)


def test_compare_explains_differences():
    assert compare(torch.ones(2), torch.ones(2)) is None
    assert "shape (3,), expected (2,)" in compare(torch.ones(3), torch.ones(2))
    assert "values differ at 1 of 2" in compare(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 3.0]))
    assert "first difference at position 1" in compare(["a", "b"], ["a", "c"])
    assert "expected 2 items, got 1" in compare(["a"], ["a", "b"])
    assert compare((1.0, 0.5), (1.0, 0.5 + 1e-9)) is None
    assert "keys differ" in compare({"a": 1}, {"b": 1})
    assert "single number" in compare(torch.ones(2), 1.0)
    assert compare(torch.tensor(1.0), 1.0) is None


# --------------------------------------------------------------------------------------------
# The lesson session
# --------------------------------------------------------------------------------------------


@pytest.fixture
def lesson_env(monkeypatch):
    for key in (core.FAST_ENV, core.STRICT_ENV, core.THREADS_ENV, "OMP_NUM_THREADS"):
        monkeypatch.delenv(key, raising=False)
    threads = torch.get_num_threads()
    yield monkeypatch
    torch.set_num_threads(threads)


def _toy_lesson(strict=False):
    lesson = core.start("01-tokenization")
    lesson.module = sys.modules[__name__]
    lesson.strict = strict
    return lesson


def test_start_sets_threads_seed_mode_and_prints(lesson_env, capsys):
    lesson_env.setenv(core.FAST_ENV, "1")
    lesson = core.start("01-tokenization")
    assert lesson.fast and lesson.pick(full=100, fast=3) == 3 and lesson.budget_s == 60
    assert torch.get_num_threads() <= 2 and lesson.threads == torch.get_num_threads()
    assert lesson.module is importlib.import_module("minibert.lessons.lesson01")
    assert "fast mode" in capsys.readouterr().out
    first = torch.rand(1)
    core.start("01-tokenization")
    assert torch.equal(first, torch.rand(1))  # seeded
    lesson_env.delenv(core.FAST_ENV)
    assert not core.start("01-tokenization").fast
    lesson_env.setenv(core.THREADS_ENV, "1")
    assert core.start("01-tokenization").threads == 1
    with pytest.raises(ValueError, match="NN-topic"):
        core.start("tokenization")


def test_start_leaves_the_users_threads(lesson_env):
    torch.set_num_threads(1)
    lesson_env.setenv("OMP_NUM_THREADS", "1")
    assert core.start("01-tokenization").threads == 1


def test_start_makes_plotly_offline(lesson_env):
    import plotly.io as pio

    pio.renderers.default = "notebook_connected"
    core.start("01-tokenization")
    assert "connected" not in pio.renderers.default and "cdn" not in pio.renderers.default


def test_check_returns_the_students_function_or_the_reference(lesson_env, capsys):
    lesson = _toy_lesson()
    assert lesson.check("softmax", solution_softmax) is solution_softmax
    assert lesson.check("softmax", _wrong_axis) is solution_softmax
    assert lesson.check("softmax", blank_raises) is solution_softmax
    out = capsys.readouterr().out
    assert "[ok] softmax" in out and "softmax over the wrong axis" in out
    assert "not filled in" in out
    assert "def solution_softmax" in lesson.solution("softmax")
    assert lesson.mistake("softmax", "no max subtraction") is _no_shift
    with pytest.raises(KeyError, match="registered there: 'softmax'"):
        lesson.check("soft_max", solution_softmax)


def test_strict_mode_raises_on_anything_but_a_pass(lesson_env):
    lesson = _toy_lesson(strict=True)
    lesson.check("softmax", solution_softmax)
    for fn in (blank_raises, _wrong_axis):
        with pytest.raises(checking.ExerciseNotPassedError):
            lesson.check("softmax", fn)


def test_runs_root(monkeypatch, tmp_path):
    monkeypatch.setenv(core.RUNS_ENV, str(tmp_path / "r"))
    assert core.runs_root() == tmp_path / "r"
    monkeypatch.delenv(core.RUNS_ENV)
    repo = Path(__file__).resolve().parents[1]
    assert core.runs_root(repo / "notebooks") == repo / "runs"
    assert core.runs_root(tmp_path) == tmp_path / "runs"


# --------------------------------------------------------------------------------------------
# Finding a pretrained run
# --------------------------------------------------------------------------------------------


def _fake_run(path: Path, budget: float = 90.0) -> Path:
    (path / "final").mkdir(parents=True)
    (path / "final" / "config.json").write_text("{}")
    (path / "final" / "model.safetensors").write_bytes(b"")
    (path / "tokenizer").mkdir()
    (path / "tokenizer" / "tokenizer.json").write_text("{}")
    (path / "run.json").write_text(json.dumps({"config": {"train": {"time_budget": budget}}}))
    return path


def test_find_pretrained_run_prefers_lesson06_then_demo_then_ours(tmp_path):
    assert runs.find_pretrained_run(tmp_path) is None
    (tmp_path / "lesson-06" / "final").mkdir(parents=True)  # unfinished: ignored
    ours = _fake_run(tmp_path / runs.LESSON_RUN_NAME, budget=10.0)
    assert runs.find_pretrained_run(tmp_path) == ours
    assert runs.find_pretrained_run(tmp_path, min_budget=90.0) is None  # too short for full
    demo = _fake_run(tmp_path / "demo" / "pretrain")
    assert runs.find_pretrained_run(tmp_path, min_budget=90.0) == demo
    lesson06 = _fake_run(tmp_path / "lesson-06-new")
    lesson06.rename(tmp_path / "lesson-06-x")
    import shutil

    shutil.rmtree(tmp_path / "lesson-06")
    (tmp_path / "lesson-06-x").rename(tmp_path / "lesson-06")
    assert runs.find_pretrained_run(tmp_path) == tmp_path / "lesson-06"


def test_pretrained_run_uses_what_it_finds(tmp_path, capsys):
    demo = _fake_run(tmp_path / "demo-2" / "pretrain")
    assert runs.pretrained_run(root=tmp_path) == demo
    assert "found; no training needed" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------------

SOURCE = '''# %% [markdown]
# # A lesson

# %%
from minibert import lessons

lesson = lessons.start("01-tokenization")

# %% tags=["exercise"]
import string


def my_wordpiece(word, vocab):
    """Split a word."""
    # YOUR CODE HERE
    raise NotImplementedError


print("defined")

# %%
wordpiece = lesson.check("wordpiece", my_wordpiece)
'''


def test_builder_fills_in_solutions_and_injects_mistakes(tmp_path):
    source = tmp_path / "01-tokenization.py"
    source.write_text(SOURCE)
    student = build.student_notebook(source)
    assert [c.cell_type for c in student.cells] == ["markdown", "code", "code", "code"]
    assert all(c.outputs == [] for c in student.cells if c.cell_type == "code")
    assert "jupytext" not in student.metadata  # not paired: students' saves never touch the .py
    (cell,) = build.exercise_cells(student)
    assert (cell.index, cell.function, cell.exercise) == (2, "my_wordpiece", "wordpiece")

    solved = build.solutions_notebook(source)
    filled = solved.cells[cell.index + 1].source  # a note cell comes first
    assert "Instructor's copy" in solved.cells[0].source
    assert filled.startswith("import string\n\n\ndef my_wordpiece(word, vocab):")
    assert '"""Split a word."""' in filled and "NotImplementedError" not in filled
    assert "YOUR CODE HERE" not in filled and filled.rstrip().endswith('print("defined")')
    namespace = {}
    exec(compile(filled, "cell", "exec"), namespace)
    assert namespace["my_wordpiece"]("unaffable", {"un", "##aff", "##able"}) == [
        "un",
        "##aff",
        "##able",
    ]

    broken = build.mistake_notebook(source, "wordpiece", "partial [UNK]")
    assert "lesson.mistake('wordpiece', 'partial [UNK]')" in broken.cells[cell.index].source

    build.write_notebook(student, source.with_suffix(".ipynb"))
    build.write_notebook(solved, tmp_path / "solutions" / "01-tokenization.ipynb")
    assert build.out_of_date(source) == []
    source.write_text(SOURCE.replace("# A lesson", "# A changed lesson"))
    assert any("cells differ" in p for p in build.out_of_date(source))


def test_builder_rejects_an_exercise_without_a_check(tmp_path):
    source = tmp_path / "01-x.py"
    source.write_text(SOURCE.replace('wordpiece = lesson.check("wordpiece", my_wordpiece)', ""))
    with pytest.raises(ValueError, match="no later cell calls"):
        build.exercise_cells(build.student_notebook(source))


def test_export_html_embeds_plotly_once_and_loads_nothing_remote(tmp_path):
    import nbformat
    import plotly.graph_objects as go

    figure = json.loads(go.Figure(go.Scatter(y=[1, 3, 2])).to_json())
    nb = nbformat.v4.new_notebook()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    for _ in range(2):
        cell = nbformat.v4.new_code_cell("fig.show()")
        cell.outputs = [
            nbformat.v4.new_output(
                "display_data", data={build.PLOTLY_MIMETYPE: figure, "text/plain": "fig"}
            )
        ]
        nb.cells.append(cell)
    widget = nbformat.v4.new_code_cell("w")
    widget.outputs = [
        nbformat.v4.new_output(
            "execute_result",
            data={build.WIDGET_MIMETYPE: {"model_id": "x"}, "text/plain": "VBox()"},
            execution_count=1,
        )
    ]
    nb.cells.append(widget)
    html = build.export_html(nb, tmp_path / "page.html")
    assert html.count('class="plotly-graph-div"') == 2
    assert html.count("plotly.js v") == 1  # the library once, in the first figure
    assert "interactive widget" in html
    for remote in ("https://cdn", "unpkg.com", "require.min.js", "mathjax"):
        assert remote not in html.lower().split("<body", 1)[0], remote
    assert (tmp_path / "page.html").is_file()


@pytest.mark.slow
def test_pretrained_run_trains_once_into_place(tmp_path, cache_dir, capsys):
    """No run anywhere: a short one is trained (tiny preset), renamed into place complete, with
    nothing else left in the runs folder; the second call finds it."""
    made = runs.pretrained_run(budget=2.0, root=tmp_path, progress=False, cache_dir=cache_dir)
    assert made == tmp_path / runs.LESSON_RUN_NAME and runs.is_finished_run(made)
    assert sorted(p.name for p in tmp_path.iterdir()) == [runs.LESSON_RUN_NAME]
    info = json.loads((made / "run.json").read_text())
    assert info["config"]["preset"] == "tiny" and info["config"]["train"]["time_budget"] == 2.0
    assert runs.pretrained_run(budget=2.0, root=tmp_path) == made
    assert "found; no training needed" in capsys.readouterr().out


def _check_that_trips(fn, report):
    """A check whose own code assumes a tensor answer."""
    got = report.call(torch.ones(2))
    report.close("sum", got.sum(), torch.tensor(2.0))


def test_a_check_that_trips_over_an_odd_answer_reports_instead_of_raising():
    ex = checking.Exercise(
        "odd", _check_that_trips, lambda x: x, {}, __name__, reference=lambda x: x
    )
    outcome = run_check(ex, lambda x: "not a tensor")
    assert outcome.status == "failed" and "could not test your answer" in outcome.text
    assert "AttributeError" in outcome.text
