"""Lesson 08, fine-tuning for token tagging: the exercises (aligning word labels to WordPiece
pieces, BIO tags to entity spans, entity-level precision / recall / F1) and the helpers the
notebook uses to look at a tagger's predictions.

Token tagging as BERT does it (Devlin et al. 2019, Sec. 5.3): each word's tag is predicted from
the final vector of its *first* WordPiece; continuation pieces and the special tokens get the
label -100, which the cross-entropy ignores. Scores are counted per *entity* (a maximal span of
B-/I- tags), as in the CoNLL-2003 shared task's ``conlleval`` script (Tjong Kim Sang & De
Meulder 2003) and its Python port ``seqeval``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from minibert.constants import IGNORE_INDEX
from minibert.lessons.checking import Mistake, Report, exercise

# --------------------------------------------------------------------------------------------
# Exercise 1: align word labels to pieces
# --------------------------------------------------------------------------------------------


def solution_align_labels(word_ids, word_labels):
    labels = []
    previous = None
    for word in word_ids:  # one entry per piece: a word index, or None for [CLS]/[SEP]/[PAD]
        if word is None:
            labels.append(-100)  # special tokens: ignored by the loss
        elif word != previous:
            labels.append(word_labels[word])  # the first piece of a word carries its label
        else:
            labels.append(-100)  # continuation pieces (##...) are ignored
        previous = word
    return labels


def _align_every_piece(word_ids, word_labels):
    return [-100 if word is None else word_labels[word] for word in word_ids]


def _align_label_specials(word_ids, word_labels):
    labels, previous = [], None
    for word in word_ids:
        if word is None:
            labels.append(0)  # [CLS] and [SEP] trained as "O"
        elif word != previous:
            labels.append(word_labels[word])
        else:
            labels.append(-100)
        previous = word
    return labels


def _align_off_by_one(word_ids, word_labels):
    # Forgot that [CLS] sits at position 0: every label lands one piece too early.
    correct = solution_align_labels(word_ids, word_labels)
    return correct[1:] + [-100]


def _align_last_piece(word_ids, word_labels):
    labels = []
    for position, word in enumerate(word_ids):
        following = word_ids[position + 1] if position + 1 < len(word_ids) else None
        if word is None or word == following:
            labels.append(-100)
        else:
            labels.append(word_labels[word])  # the *last* piece of each word
    return labels


ALIGN_CASES = [
    ([None, 0, 1, 2, None], [0, 1, 2], "one piece per word"),
    ([None, 0, 0, 0, 1, None], [1, 0], "a word of three pieces: un ##aff ##able"),
    ([None, 0, 1, 1, 2, 2, 2, 3, None], [0, 1, 2, 0], "several split words"),
    ([None, 0, 1, 1, None, None, None], [2, 1], "padding after [SEP]"),
    ([None, 0, 1, 2, 2, None], [1, 2, 2, 0], "truncated: the last word lost"),
]


@exercise(
    "align_labels",
    solution=solution_align_labels,
    mistakes={
        "labelled every piece of a word": Mistake(
            _align_every_piece,
            why="BERT (Sec. 5.3) predicts each word's tag from its *first* piece only; "
            "continuation pieces get -100, so a long word does not count several times in the "
            "loss and each word gets exactly one prediction.",
        ),
        "labelled the special tokens": Mistake(
            _align_label_specials,
            why="[CLS], [SEP] and [PAD] are not words: word_ids() gives None for them and they "
            "must get -100 (ignored), not the 'O' label.",
        ),
        "off by one: forgot the [CLS] at position 0": Mistake(
            _align_off_by_one,
            why="piece 0 is [CLS], so word 0 starts at piece 1. Walk the word_ids list and put "
            "each label at the position of its word's first piece, not at the word's index.",
        ),
        "labelled the last piece instead of the first": Mistake(
            _align_last_piece,
            why="the convention is the *first* piece (a new word starts where word_ids changes "
            "from the previous piece). Either choice can be trained, but the prediction code "
            "reads the first piece, so the two must agree.",
        ),
    },
)
def check_align_labels(fn: Callable[..., list[int]], report: Report) -> None:
    """Word-id lists with special tokens, split words, padding and truncation."""
    word_ids, word_labels, _ = ALIGN_CASES[0]
    got = report.call(word_ids, word_labels)
    if not isinstance(got, (list, tuple)) or len(got) != len(word_ids):
        report.fail(
            f"return one label per piece ({len(word_ids)} here, the length of word_ids), got "
            f"{got!r}"
        )
    for word_ids, word_labels, case in ALIGN_CASES:
        report.expect(word_ids, word_labels, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 2: BIO tags to entity spans
# --------------------------------------------------------------------------------------------


def solution_bio_spans(tags):
    spans = []
    kind, start = None, 0  # the entity being read (None: outside any entity)
    for position, tag in enumerate(list(tags) + ["O"]):  # a final "O" closes the last entity
        prefix, _, tag_kind = tag.partition("-")
        # An entity ends unless this tag continues it (I- of the same type).
        if kind is not None and not (prefix == "I" and tag_kind == kind):
            spans.append((kind, start, position))
            kind = None
        # B- starts an entity; so does an I- that continues nothing (conlleval's rule).
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = tag_kind, position
    return spans


def _spans_only_b_starts(tags):
    spans, kind, start = [], None, 0
    for position, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_kind = tag.partition("-")
        if kind is not None and not (prefix == "I" and tag_kind == kind):
            spans.append((kind, start, position))
            kind = None
        if prefix == "B":  # a stray I- is ignored
            kind, start = tag_kind, position
    return spans


def _spans_inclusive_end(tags):
    return [(kind, start, end - 1) for kind, start, end in solution_bio_spans(tags)]


def _spans_b_does_not_close(tags):
    spans, kind, start = [], None, 0
    for position, tag in enumerate(list(tags) + ["O"]):
        prefix, _, tag_kind = tag.partition("-")
        if kind is not None and not (prefix in ("B", "I") and tag_kind == kind):
            spans.append((kind, start, position))
            kind = None
        if kind is None and prefix in ("B", "I"):
            kind, start = tag_kind, position
    return spans


BIO_CASES = [
    (["O", "B-PER", "I-PER", "O", "B-LOC"], "two entities, one at the end"),
    (["B-ORG", "I-ORG", "I-ORG"], "one entity, the whole sentence"),
    (["B-PER", "B-PER", "O"], "two one-word entities side by side"),
    (["O", "I-MISC", "I-MISC", "O"], "an entity starting with I- (after O)"),
    (["B-PER", "I-LOC", "O"], "I- of another type: a new entity"),
    (["O", "O", "O"], "no entities"),
    ([], "an empty sentence"),
    (["B-MENTION", "I-MENTION", "B-MENTION", "O", "B-MENTION"], "the wiki-mention tags"),
]


@exercise(
    "bio_spans",
    solution=solution_bio_spans,
    mistakes={
        "a stray I- tag ignored (conlleval starts an entity there)": Mistake(
            _spans_only_b_starts,
            why="a model can predict I-X after O. conlleval and seqeval (default mode) read it "
            "as the start of an X entity; the scores in papers count it that way, so do the same.",
        ),
        "end inclusive (off by one)": Mistake(
            _spans_inclusive_end,
            why="use Python's convention: the span covers positions start .. end-1, so "
            "words[start:end] is the entity and a one-word entity has end = start + 1.",
        ),
        "B- does not close the previous entity": Mistake(
            _spans_b_does_not_close,
            why="B-PER B-PER is two people: a B- tag always starts a new entity, closing any "
            "open one, even of the same type.",
        ),
    },
)
def check_bio_spans(fn: Callable[[Sequence[str]], list[tuple[str, int, int]]], report: Report):
    """Tag sequences with entities at the edges, adjacent entities, stray I- tags, none."""
    got = report.call(["B-PER", "O"])
    if not isinstance(got, (list, tuple)):
        report.fail(f"return a list of (type, start, end) tuples, got {type(got).__name__}")
    for tags, case in BIO_CASES:
        report.expect(tags, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 3: entity-level precision, recall and F1
# --------------------------------------------------------------------------------------------


def solution_entity_prf(gold_spans, predicted_spans):
    # Tag each span with its sentence, so equal spans in different sentences stay different.
    gold = {(s, *span) for s, spans in enumerate(gold_spans) for span in spans}
    predicted = {(s, *span) for s, spans in enumerate(predicted_spans) for span in spans}
    correct = len(gold & predicted)  # exact match: same sentence, type, start and end
    precision = correct / len(predicted) if predicted else 0.0
    recall = correct / len(gold) if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _prf_swapped(gold_spans, predicted_spans):
    p, r, f = solution_entity_prf(gold_spans, predicted_spans)
    return r, p, f


def _prf_arithmetic_mean(gold_spans, predicted_spans):
    p, r, _ = solution_entity_prf(gold_spans, predicted_spans)
    return p, r, (p + r) / 2


def _prf_pooled_sentences(gold_spans, predicted_spans):
    gold = {span for spans in gold_spans for span in spans}
    predicted = {span for spans in predicted_spans for span in spans}
    correct = len(gold & predicted)
    p = correct / len(predicted) if predicted else 0.0
    r = correct / len(gold) if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def _prf_overlap_counts(gold_spans, predicted_spans):
    # Counts a predicted span as correct when it overlaps a gold span of the same type.
    correct = 0
    n_pred = sum(len(s) for s in predicted_spans)
    n_gold = sum(len(s) for s in gold_spans)
    for gold, predicted in zip(gold_spans, predicted_spans, strict=True):
        for kind, start, end in predicted:
            if any(k == kind and start < e and s < end for k, s, e in gold):
                correct += 1
    p = correct / n_pred if n_pred else 0.0
    r = min(correct, n_gold) / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


PRF_CASES = [
    (
        [[("PER", 0, 2), ("LOC", 4, 5)], [("ORG", 1, 3)]],
        [[("PER", 0, 2)], [("ORG", 1, 3), ("PER", 5, 6)]],
        "two sentences, one miss, one false alarm",
    ),
    (
        [[("PER", 0, 2)], [("LOC", 3, 4)]],
        [[("PER", 0, 1)], [("LOC", 3, 4)]],
        "a span one word short",
    ),
    (
        [[("M", 0, 1)], [("M", 2, 3)]],
        [[("M", 2, 3)], [("M", 0, 1)]],
        "the same spans, in the other sentence",
    ),
    ([[("PER", 0, 1)], []], [[], []], "nothing predicted"),
    ([[], []], [[], []], "no entities at all"),
    (
        [[("PER", 0, 2), ("ORG", 3, 4), ("LOC", 6, 8)]],
        [[("PER", 0, 2), ("ORG", 3, 5)]],
        "a longer sentence",
    ),
]


@exercise(
    "entity_prf",
    solution=solution_entity_prf,
    mistakes={
        "precision and recall swapped": Mistake(
            _prf_swapped,
            why="precision divides the correct spans by the *predicted* ones (how many of the "
            "model's entities are right); recall by the *gold* ones (how many real entities "
            "the model found).",
        ),
        "F1 as the arithmetic mean": Mistake(
            _prf_arithmetic_mean,
            why="F1 is the harmonic mean, 2PR / (P + R): it is pulled towards the smaller of "
            "the two, so a model cannot buy a high F1 with recall alone.",
        ),
        "spans of different sentences pooled together": Mistake(
            _prf_pooled_sentences,
            why="(type, start, end) repeats across sentences; add the sentence index to each "
            "span before comparing sets, or a span in sentence 2 'matches' one in sentence 1.",
        ),
        "overlapping spans counted as correct": Mistake(
            _prf_overlap_counts,
            why="entity-level scoring is exact match: the same type, start *and* end. A span "
            "one word short is both a false positive and a miss.",
        ),
    },
)
def check_entity_prf(fn: Callable[..., tuple[float, float, float]], report: Report) -> None:
    """Two-sentence span lists: misses, false alarms, boundary errors, empty predictions."""
    got = report.call(*PRF_CASES[0][:2])
    if not isinstance(got, (tuple, list)) or len(got) != 3:
        report.fail(f"return three numbers (precision, recall, f1), got {got!r}")
    for gold, predicted, case in PRF_CASES:
        report.expect(gold, predicted, case=case)


# --------------------------------------------------------------------------------------------
# Helpers the notebook calls
# --------------------------------------------------------------------------------------------


def show_alignment(
    tokenizer: Any, words: Sequence[str], tags: Sequence[str], labels: Sequence[int]
):
    """An HTML table: each piece, the word it came from, and its training label."""
    encoding = tokenizer(list(words), is_split_into_words=True)
    pieces = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    word_ids = encoding.word_ids()
    cells = []
    for piece, word, label in zip(pieces, word_ids, labels, strict=True):
        colour = "#eeeeee" if label == IGNORE_INDEX else "#d1f0d1"
        word_text = "" if word is None else html.escape(f"{word}: {words[word]}")
        tag = "-100" if label == IGNORE_INDEX else html.escape(tags[word])
        cells.append(
            f'<td style="background:{colour};padding:2px 6px;text-align:center;'
            f'font-family:monospace">{html.escape(piece)}<br><small>{word_text}</small>'
            f"<br><b>{tag}</b></td>"
        )
    return (
        '<div style="overflow-x:auto"><table style="border-collapse:separate;border-spacing:2px">'
        "<tr>" + "".join(cells) + "</tr></table></div>"
    )


def read_tag_predictions(run_dir: str | Path, split: str = "validation") -> list[dict[str, Any]]:
    """The tagged sentences of a fine-tuning run's ``predictions.jsonl`` for one split: each a
    dict with ``words``, gold ``tags`` and ``predicted`` tags (tag names)."""
    path = Path(run_dir) / "predictions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: is {run_dir} a finished token-tagging fine-tuning run?"
        )
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("split") == split and "predicted" in record:
                records.append(record)
    return records


_SPAN_COLOURS = {"gold": "#cfe2ff", "both": "#b7e4c7", "predicted": "#ffd6a5"}


def tagged_sentence_html(words: Sequence[str], gold_spans, predicted_spans) -> str:
    """One sentence with its gold and predicted entities highlighted: green where both agree
    exactly, blue for a gold entity the model missed, orange for a predicted one that is wrong."""
    gold = {(s, e) for _, s, e in gold_spans}
    predicted = {(s, e) for _, s, e in predicted_spans}
    marks: dict[int, tuple[int, str]] = {}
    for start, end in gold | predicted:
        kind = (
            "both"
            if (start, end) in gold and (start, end) in predicted
            else ("gold" if (start, end) in gold else "predicted")
        )
        if start not in marks or kind == "both":
            marks[start] = (end, kind)
    out, position = [], 0
    while position < len(words):
        if position in marks:
            end, kind = marks[position]
            text = html.escape(" ".join(words[position:end]))
            out.append(
                f'<span style="background:{_SPAN_COLOURS[kind]};border-radius:3px;'
                f'padding:0 2px" title="{kind}">{text}</span>'
            )
            position = max(end, position + 1)
        else:
            out.append(html.escape(words[position]))
            position += 1
    return f'<p style="line-height:1.8">{" ".join(out)}</p>'


def legend_html() -> str:
    items = {
        "both": "gold and predicted (correct)",
        "gold": "gold only (missed)",
        "predicted": "predicted only (wrong)",
    }
    return " ".join(
        f'<span style="background:{_SPAN_COLOURS[k]};padding:0 4px;border-radius:3px">{v}</span>'
        for k, v in items.items()
    )
