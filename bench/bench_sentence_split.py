"""Time sentence splitting on one very long line: the linear splitter against the old one.

    python bench/bench_sentence_split.py                      # 50 MB new, 1.6 MB old
    python bench/bench_sentence_split.py --mb 5 --old-mb 0.4  # a quick check

The text is real prose: the wiki-sample articles (gensim's Wikipedia excerpt, parsed to plain
text), every line joined onto one line with spaces and repeated until the line is ``--mb``
megabytes. ``minibert.data.text.split_sentences`` splits it; the old splitter, kept below as
:func:`old_split_line` (the quadratic version replaced in issue 13, point 4), splits a
``--old-mb`` line, and both are also timed on the same small line so the figures compare. The
issue's target: 50 MB in under 60 s (the old splitter: 3.5 s for 1.6 MB, and it grows with the
square of the length, so about an hour for 50 MB).
"""

from __future__ import annotations

import argparse
import re
import time

from minibert.data import text as text_module
from minibert.data.corpora import load_corpus
from minibert.data.text import split_sentences

# --------------------------------------------------------------------------------------------
# REFERENCE ONLY: the old, quadratic splitter (minibert/data/text.py before issue 13, point 4).
# It slices the rest of the line (``line[match.end():]``) and splits it at every candidate
# boundary, so each full stop costs time proportional to everything after it. Its abbreviation
# rules are the library's (same word lists), so its sentences equal the new splitter's.
# --------------------------------------------------------------------------------------------

_OLD_BOUNDARY = re.compile(r"([.!?]+|\u2026)([\"'\u2019\u201d\u00bb)\]]*)\s+")


def old_split_line(line: str) -> list[str]:
    """The old ``_split_line``: correct, but quadratic in the line length."""
    pieces: list[str] = []
    start = 0
    for match in _OLD_BOUNDARY.finditer(line):
        following = line[match.end() :]
        if not following:
            break
        if _old_ends_sentence(line, match, following):
            piece = line[start : match.start(2) + len(match.group(2))].strip()
            if piece:
                pieces.append(piece)
            start = match.end()
    rest = line[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _old_ends_sentence(line: str, match: re.Match[str], following: str) -> bool:
    t = text_module
    terminators = match.group(1)
    next_word = following.split(maxsplit=1)[0]
    first = next_word.lstrip(t._OPENING_PUNCTUATION)[:1]
    if not first or not (first.isupper() or first.isdigit()):
        return False
    if "!" in terminators or "?" in terminators:
        return True
    if terminators in ("...", "\u2026") or len(terminators) > 1:
        return True
    word_start = line.rfind(" ", 0, match.start(1)) + 1
    word = line[word_start : match.start(1)].lstrip(t._OPENING_PUNCTUATION)
    if not word or match.group(2):
        return True
    key = word.lower()
    opener = next_word.lstrip(t._OPENING_PUNCTUATION).lower() in t._SENTENCE_OPENERS
    if key in t._NEVER_FINAL:
        return key == "no" and not first.isdigit()
    if key in t._SOMETIMES_FINAL:
        return opener and not first.isdigit()
    if len(word) == 1 and word.isalpha() and word.isupper():
        return opener
    if t._DOTTED_ACRONYM.match(word + "."):
        return opener
    return True


def old_split_sentences(text: str) -> list[str]:
    """The old ``split_sentences`` (newlines are hard boundaries), on :func:`old_split_line`."""
    return [s for line in text.split("\n") if line.strip() for s in old_split_line(line.strip())]


# --------------------------------------------------------------------------------------------


def one_line_of_prose(megabytes: float) -> str:
    """Real wiki-sample prose joined onto one line and repeated to ``megabytes`` (UTF-8 ~ chars)."""
    documents = load_corpus("wiki-sample")
    base = " ".join(
        line.strip() for doc in documents for line in doc.text.split("\n") if line.strip()
    )
    target = int(megabytes * 1_000_000)
    line = " ".join([base] * (target // (len(base) + 1) + 1))
    return line[:target]


def _time(function, text: str) -> tuple[float, list[str]]:
    started = time.perf_counter()
    sentences = function(text)
    return time.perf_counter() - started, sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=50.0, help="new splitter's line (MB)")
    parser.add_argument("--old-mb", type=float, default=1.6, help="old splitter's line (MB)")
    args = parser.parse_args()

    small = one_line_of_prose(args.old_mb)
    old_seconds, old_sentences = _time(old_split_sentences, small)
    new_small_seconds, new_sentences = _time(split_sentences, small)
    if old_sentences != new_sentences:
        raise SystemExit("the splitters disagree on the small line: that is a bug in the new one")
    old_count = new_small_count = len(new_sentences)
    print(f"{'splitter':<10} {'line MB':>8} {'sentences':>10} {'seconds':>9} {'MB/s':>7}")
    for name, mb, count, seconds in (
        ("old", args.old_mb, old_count, old_seconds),
        ("new", args.old_mb, new_small_count, new_small_seconds),
    ):
        print(f"{name:<10} {mb:>8.2f} {count:>10,} {seconds:>9.2f} {mb / seconds:>7.2f}")
    big = one_line_of_prose(args.mb)
    seconds, sentences = _time(split_sentences, big)
    count = len(sentences)
    print(f"{'new':<10} {args.mb:>8.2f} {count:>10,} {seconds:>9.2f} {args.mb / seconds:>7.2f}")
    print(
        f"\nold splitter on {args.old_mb} MB: {old_seconds:.2f} s; new on {args.mb} MB: "
        f"{seconds:.2f} s (target for 50 MB: under 60 s)"
    )


if __name__ == "__main__":
    main()
