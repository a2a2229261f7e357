"""Lesson 00 (the tour): its helpers pick the right head, lay out guesses, and map the lessons."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from minibert.lessons import lesson00


@dataclass
class _Attention:  # the fields of minibert.inspect.AttentionResult the helper reads
    attentions: np.ndarray
    special_mask: list[bool]


def _result(strong_previous: tuple[int, int]) -> _Attention:
    layers, heads, tokens = 2, 3, 6
    rng = np.random.default_rng(0)
    weights = rng.random((layers, heads, tokens, tokens))
    layer, head = strong_previous
    weights[layer, head] = np.eye(tokens, k=-1) * 10 + 0.01  # all weight on the previous token
    weights /= weights.sum(-1, keepdims=True)
    return _Attention(weights, [True, False, False, False, False, True])


def test_offset_head_finds_the_previous_token_head():
    layer, head, weight = lesson00.offset_head(_result((1, 2)), offset=-1)
    assert (layer, head) == (1, 2) and weight > 0.9


def test_offset_head_needs_two_word_pieces():
    short = _Attention(np.ones((1, 1, 3, 3)) / 3, [True, False, True])
    with pytest.raises(ValueError, match="too short"):
        lesson00.offset_head(short)


def test_chance_loss_is_log_vocabulary():
    assert lesson00.chance_loss(8192) == pytest.approx(math.log(8192))


@dataclass
class _Guess:
    token: str
    probability: float


@dataclass
class _FillMask:
    text: str
    guesses: list[list[_Guess]]


def test_guesses_table_has_a_row_per_sentence_and_a_column_per_model():
    before = [
        _FillMask("a [MASK] b", [[_Guess("<x>", 0.001)]]),
        _FillMask("c", [[_Guess("y", 0.5)]]),
    ]
    after = [_FillMask("a [MASK] b", [[_Guess("the", 0.2)]]), _FillMask("c", [[_Guess("z", 0.9)]])]
    html = lesson00.guesses_table({"random": before, "trained": after})
    assert html.count("<tr>") == 3 and "&lt;x&gt;" in html and "<b>the</b> 20%" in html


def test_lesson_map_reads_the_notebooks(tmp_path):
    (tmp_path / "00-tour.py").write_text("# %% [markdown]\n# # Lesson 00 · A tour\n")
    (tmp_path / "01-tokenization.py").write_text("# %% [markdown]\n# # Tokens\n")
    (tmp_path / "notes.py").write_text("")
    rows = lesson00.lesson_map(tmp_path)
    assert rows == [
        ("00", "A tour", "00-tour.ipynb"),
        ("01", "tokenization", "01-tokenization.ipynb"),
    ]
    table = lesson00.lesson_map_markdown(tmp_path)
    assert "| 00 | [A tour](00-tour.ipynb) |" in table


def test_the_real_map_lists_every_notebook():
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    rows = lesson00.lesson_map(notebooks)
    assert [r[0] for r in rows] == sorted(p.name[:2] for p in notebooks.glob("[0-9][0-9]-*.py"))
    assert all(not title.islower() for _, title, _ in rows), (
        "each lesson has a '# Lesson NN · ' title"
    )


def test_untrained_twin_has_the_architecture_and_fresh_weights():
    inspect = pytest.importorskip("minibert.inspect")
    import torch

    from minibert.config import BertConfig
    from minibert.data.tokenizer import train_wordpiece
    from minibert.heads import BertForMaskedLM

    tokenizer = train_wordpiece(["the cat sat on the mat"] * 20, vocab_size=64, min_frequency=1)
    config = BertConfig.preset("tiny", vocab_size=len(tokenizer))
    torch.manual_seed(123)  # not the twin's seed, whatever ran before
    trained = inspect.load_model(BertForMaskedLM(config), tokenizer=tokenizer)
    twin = lesson00.untrained_twin(trained)
    assert twin.config.to_dict() == trained.config.to_dict() and twin.tokenizer is tokenizer
    first = next(twin.model.parameters())
    assert not torch.equal(first, next(trained.model.parameters()))
    assert torch.equal(first, next(lesson00.untrained_twin(trained).model.parameters()))  # seeded
