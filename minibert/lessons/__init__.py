"""Support for the lesson notebooks: the lesson session, exercise checks, the pretrained run.

    from minibert import lessons
    lesson = lessons.start("02-attention")           # mode, seeds, threads, offline figures
    size = lesson.pick(full=512, fast=64)            # sizes for full / fast (CI) mode
    attention = lesson.check("attention", my_attention)   # tutor's report; fn or the reference
    lesson.solution("attention")                     # print one answer
    run = lessons.pretrained_run(lesson)             # lesson 06's run, the demo's, or a new one

Exercises are registered in ``minibert/lessons/lessonNN.py`` with
:func:`minibert.lessons.checking.exercise`; notebooks are built from their text sources by
:mod:`minibert.lessons.build`.
"""

from minibert.lessons.checking import (
    CheckFailed,
    Exercise,
    ExerciseNotPassedError,
    Mistake,
    NotFilledIn,
    Outcome,
    Report,
    compare,
    exercise,
    exercises,
    run_check,
)
from minibert.lessons.core import (
    FAST_ENV,
    RUNS_ENV,
    STRICT_ENV,
    Lesson,
    is_fast,
    runs_root,
    start,
)
from minibert.lessons.runs import find_pretrained_run, pretrained_run

__all__ = [
    "FAST_ENV",
    "RUNS_ENV",
    "STRICT_ENV",
    "CheckFailed",
    "Exercise",
    "ExerciseNotPassedError",
    "Lesson",
    "Mistake",
    "NotFilledIn",
    "Outcome",
    "Report",
    "compare",
    "exercise",
    "exercises",
    "find_pretrained_run",
    "is_fast",
    "pretrained_run",
    "run_check",
    "runs_root",
    "start",
]
