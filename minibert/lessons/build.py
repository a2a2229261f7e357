"""Notebooks from their text sources: student copy, instructor's solutions, mistake variants,
and an offline HTML export.

``notebooks/NN-topic.py`` (jupytext "percent" format) is the source of truth. From it:

* ``notebooks/NN-topic.ipynb``: the student's notebook, no outputs (not paired through its
  metadata: the ``.py`` stays the source however students save the notebook);
* ``notebooks/solutions/NN-topic.ipynb``: the instructor's copy, each ``exercise``-tagged cell's
  function replaced by the registered solution (renamed to the student's function name);
* :func:`mistake_notebook`: the same with one named common mistake put in an exercise cell (the
  tests check that the printed report names it);
* :func:`export_html`: an executed notebook as one HTML file that draws its plotly figures with
  no network (plotly.js embedded once; no require.js, MathJax, mermaid or widget CDN scripts).

Regenerate everything after editing a ``.py``::

    python -m minibert.lessons.build            # writes the .ipynb files
    python -m minibert.lessons.build 02         # only lesson 02
    python -m minibert.lessons.build --check    # exit 1 if any is out of date (what CI checks)

An exercise cell looks like this; the check that follows names the exercise::

    # %% tags=["exercise"]
    def my_softmax(x):
        # YOUR CODE HERE
        raise NotImplementedError

    # %%
    softmax = lesson.check("softmax", my_softmax)
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import importlib
import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minibert.lessons.checking import function_source, get_exercise
from minibert.lessons.runs import find_repo_root

__all__ = [
    "ExerciseCell",
    "build_all",
    "exercise_cells",
    "export_html",
    "lesson_module_name",
    "lesson_sources",
    "mistake_notebook",
    "notebooks_dir",
    "read_source",
    "solutions_notebook",
    "student_notebook",
    "write_notebook",
]

EXERCISE_TAG = "exercise"
SOLUTIONS_DIR = "solutions"
_SOURCE_PATTERN = re.compile(r"^\d\d-[a-z0-9-]+\.py$")
_START_CALL = re.compile(r"""lessons\.start\(\s*["'](\d\d-[A-Za-z0-9-]+)["']""")
_KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def notebooks_dir() -> Path:
    """The checkout's ``notebooks/`` folder."""
    root = find_repo_root(Path(__file__).parent)
    if root is None:
        raise FileNotFoundError(
            "minibert.lessons.build works in a minibert checkout (git clone ...), where "
            "notebooks/ lives; this one is installed without it."
        )
    return root / "notebooks"


def lesson_sources(folder: str | Path | None = None) -> list[Path]:
    """Every ``NN-topic.py`` lesson source in ``folder`` (default ``notebooks/``), in order."""
    folder = Path(folder) if folder is not None else notebooks_dir()
    return sorted(p for p in folder.glob("*.py") if _SOURCE_PATTERN.match(p.name))


def read_source(path: str | Path) -> Any:
    """The notebook (``nbformat.NotebookNode``) a percent-format source describes."""
    import jupytext

    return jupytext.read(Path(path), fmt="py:percent")


def lesson_module_name(nb: Any) -> str | None:
    """``minibert.lessons.lessonNN`` from the notebook's ``lessons.start("NN-...")`` call."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            found = _START_CALL.search(cell.source)
            if found:
                return f"minibert.lessons.lesson{found.group(1)[:2]}"
    return None


@dataclass
class ExerciseCell:
    """An ``exercise``-tagged cell: where it is, the function it defines, the exercise it is."""

    index: int
    function: str  # the student's function name in the cell
    exercise: str  # the name given to lesson.check(...)


def _defined_function(source: str) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef)]
    return functions[0] if functions else None


def _check_calls(source: str) -> list[tuple[str, str]]:
    """``(exercise, function)`` for each ``lesson.check("exercise", function)`` in ``source``."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "check"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and isinstance(node.args[1], ast.Name)
        ):
            found.append((node.args[0].value, node.args[1].id))
    return found


def exercise_cells(nb: Any) -> list[ExerciseCell]:
    """The exercise cells of ``nb``, each matched with the ``lesson.check`` call that checks it.

    Raises ``ValueError`` for a tagged cell without a function or without a check below it:
    the builder could not write its solution, and the student would get no feedback.
    """
    checks: list[tuple[int, str, str]] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            checks += [(index, ex, fn) for ex, fn in _check_calls(cell.source)]
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or EXERCISE_TAG not in cell.metadata.get("tags", []):
            continue
        function = _defined_function(cell.source)
        if function is None:
            raise ValueError(f"exercise cell {index} defines no function:\n{cell.source}")
        names = [ex for at, ex, fn in checks if at > index and fn == function.name]
        if not names:
            raise ValueError(
                f"exercise cell {index} defines {function.name}() but no later cell calls "
                f'lesson.check("<exercise>", {function.name})'
            )
        found.append(ExerciseCell(index, function.name, names[0]))
    return found


def _docstring_end(node: ast.FunctionDef) -> int | None:
    """The last line of ``node``'s docstring (1-based), or None if it has none."""
    first = node.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first.end_lineno
    return None


def _body_lines(source: str) -> list[str]:
    """The body of the function in ``source``, without its signature and docstring, with the
    comment lines just above its first statement."""
    node = _defined_function(source)
    assert node is not None
    lines = source.splitlines()
    statements = node.body[1:] if _docstring_end(node) is not None else node.body
    if not statements:
        return ["    pass"]
    begin = statements[0].lineno - 1
    floor = (_docstring_end(node) or node.lineno) if statements is not node.body else node.lineno
    while begin - 1 >= floor and lines[begin - 1].strip().startswith("#"):
        begin -= 1
    return lines[begin : node.end_lineno]


def _fill_in(cell_source: str, solution_source: str) -> str:
    """The exercise cell with its function's body replaced by the solution's body; the student's
    signature, docstring and the rest of the cell stay as they are."""
    node = _defined_function(cell_source)
    assert node is not None
    lines = cell_source.splitlines()
    keep_until = _docstring_end(node) or (node.body[0].lineno - 1)
    # Comments right after the docstring are the "YOUR CODE HERE" prompt: replaced too.
    filled = [*lines[:keep_until], *_body_lines(solution_source), *lines[node.end_lineno :]]
    return "\n".join(filled).strip("\n")


def _clean(nb: Any) -> Any:
    """No outputs, no execution counts, deterministic cell ids, our kernelspec."""
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        digest = hashlib.sha1(cell.source.encode("utf-8")).hexdigest()[:8]
        cell["id"] = f"c{index:03d}-{digest}"
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    nb.metadata.pop("jupytext", None)  # how jupytext read the .py; no pairing (see below)
    nb.metadata["kernelspec"] = dict(_KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def student_notebook(source: str | Path) -> Any:
    """The student's ``.ipynb`` for a lesson source: the cells as written, no outputs."""
    # Not paired through metadata: with jupytext installed, a paired notebook whose .py looks
    # older than the .ipynb (file times after a download) refuses to open, and a student's
    # answers would be written into the source. Contributors edit the .py and run the build.
    return _clean(read_source(source))


def _lesson_module(nb: Any) -> str:
    module = lesson_module_name(nb)
    if module is None:
        raise ValueError('the notebook never calls lessons.start("NN-topic")')
    importlib.import_module(module)  # registers its exercises
    return module


def solutions_notebook(source: str | Path) -> Any:
    """The instructor's copy: every exercise cell holds its registered solution."""
    raw = read_source(source)
    module = _lesson_module(raw)
    nb = _clean(raw)
    for cell in exercise_cells(nb):
        ex = get_exercise(cell.exercise, module)
        target = nb.cells[cell.index]
        target.source = _fill_in(target.source, function_source(ex.solution))
    note = (
        "**Instructor's copy**: every exercise is filled in with a reference solution. "
        f"Generated from `notebooks/{Path(source).name}` by `python -m minibert.lessons.build`; "
        "edit the source, not this file."
    )
    import nbformat

    nb.cells.insert(0, nbformat.v4.new_markdown_cell(note))
    return _clean(nb)


def mistake_notebook(source: str | Path, exercise: str, mistake: str) -> Any:
    """The student's notebook with the named common ``mistake`` put into ``exercise``'s cell."""
    nb = student_notebook(source)
    module = _lesson_module(nb)
    ex = get_exercise(exercise, module)
    if mistake not in ex.mistakes:
        raise KeyError(f"exercise {exercise!r} has no mistake {mistake!r}: {list(ex.mistakes)}")
    cells = [c for c in exercise_cells(nb) if c.exercise == exercise]
    if not cells:
        raise KeyError(f"no exercise cell checked as {exercise!r} in {source}")
    for cell in cells:
        nb.cells[cell.index].source = (
            "# The named common mistake, injected by the mistake test:\n"
            f"{cell.function} = lesson.mistake({exercise!r}, {mistake!r})"
        )
    return nb


def write_notebook(nb: Any, path: str | Path) -> Path:
    """Write ``nb`` as ``.ipynb`` (nbformat's layout, one trailing newline)."""
    import nbformat

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = nbformat.writes(nb)
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return path


def _cells_signature(nb: Any) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def out_of_date(source: str | Path) -> list[str]:
    """What differs between a source and its two generated notebooks (empty: in sync)."""
    import nbformat

    source = Path(source)
    problems = []
    targets = [
        (source.with_suffix(".ipynb"), student_notebook),
        (source.parent / SOLUTIONS_DIR / source.with_suffix(".ipynb").name, solutions_notebook),
    ]
    for target, make in targets:
        if not target.is_file():
            problems.append(f"{target} is missing")
            continue
        committed = nbformat.read(target, as_version=4)
        expected = make(source)
        if _cells_signature(committed) != _cells_signature(expected):
            problems.append(f"{target}: cells differ from {source.name}")
        for cell in committed.cells:
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
                problems.append(f"{target}: has outputs or execution counts (commit it clean)")
                break
    return problems


def build_all(
    folder: str | Path | None = None, *, check: bool = False, only: Iterable[str] = ()
) -> list[str]:
    """Write (or with ``check``, only compare) every lesson's two notebooks; return problems.

    ``only``: lesson numbers or names ("02", "02-attention") to limit it to.
    """
    wanted = [str(name) for name in only]
    problems = []
    for source in lesson_sources(folder):
        if wanted and not any(source.stem == w or source.stem[:2] == w for w in wanted):
            continue
        if check:
            problems += out_of_date(source)
            continue
        write_notebook(student_notebook(source), source.with_suffix(".ipynb"))
        write_notebook(
            solutions_notebook(source),
            source.parent / SOLUTIONS_DIR / source.with_suffix(".ipynb").name,
        )
    return problems


# --------------------------------------------------------------------------------------------
# Offline HTML export
# --------------------------------------------------------------------------------------------

PLOTLY_MIMETYPE = "application/vnd.plotly.v1+json"
WIDGET_MIMETYPE = "application/vnd.jupyter.widget-view+json"
_WIDGET_REPR = re.compile(r"^[A-Z]\w*\(")
_PROGRESS_BAR = re.compile(r"\d+%\|")

# The "lab" template with every script that would come from a CDN removed: require.js (only
# the widget manager and old plotly output needed it), MathJax (formulas stay as readable
# LaTeX source), mermaid, and the widget-state manager from unpkg.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
"""


def _plotly_html(figure: dict, div_id: str, include_plotlyjs: bool) -> str:
    import plotly.io as pio

    return pio.to_html(
        figure,
        include_plotlyjs=include_plotlyjs,
        include_mathjax=False,
        full_html=False,
        div_id=div_id,
        config={"displaylogo": False},
        validate=False,
        default_width="100%",
    )


_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$", re.DOTALL)
_INLINE_MATH = re.compile(r"(?<![\\$])\$(?=\S)([^$\n]+?)(?<=\S)\$(?!\$)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)


def math_to_mathml(markdown: str) -> str:
    """``$...$`` and ``$$...$$`` LaTeX in ``markdown`` as MathML, which browsers draw with no
    script (MathJax would come from a CDN). Needs ``latex2mathml``; without it, or for a
    formula it cannot convert, the LaTeX source stays as it is. Code spans are left alone."""
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return markdown

    def mathml(tex: str, display: str) -> str | None:
        try:
            return convert(tex.strip(), display=display).replace("\n", "")
        except Exception:  # an unsupported command: keep the source readable instead
            return None

    def block(match: re.Match) -> str:
        return mathml(match.group(1), "block") or match.group(0)

    def inline(match: re.Match) -> str:
        return mathml(match.group(1), "inline") or match.group(0)

    # Protect code spans (e.g. `$PATH`) from being read as math.
    spans: list[str] = []

    def protect(match: re.Match) -> str:
        spans.append(match.group(0))
        return f"\x00{len(spans) - 1}\x00"

    text = _CODE_SPAN.sub(protect, markdown)
    text = _DISPLAY_MATH.sub(block, text)
    text = _INLINE_MATH.sub(inline, text)
    return re.sub("\x00(\\d+)\x00", lambda m: spans[int(m.group(1))], text)


def offline_outputs(nb: Any) -> Any:
    """A copy of ``nb`` for an offline page: plotly outputs as HTML that draws with plotly.js
    embedded in the first one, widgets replaced by a short note, LaTeX as MathML."""
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
    first = True
    count = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data:
                continue
            if PLOTLY_MIMETYPE in data:
                figure = data[PLOTLY_MIMETYPE]
                if isinstance(figure, str):
                    figure = json.loads(figure)
                count += 1
                data["text/html"] = _plotly_html(figure, f"minibert-figure-{count}", first)
                first = False
                del data[PLOTLY_MIMETYPE]
            if WIDGET_MIMETYPE in data:
                del data[WIDGET_MIMETYPE]
                plain = data.get("text/plain", "")
                plain = plain if isinstance(plain, str) else "".join(plain)
                # A progress bar's text form is the bar as it was drawn first ("0%| | 0/7"),
                # which a page would show frozen: leave it out. A control's text form is its
                # repr ("VBox(children=...)"): say what would be there.
                if _PROGRESS_BAR.search(plain):
                    output["data"] = {"text/plain": ""}
                elif _WIDGET_REPR.match(plain) or not plain:
                    data["text/html"] = (
                        '<p class="minibert-widget-note"><em>An interactive widget is here when '
                        "the notebook runs in Jupyter or VS Code.</em></p>"
                    )
                    data.pop("text/plain", None)
    return nb


def export_html(nb: Any, path: str | Path | None = None) -> str:
    """An executed notebook as one self-contained HTML page that needs no network.

    Returns the HTML; writes it to ``path`` when given.
    """
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[jinja2.DictLoader({"minibert_offline.html.j2": _OFFLINE_TEMPLATE})],
    )
    exporter.template_file = "minibert_offline.html.j2"
    html, _ = exporter.from_notebook_node(offline_outputs(nb))
    if path is not None:
        Path(path).write_text(html, encoding="utf-8")
    return html


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m minibert.lessons.build",
        description="Regenerate notebooks/NN-*.ipynb and notebooks/solutions/ from the .py sources.",
    )
    parser.add_argument(
        "--check", action="store_true", help="only report notebooks that are out of date"
    )
    parser.add_argument("--notebooks", type=Path, default=None, help="the notebooks folder")
    parser.add_argument(
        "lessons", nargs="*", help="only these lessons (numbers or names, e.g. 02 03-model)"
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    problems = build_all(args.notebooks, check=args.check, only=args.lessons)
    for problem in problems:
        print(problem)
    if args.check and problems:
        print("run `python -m minibert.lessons.build` and commit the result", file=sys.stderr)
        return 1
    if not args.check:
        count = len(args.lessons) if args.lessons else len(lesson_sources(args.notebooks))
        print(f"wrote {count} lesson(s) and their solutions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
