"""Lesson 05 (masking and losses): the references agree with minibert.functional, and the
spot-the-bugs check finds every bug of the notebook's loop, crash by crash.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named, including each single-bug version of the loop) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest
import torch

from minibert import functional
from minibert.lessons import lesson05
from minibert.lessons.checking import get_exercise, run_check

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05-masking-and-losses.py"


def test_reference_masking_statistics_match_the_library():
    g = torch.Generator().manual_seed(0)
    ids, special = lesson05.masking_batch(256, 64, 1000, 5, g)
    replacements = torch.arange(5, 1000)
    torch.manual_seed(0)
    masked, labels = lesson05.solution_mask_tokens(
        ids, special, mask_token_id=4, replacement_ids=replacements
    )
    library = functional.mask_tokens(
        ids, special, vocab_size=1000, mask_token_id=4, replacement_ids=replacements, generator=g
    )
    mine = lesson05.masking_stats(ids, masked, labels, special, 4, torch.arange(5))
    theirs = lesson05.masking_stats(
        ids, library.input_ids, library.labels, special, 4, torch.arange(5)
    )
    assert abs(mine.rate - theirs.rate) < 0.01
    for kind in ("mask", "random", "kept"):
        assert abs(mine.share(kind) - theirs.share(kind)) < 0.03, kind
    assert mine.specials_touched == theirs.specials_touched == 0
    assert mine.changed_unlabelled == theirs.changed_unlabelled == 0


def test_reference_losses_equal_the_library():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 7, 13, generator=g)
    labels = torch.randint(13, (3, 7), generator=g)
    labels[torch.rand(3, 7, generator=g) > 0.3] = -100
    labels[0, 0] = 2
    expected = functional.mlm_loss(logits, labels)
    assert torch.allclose(lesson05.solution_mlm_loss(logits, labels), expected, atol=1e-6)
    nsp_logits = torch.randn(5, 2, generator=g)
    nsp_labels = torch.randint(2, (5,), generator=g)
    assert torch.allclose(
        lesson05.solution_nsp_loss(nsp_logits, nsp_labels),
        functional.nsp_loss(nsp_logits, nsp_labels),
        atol=1e-6,
    )


def _notebook_loop():
    """The notebook's buggy loop, with its `raise NotImplementedError` line removed."""
    tree = ast.parse(NOTEBOOK.read_text(encoding="utf-8"))
    node = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "my_pretraining_loop"
    )
    node.body = [
        s
        for s in node.body
        if not (isinstance(s, ast.Raise) and "NotImplementedError" in ast.unparse(s))
    ]
    namespace: dict = {}
    exec(compile(ast.Module([node], []), str(NOTEBOOK), "exec"), namespace)
    return namespace["my_pretraining_loop"]


def test_notebook_loop_as_given_is_not_filled_in():
    ex = get_exercise("pretraining_loop", "minibert.lessons.lesson05")
    tree = ast.parse(NOTEBOOK.read_text(encoding="utf-8"))
    node = next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "my_pretraining_loop"
    )
    namespace: dict = {}
    exec(compile(ast.Module([node], []), str(NOTEBOOK), "exec"), namespace)
    outcome = run_check(ex, namespace["my_pretraining_loop"])
    assert outcome.status == "blank", outcome.text


def test_notebook_loop_behaves_like_the_all_bugs_version():
    found_notebook, _, _ = lesson05.diagnose_loop(_notebook_loop())
    found_library, _, _ = lesson05.diagnose_loop(lesson05.buggy_pretraining_loop)
    assert found_notebook == found_library == [1]


def test_fixing_what_the_check_reports_finds_every_bug():
    """Fix the bugs the check names, run again, until it passes: every bug gets named once."""
    remaining = set(lesson05.BUGS)
    named: list[list[int]] = []
    for _ in range(len(lesson05.BUGS)):
        loop = functools.partial(lesson05.buggy_pretraining_loop, bugs=frozenset(remaining))
        found, problems, _ = lesson05.diagnose_loop(loop)
        if not remaining:
            break
        assert found, f"bugs {sorted(remaining)} remain but none was named; {problems}"
        assert set(found) <= remaining, f"named {found}, but only {sorted(remaining)} remain"
        named.append(found)
        remaining -= set(found)
    assert not remaining
    assert sorted(n for round_ in named for n in round_) == sorted(lesson05.BUGS)
    # Loud bugs first, then the silent ones together: a few rounds, not eleven.
    assert len(named) <= 5, named


def test_the_fixed_loop_passes_and_the_loss_falls():
    ex = get_exercise("pretraining_loop", "minibert.lessons.lesson05")
    fixed = functools.partial(lesson05.buggy_pretraining_loop, bugs=frozenset())
    outcome = run_check(ex, fixed)
    assert outcome.passed, outcome.text
    assert "loss fell from" in outcome.text


@pytest.mark.parametrize("number", sorted(lesson05.BUGS))
def test_every_bug_has_a_hint(number, capsys):
    lesson05.hint(number)
    assert f"[{number}]" in capsys.readouterr().out
    assert f"[{number}]" in NOTEBOOK.read_text(encoding="utf-8")  # the loop's marker


def test_copying_share_is_kept_hits_over_all_hits():
    result = {
        "counts": {"mask": 8, "random": 1, "kept": 1},
        "accuracy": {"mask": 0.25, "random": 0.0, "kept": 1.0},
    }
    assert lesson05.copying_share(result) == pytest.approx(1 / 3)
