"""Lesson 08 (token tagging): the references agree with the library (encode_token_task's
alignment, seqeval's entities and scores), and the notebook's helpers do what they say.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import json
import random

import pytest

from minibert.data.corpora import load_corpus
from minibert.data.tasks import TokenExample, encode_token_task, words_with_spans
from minibert.data.tokenizer import train_wordpiece
from minibert.lessons import lesson08
from minibert.lessons.checking import get_exercise, run_check
from minibert.train.metrics import entity_metrics

TAGSET = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MENTION", "I-MENTION"]


@pytest.fixture(scope="module")
def tokenizer():
    texts = [doc.text for doc in load_corpus("lee-news")]
    return train_wordpiece(texts[:200], vocab_size=600)  # small: many words split into pieces


def test_alignment_reference_matches_encode_token_task(tokenizer):
    rng = random.Random(0)
    texts = [doc.text for doc in load_corpus("lee-news")][200:240]
    examples = []
    for i, text in enumerate(texts):
        words = tuple(w for w, _, _ in words_with_spans(text))[:80]
        examples.append(TokenExample(words, tuple(rng.randrange(3) for _ in words), id=str(i)))
    for max_len in (128, 32):  # 32 truncates most sentences
        encoded = encode_token_task(examples, tokenizer, max_seq_len=max_len)
        split_words = 0
        for i, example in enumerate(examples):
            word_ids = tokenizer(
                list(example.words), is_split_into_words=True, truncation=True, max_length=max_len
            ).word_ids()
            split_words += len(word_ids) - len({w for w in word_ids if w is not None}) - 2
            assert (
                lesson08.solution_align_labels(word_ids, list(example.tags))
                == (encoded["labels"][i])
            )
        assert split_words > 50  # the comparison exercised continuation pieces


def test_bio_spans_match_seqeval():
    from seqeval.metrics.sequence_labeling import get_entities

    rng = random.Random(1)
    for _ in range(2000):
        tags = [rng.choice(TAGSET) for _ in range(rng.randint(0, 12))]
        expected = sorted((kind, start, end + 1) for kind, start, end in get_entities(tags))
        assert sorted(lesson08.solution_bio_spans(tags)) == expected, tags


def test_entity_prf_matches_entity_metrics():
    rng = random.Random(2)
    for _ in range(300):
        n = rng.randint(1, 6)
        gold = [[rng.choice(TAGSET) for _ in range(8)] for _ in range(n)]
        predicted = [[rng.choice(TAGSET) for _ in range(8)] for _ in range(n)]
        p, r, f1 = lesson08.solution_entity_prf(
            [lesson08.solution_bio_spans(t) for t in gold],
            [lesson08.solution_bio_spans(t) for t in predicted],
        )
        reference = entity_metrics(gold, predicted)
        assert p == pytest.approx(reference["entity_precision"])
        assert r == pytest.approx(reference["entity_recall"])
        assert f1 == pytest.approx(reference["entity_f1"])


def test_the_checks_name_their_mistakes():
    ex = get_exercise("align_labels", "minibert.lessons.lesson08")
    outcome = run_check(ex, lesson08._align_off_by_one)
    assert outcome.mistake == "off by one: forgot the [CLS] at position 0"
    ex = get_exercise("entity_prf", "minibert.lessons.lesson08")
    assert run_check(ex, lesson08._prf_pooled_sentences).mistake == (
        "spans of different sentences pooled together"
    )


def test_show_alignment_marks_ignored_pieces(tokenizer):
    words = ["Unbelievably", "long", "words"]
    encoding = tokenizer(words, is_split_into_words=True)
    labels = lesson08.solution_align_labels(encoding.word_ids(), [1, 0, 0])
    html = lesson08.show_alignment(tokenizer, words, ["B-X", "O", "O"], labels)
    assert html.count("<td") == len(labels) and "-100" in html and "B-X" in html


def test_read_tag_predictions(tmp_path):
    lines = [
        {"split": "validation", "index": 0, "words": ["a"], "tags": ["O"], "predicted": ["O"]},
        {"split": "test", "index": 0, "words": ["b"], "tags": ["O"], "predicted": ["O"]},
    ]
    (tmp_path / "predictions.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    assert [r["words"] for r in lesson08.read_tag_predictions(tmp_path)] == [["a"]]
    assert [r["words"] for r in lesson08.read_tag_predictions(tmp_path, "test")] == [["b"]]
    with pytest.raises(FileNotFoundError, match="predictions.jsonl"):
        lesson08.read_tag_predictions(tmp_path / "nothing")


def test_tagged_sentence_html_colours():
    words = ["Anne", "Smith", "met", "Bob", "in", "Paris"]
    gold = [("PER", 0, 2), ("PER", 3, 4), ("LOC", 5, 6)]
    predicted = [("PER", 0, 2), ("LOC", 4, 6)]
    html = lesson08.tagged_sentence_html(words, gold, predicted)
    assert 'title="both">Anne Smith' in html
    assert 'title="gold">Bob' in html
    assert 'title="predicted">in Paris' in html
    assert "met" in html
    assert "gold only" in lesson08.legend_html()


def test_conll_fails_fast_offline(monkeypatch):
    from minibert.data.corpora import HubUnavailableError
    from minibert.data.tasks import load_task

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(HubUnavailableError, match="wiki-mentions"):
        load_task("conll2003")
