"""Exercise checks that teach: register an exercise, check a student's function, explain.

A lesson module (``minibert/lessons/lessonNN.py``) registers each exercise with its reference
solution, its *named* common mistakes and a check::

    from minibert.lessons.checking import Mistake, exercise

    def solution_softmax(x):
        return x.exp() / x.exp().sum(-1, keepdim=True)

    def _wrong_axis(x):
        return x.exp() / x.exp().sum(0, keepdim=True)

    @exercise("softmax", solution=solution_softmax,
              mistakes={"softmax over the wrong axis": Mistake(_wrong_axis, why="...")})
    def check_softmax(fn, report):
        "Random scores of a few shapes, then a row with a very large score."
        report.expect(torch.randn(2, 3, generator=report.generator), case="random (2, 3)")
        report.expect(torch.tensor([[1000.0, 0.0]]), case="a large score (overflow)")

:func:`run_check` runs a check and returns an :class:`Outcome` whose text reads like a tutor
(ARENA-style): shapes first, then where the values differ (expected vs got), then, if the
answer matches one of the registered mistakes on the same input, that mistake *by name* with
its likely cause. A blank exercise (``raise NotImplementedError``, ``...``, ``pass``) is
"not filled in", which is not an error: the notebook goes on with the reference.

:meth:`Report.expect` does the common case (call the student's function and the reference on
the same inputs and compare); :meth:`Report.call`, :meth:`Report.shape`, :meth:`Report.close`,
:meth:`Report.equal`, :meth:`Report.diagnose` and :meth:`Report.fail` build checks that need
more (statistics of a random function, a property rather than a value).
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import random
import textwrap
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

__all__ = [
    "CheckFailed",
    "Exercise",
    "ExerciseNotPassedError",
    "Mistake",
    "NotFilledIn",
    "Outcome",
    "Report",
    "compare",
    "exercise",
    "exercises",
    "get_exercise",
    "is_blank",
    "run_check",
]

# module name -> exercise name -> Exercise. Filled by @exercise when a lesson module is imported.
_REGISTRY: dict[str, dict[str, Exercise]] = {}


class NotFilledIn(Exception):
    """The student's function is still the blank template."""


class CheckFailed(Exception):
    """The student's function gave a wrong answer; ``mistake`` names it when recognised."""

    def __init__(self, message: str, mistake: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.mistake = mistake


class ExerciseNotPassedError(AssertionError):
    """Raised by a check under ``MINIBERT_STRICT_EXERCISES=1`` (the solutions-notebook test)."""


@dataclass(frozen=True)
class Mistake:
    """A common wrong answer, written as code, with why students make it and how to fix it."""

    fn: Callable[..., Any]
    why: str = ""


@dataclass
class Exercise:
    """One registered exercise: the check, the solution shown to students, the named mistakes.

    ``reference`` is what the notebook uses when the student's answer does not pass (default:
    the solution); it must take the same arguments.
    """

    name: str
    check: Callable[[Callable[..., Any], Report], None]
    solution: Callable[..., Any]
    mistakes: dict[str, Mistake]
    module: str
    reference: Callable[..., Any]
    atol: float = 1e-5
    rtol: float = 1e-4

    @property
    def description(self) -> str:
        return inspect.getdoc(self.check) or ""

    def solution_source(self, rename_to: str | None = None) -> str:
        """The solution's source, renamed to the student's function name if given."""
        return function_source(self.solution, rename_to)


def function_source(fn: Callable[..., Any], rename_to: str | None = None) -> str:
    """``fn``'s source (dedented, decorators dropped), its ``def`` renamed to ``rename_to``."""
    source = textwrap.dedent(inspect.getsource(fn))
    tree = ast.parse(source)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise TypeError(f"{fn!r} is not a plain function defined with def")
    lines = source.splitlines()
    # Drop decorators: the first line of the def is node.lineno (1-based).
    lines = lines[node.lineno - 1 :]
    if rename_to and rename_to != node.name:
        lines[0] = lines[0].replace(f"def {node.name}(", f"def {rename_to}(", 1)
    return "\n".join(lines).rstrip() + "\n"


def exercise(
    name: str,
    *,
    solution: Callable[..., Any],
    mistakes: Mapping[str, Mistake | Callable[..., Any]] | None = None,
    reference: Callable[..., Any] | None = None,
    atol: float = 1e-5,
    rtol: float = 1e-4,
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Register the decorated check ``check(fn, report)`` as exercise ``name`` of its module.

    ``mistakes`` maps a mistake's name (what the report tells the student, e.g. "softmax over
    the wrong axis") to a :class:`Mistake` or a plain function; each must be recognisable by
    the check (the generic test in ``tests/test_lessons_infra.py`` holds every registered
    exercise to that). ``atol``/``rtol`` are :meth:`Report.expect`'s default tolerances.
    """
    named = {
        key: value if isinstance(value, Mistake) else Mistake(value)
        for key, value in (mistakes or {}).items()
    }

    def register(check: Callable[..., None]) -> Callable[..., None]:
        module = check.__module__
        entries = _REGISTRY.setdefault(module, {})
        entries[name] = Exercise(
            name=name,
            check=check,
            solution=solution,
            mistakes=named,
            module=module,
            reference=reference or solution,
            atol=atol,
            rtol=rtol,
        )
        return check

    return register


def exercises(module: str | None = None) -> list[Exercise]:
    """Registered exercises, of one lesson module (``"minibert.lessons.lesson02"``) or all."""
    if module is not None:
        return list(_REGISTRY.get(module, {}).values())
    return [ex for entries in _REGISTRY.values() for ex in entries.values()]


def get_exercise(name: str, module: str) -> Exercise:
    """The exercise ``name`` of ``module``; a clear error lists the names that exist."""
    entries = _REGISTRY.get(module, {})
    if name not in entries:
        known = ", ".join(repr(n) for n in entries) or "none"
        raise KeyError(
            f"no exercise {name!r} in {module} (registered there: {known}). Check the name in "
            "lesson.check(...) against the @exercise(...) names of that module."
        )
    return entries[name]


# --------------------------------------------------------------------------------------------
# Comparing answers
# --------------------------------------------------------------------------------------------


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "shape")


def _is_array(value: Any) -> bool:
    return type(value).__module__ == "numpy" and hasattr(value, "shape")


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    if _is_tensor(value) or _is_array(value):
        import numpy as np

        array = value.detach().cpu().numpy() if _is_tensor(value) else value
        with np.printoptions(precision=4, threshold=12, edgeitems=2, linewidth=100):
            text = np.array2string(array, separator=", ")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_name(value: Any) -> str:
    if _is_tensor(value):
        return f"tensor of shape {tuple(value.shape)} ({str(value.dtype).replace('torch.', '')})"
    if _is_array(value):
        return f"array of shape {tuple(value.shape)} ({value.dtype})"
    return type(value).__name__


def compare(
    got: Any, expected: Any, *, atol: float = 1e-5, rtol: float = 1e-4, path: str = "output"
) -> str | None:
    """Explain the first way ``got`` differs from ``expected``, or ``None`` when they agree.

    Shapes and types are compared before values. Tensors and arrays are close when
    ``|got - expected| <= atol + rtol * |expected|`` everywhere (and NaN/inf in the same places);
    floats likewise; tuples, lists and dicts element by element; anything else with ``==``.
    """
    if _is_tensor(expected) or _is_array(expected):
        return _compare_arrays(got, expected, atol=atol, rtol=rtol, path=path)
    if isinstance(expected, bool) or expected is None:
        return None if got is expected or got == expected else _mismatch(path, got, expected)
    if isinstance(expected, (int, float)) and not isinstance(got, (str, bytes)):
        if _is_tensor(got) or _is_array(got):
            if getattr(got, "ndim", 1) != 0:
                return (
                    f"{path}: expected a single number, got a {_type_name(got)}. Reduce it "
                    "(e.g. .mean() or .sum()) or return .item()."
                )
            got = got.item()
        if not isinstance(got, (int, float)):
            return f"{path}: expected a number, got {_type_name(got)} {_short(got)}"
        if isinstance(expected, int) and not isinstance(expected, bool) and isinstance(got, int):
            return None if got == expected else _mismatch(path, got, expected)
        if math.isnan(expected) and math.isnan(got):
            return None
        if abs(got - expected) <= atol + rtol * abs(expected):
            return None
        return f"{path}: expected {expected:.6g}, got {got:.6g} (difference {got - expected:+.3g})"
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{path}: expected a dict, got {_type_name(got)}"
        missing = [k for k in expected if k not in got]
        extra = [k for k in got if k not in expected]
        if missing or extra:
            return f"{path}: keys differ: missing {missing}, unexpected {extra}"
        for key in expected:
            problem = compare(
                got[key], expected[key], atol=atol, rtol=rtol, path=f"{path}[{key!r}]"
            )
            if problem:
                return problem
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return (
                f"{path}: expected a {type(expected).__name__} of {len(expected)} items, got "
                f"{_type_name(got)}"
            )
        if len(got) != len(expected):
            return (
                f"{path}: expected {len(expected)} items, got {len(got)}"
                f"\n    expected {_short(expected)}\n    got      {_short(got)}"
            )
        if expected and all(isinstance(e, (str, int)) for e in expected):
            # Token lists, id lists: show the first differing position in context.
            for i, (g, e) in enumerate(zip(got, expected, strict=True)):
                if g != e:
                    return (
                        f"{path}: first difference at position {i}: expected {e!r}, got {g!r}"
                        f"\n    expected {_short(list(expected))}\n    got      {_short(list(got))}"
                    )
            return None
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            problem = compare(g, e, atol=atol, rtol=rtol, path=f"{path}[{i}]")
            if problem:
                return problem
        return None
    if hasattr(expected, "__dataclass_fields__"):
        for name in expected.__dataclass_fields__:
            if not hasattr(got, name):
                return f"{path}: expected a {type(expected).__name__} with field {name!r}"
            problem = compare(
                getattr(got, name),
                getattr(expected, name),
                atol=atol,
                rtol=rtol,
                path=f"{path}.{name}",
            )
            if problem:
                return problem
        return None
    return None if got == expected else _mismatch(path, got, expected)


def _mismatch(path: str, got: Any, expected: Any) -> str:
    return f"{path}: expected {_short(expected)}, got {_short(got)}"


def _compare_arrays(got: Any, expected: Any, *, atol: float, rtol: float, path: str) -> str | None:
    import numpy as np

    if not (_is_tensor(got) or _is_array(got)):
        return f"{path}: expected a {_type_name(expected)}, got {_type_name(got)}"
    if tuple(got.shape) != tuple(expected.shape):
        return (
            f"{path}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}. Shapes first: "
            "write the shape of each intermediate next to the line that makes it."
        )
    g = got.detach().cpu().double().numpy() if _is_tensor(got) else np.asarray(got, dtype=float)
    e = (
        expected.detach().cpu().double().numpy()
        if _is_tensor(expected)
        else np.asarray(expected, dtype=float)
    )
    if g.size == 0:
        return None
    if np.isnan(g).any() and not np.isnan(e).any():
        where = tuple(int(i) for i in np.argwhere(np.isnan(g))[0])
        return (
            f"{path}: has NaN (first at index {where}) where the reference has none; a NaN "
            "usually comes from inf - inf (e.g. a row where every score is -inf) or 0/0."
        )
    ok = np.isclose(g, e, atol=atol, rtol=rtol, equal_nan=True)
    if ok.all():
        return None
    diff = np.where(np.isfinite(g) & np.isfinite(e), np.abs(g - e), np.inf)
    diff = np.where(ok, 0.0, diff)
    worst = tuple(int(i) for i in np.unravel_index(np.argmax(diff), diff.shape))
    wrong = int((~ok).sum())
    return (
        f"{path}: values differ at {wrong} of {ok.size} positions (largest at index {worst}: "
        f"expected {e[worst]:.6g}, got {g[worst]:.6g})"
        f"\n    expected {_short(expected)}\n    got      {_short(got)}"
    )


# --------------------------------------------------------------------------------------------
# Blank detection
# --------------------------------------------------------------------------------------------


def is_blank(fn: Callable[..., Any]) -> bool:
    """True if ``fn``'s body is only a docstring, comments, ``pass``, ``...`` and/or
    ``raise NotImplementedError`` -- the template the student has not filled in yet."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        node = ast.parse(source).body[0]
    except (OSError, TypeError, SyntaxError, IndexError):
        return False
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    for statement in node.body:
        if isinstance(statement, ast.Pass):
            continue
        if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
            continue  # docstring or a bare ...
        if isinstance(statement, ast.Raise):
            target = statement.exc
            if isinstance(target, ast.Call):
                target = target.func
            if isinstance(target, ast.Name) and target.id == "NotImplementedError":
                continue
        return False
    return True


# --------------------------------------------------------------------------------------------
# The report a check writes
# --------------------------------------------------------------------------------------------


def _clone(value: Any) -> Any:
    """A deep copy, so a function that changes its inputs in place cannot change the next call's."""
    if _is_tensor(value):
        return value.detach().clone()
    try:
        return copy.deepcopy(value)
    except Exception:  # objects that cannot be copied (a tokenizer, a model) are shared
        return value


class Report:
    """What a check uses to test the student's function ``fn`` and explain what it finds.

    ``generator`` (torch) and ``random`` (Python) are seeded, so every run of a check sees
    the same "random" inputs and a report can be reproduced.
    """

    def __init__(self, exercise: Exercise, fn: Callable[..., Any], *, seed: int = 0) -> None:
        self.exercise = exercise
        self.fn = fn
        self.seed = seed
        self.cases: list[str] = []
        self.notes: list[str] = []
        self.random = random.Random(seed)
        self._generator = None

    @property
    def generator(self) -> Any:
        """A seeded ``torch.Generator`` for random inputs."""
        if self._generator is None:
            import torch

            self._generator = torch.Generator().manual_seed(self.seed)
        return self._generator

    # --- calling ---------------------------------------------------------------------------

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Call the student's function on copies of the inputs; turn what goes wrong into advice.

        A blank function raises :class:`NotFilledIn`; an exception or a missing ``return``
        becomes a :class:`CheckFailed` that says so.
        """
        try:
            result = self.fn(
                *[_clone(a) for a in args], **{k: _clone(v) for k, v in kwargs.items()}
            )
        except NotImplementedError:
            raise NotFilledIn() from None
        except (CheckFailed, NotFilledIn):
            raise
        except Exception as error:
            raise CheckFailed(self._explain_exception(error, args, kwargs)) from None
        if result is None:
            if is_blank(self.fn):
                raise NotFilledIn()
            raise CheckFailed(
                "your function returned None: the last line probably computes the answer "
                "without `return`ing it.",
                mistake=None,
            )
        return result

    def _explain_exception(self, error: Exception, args: Sequence[Any], kwargs: dict) -> str:
        frames = traceback.extract_tb(error.__traceback__)
        # The innermost frame in the student's code (not torch's), if any.
        student = [
            f for f in frames if "site-packages" not in f.filename and "/torch/" not in f.filename
        ]
        where = ""
        if student and student[-1].line:
            where = f"\n    at: {student[-1].line.strip()}"
        shapes = ", ".join(_type_name(a) for a in args)
        if kwargs:
            shapes += ", " + ", ".join(f"{k}={_type_name(v)}" for k, v in kwargs.items())
        text = f"your function raised {type(error).__name__}: {error}{where}\n    inputs: {shapes}"
        message = str(error)
        if "size of tensor" in message or "shape" in message or "mat1 and mat2" in message:
            text += (
                "\n    A shape error: print each intermediate's .shape and compare with the shape "
                "comments in the docstring."
            )
        return text

    def reference(self, *args: Any, **kwargs: Any) -> Any:
        """The solution's answer on copies of the inputs."""
        return self.exercise.solution(
            *[_clone(a) for a in args], **{k: _clone(v) for k, v in kwargs.items()}
        )

    # --- comparing -------------------------------------------------------------------------

    def expect(
        self,
        *args: Any,
        case: str = "",
        atol: float | None = None,
        rtol: float | None = None,
        **kwargs: Any,
    ) -> Any:
        """Check ``fn(*args, **kwargs)`` against the solution on the same inputs.

        On a difference, every registered mistake is run on the same inputs; one that gives
        the student's answer is named in the failure. Returns the student's answer.
        """
        atol = self.exercise.atol if atol is None else atol
        rtol = self.exercise.rtol if rtol is None else rtol
        got = self.call(*args, **kwargs)
        expected = self.reference(*args, **kwargs)
        problem = compare(got, expected, atol=atol, rtol=rtol)
        if problem:
            mistake = self.diagnose(got, *args, atol=atol, rtol=rtol, **kwargs)
            self.fail(problem, mistake=mistake, case=case, inputs=(args, kwargs))
        self.passed(case)
        return got

    def diagnose(
        self, got: Any, *args: Any, atol: float | None = None, rtol: float | None = None, **kwargs
    ) -> str | None:
        """The name of the registered mistake whose answer on these inputs equals ``got``."""
        atol = self.exercise.atol if atol is None else atol
        rtol = self.exercise.rtol if rtol is None else rtol
        for name, mistake in self.exercise.mistakes.items():
            try:
                answer = mistake.fn(
                    *[_clone(a) for a in args], **{k: _clone(v) for k, v in kwargs.items()}
                )
            except Exception:
                continue
            if compare(got, answer, atol=atol, rtol=rtol) is None:
                return name
        return None

    def shape(self, what: str, got: Any, expected: Sequence[int] | Any, *, case: str = "") -> None:
        """Fail unless ``got`` has the ``expected`` shape (a tuple, or another tensor's shape)."""
        want = tuple(expected.shape) if hasattr(expected, "shape") else tuple(expected)
        have = tuple(got.shape) if hasattr(got, "shape") else None
        if have is None:
            self.fail(
                f"{what}: expected a tensor of shape {want}, got {_type_name(got)}", case=case
            )
        if have != want:
            self.fail(f"{what}: shape {have}, expected {want}", case=case)

    def close(
        self,
        what: str,
        got: Any,
        expected: Any,
        *,
        atol: float | None = None,
        rtol: float | None = None,
        case: str = "",
        mistake: str | None = None,
    ) -> None:
        """Fail unless ``got`` is close to ``expected`` (see :func:`compare`)."""
        problem = compare(
            got,
            expected,
            atol=self.exercise.atol if atol is None else atol,
            rtol=self.exercise.rtol if rtol is None else rtol,
            path=what,
        )
        if problem:
            self.fail(problem, mistake=mistake, case=case)

    def equal(
        self, what: str, got: Any, expected: Any, *, case: str = "", mistake: str | None = None
    ) -> None:
        """Fail unless ``got == expected`` exactly (tokens, ids, counts)."""
        problem = compare(got, expected, atol=0.0, rtol=0.0, path=what)
        if problem:
            self.fail(problem, mistake=mistake, case=case)

    def fail(
        self,
        message: str,
        *,
        mistake: str | None = None,
        case: str = "",
        inputs: tuple[Sequence[Any], dict] | None = None,
    ) -> NoReturn:
        """Stop the check with ``message``; ``mistake`` names a registered common mistake."""
        if mistake is not None and mistake not in self.exercise.mistakes:
            raise KeyError(
                f"fail(mistake={mistake!r}) names no registered mistake of this exercise"
            )
        lines = []
        if case:
            lines.append(f"case: {case}")
        if inputs is not None and (inputs[0] or inputs[1]):
            described = [
                _type_name(a) if (_is_tensor(a) or _is_array(a)) else _short(a, 60)
                for a in inputs[0]
            ]
            described += [
                f"{k}={_type_name(v) if _is_tensor(v) else _short(v, 60)}"
                for k, v in inputs[1].items()
            ]
            lines.append("inputs: " + ", ".join(described))
        lines.append(message)
        raise CheckFailed("\n".join(lines), mistake=mistake)

    def note(self, message: str) -> None:
        """A line shown with a passing report (what was tested, a caveat)."""
        self.notes.append(message)

    def passed(self, case: str) -> None:
        """Record a passed case (``expect`` does this itself)."""
        if case:
            self.cases.append(case)


# --------------------------------------------------------------------------------------------
# Running a check
# --------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a check found: ``status`` passed / failed / blank, the report text, the mistake."""

    exercise: str
    status: Literal["passed", "failed", "blank"]
    text: str
    mistake: str | None = None
    cases: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def __str__(self) -> str:
        return self.text


def run_check(ex: Exercise, fn: Callable[..., Any] | None, *, seed: int = 0) -> Outcome:
    """Run ``ex``'s check on ``fn`` and write the tutor's report."""
    name = ex.name
    solution_hint = f'lesson.solution("{name}")'
    if fn is None or is_blank(fn):
        return Outcome(
            name,
            "blank",
            f"[ ] {name}: not filled in yet: the cells below use the reference. Write your "
            f"version in the cell above and run both cells again; {solution_hint} shows one answer.",
        )
    if not callable(fn):
        return Outcome(
            name,
            "failed",
            f"[x] {name}: expected a function, got {type(fn).__name__} {_short(fn, 60)}. Pass the "
            "function itself (its name, without parentheses). The cells below use the reference.",
        )
    report = Report(ex, fn, seed=seed)
    try:
        ex.check(fn, report)
    except NotFilledIn:
        return Outcome(
            name,
            "blank",
            f"[ ] {name}: not filled in yet (it raised NotImplementedError): the cells below use "
            f"the reference. {solution_hint} shows one answer.",
        )
    except CheckFailed as failure:
        passed = f" ({len(report.cases)} case(s) passed before it)" if report.cases else ""
        lines = [f"[x] {name}: not yet right{passed}."]
        lines += ["    " + line for line in failure.message.splitlines()]
        if failure.mistake is not None:
            why = ex.mistakes[failure.mistake].why
            lines.append(f"    This is a common mistake: {failure.mistake}.")
            if why:
                lines += ["    " + line for line in textwrap.wrap(why, 92)]
        lines.append(
            f"    The cells below use the reference instead. Fix your function and run both cells "
            f"again; {solution_hint} shows one answer."
        )
        return Outcome(name, "failed", "\n".join(lines), failure.mistake, list(report.cases))
    except Exception as error:  # the check's own code tripped over an unexpected answer
        where = traceback.extract_tb(error.__traceback__)[-1]
        return Outcome(
            name,
            "failed",
            f"[x] {name}: the check could not test your answer ({type(error).__name__}: {error}, "
            f"in {Path(where.filename).name} line {where.lineno}). Look at what your function "
            "returns (its type and shape) against the docstring. The cells below use the "
            f"reference; {solution_hint} shows one answer.",
            None,
            list(report.cases),
        )
    shown = report.cases[:6]
    more = f" and {len(report.cases) - 6} more" if len(report.cases) > 6 else ""
    cases = f": {', '.join(shown)}{more}" if report.cases else ""
    lines = [f"[ok] {name}: passed {len(report.cases) or 'all'} case(s){cases}."]
    lines += ["    " + note for note in report.notes]
    lines.append("    The cells below use your function.")
    return Outcome(name, "passed", "\n".join(lines), None, list(report.cases))
