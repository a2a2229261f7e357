"""What each cleaning step did (:class:`StepReport`) and what a corpus looks like (:class:`CorpusStats`).

Both are plain dataclasses that print as a small text table (``str(x)`` / ``x.to_table()``) and
turn into JSON-ready dicts (``x.to_dict()``), so a lesson can show "before/after" for every
filter and a run directory can keep the numbers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from minibert.data.text import split_sentences

__all__ = [
    "CorpusStats",
    "RemovedExample",
    "compare_stats",
    "StepReport",
    "count_words",
    "format_reports",
    "word_tokens",
]

SNIPPET_CHARS = 160

# A "word" for statistics: a run of letters/digits, with inner apostrophes or hyphens
# ("don't", "well-known"). Punctuation is not a word, so "philosophy." and "philosophy"
# count as the same type. (The quality filters use whitespace-separated words instead,
# as Gopher's rules do; see minibert.data.filters.)
_WORD = re.compile(r"\w+(?:['\u2019\-]\w+)*")


def word_tokens(text: str) -> list[str]:
    """The statistics' notion of words in ``text`` (see ``_WORD``), case preserved."""
    return _WORD.findall(text)


def count_words(text: str) -> int:
    """``len(word_tokens(text))`` without building the list."""
    return sum(1 for _ in _WORD.finditer(text))


def snippet(text: str, limit: int = SNIPPET_CHARS) -> str:
    """The first ``limit`` characters of ``text`` on one line, with an ellipsis if cut."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


@dataclass
class RemovedExample:
    """One removed document or part of one, kept so a reader can see what a rule catches."""

    reason: str
    doc_id: str
    snippet: str
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class StepReport:
    """What one cleaning step kept and removed.

    ``reason_counts`` counts removed *documents* per reason, so its values sum to
    ``docs_removed``. Steps that edit documents rather than drop them (line filters, citation
    markers) count what they cut in ``edit_counts`` (e.g. ``{"lines": 312}``) and the kept
    documents they touched in ``docs_changed``. ``bytes_removed`` is the drop in UTF-8 bytes
    over the whole step (documents dropped plus text cut from kept ones).
    """

    name: str
    docs_in: int
    docs_out: int
    bytes_in: int
    bytes_out: int
    reason_counts: dict[str, int] = field(default_factory=dict)
    edit_counts: dict[str, int] = field(default_factory=dict)
    docs_changed: int = 0
    examples: list[RemovedExample] = field(default_factory=list)
    description: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.docs_out > self.docs_in:
            raise ValueError(
                f"step {self.name!r}: docs_out={self.docs_out} > docs_in={self.docs_in}"
            )
        if sum(self.reason_counts.values()) != self.docs_in - self.docs_out:
            raise ValueError(
                f"step {self.name!r}: reason counts {self.reason_counts} do not add up to the "
                f"{self.docs_in - self.docs_out} documents removed"
            )

    @property
    def docs_removed(self) -> int:
        return self.docs_in - self.docs_out

    @property
    def bytes_removed(self) -> int:
        return self.bytes_in - self.bytes_out

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "docs_in": self.docs_in,
            "docs_out": self.docs_out,
            "docs_removed": self.docs_removed,
            "docs_changed": self.docs_changed,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "bytes_removed": self.bytes_removed,
            "reason_counts": dict(self.reason_counts),
            "edit_counts": dict(self.edit_counts),
            "examples": [example.to_dict() for example in self.examples],
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StepReport:
        return cls(
            name=data["name"],
            docs_in=data["docs_in"],
            docs_out=data["docs_out"],
            bytes_in=data["bytes_in"],
            bytes_out=data["bytes_out"],
            reason_counts=dict(data.get("reason_counts", {})),
            edit_counts=dict(data.get("edit_counts", {})),
            docs_changed=data.get("docs_changed", 0),
            examples=[RemovedExample(**example) for example in data.get("examples", [])],
            description=data.get("description", ""),
            seconds=data.get("seconds", 0.0),
        )

    def to_table(self) -> str:
        rows = [
            ("step", self.name),
            ("documents in -> out", f"{self.docs_in} -> {self.docs_out} (-{self.docs_removed})"),
            ("documents changed", str(self.docs_changed)),
            ("bytes removed", f"{self.bytes_removed:,} of {self.bytes_in:,}"),
        ]
        rows += [
            (f"  removed: {reason}", str(count)) for reason, count in self.reason_counts.items()
        ]
        rows += [(f"  cut: {kind}", str(count)) for kind, count in self.edit_counts.items()]
        text = _two_columns(rows)
        if self.examples:
            text += "\nexamples:\n" + "\n".join(
                f"  [{ex.reason}] {ex.doc_id}: {ex.snippet}"
                + (f"  ({ex.detail})" if ex.detail else "")
                for ex in self.examples
            )
        return text

    def __str__(self) -> str:
        return self.to_table()


def format_reports(reports: Sequence[StepReport], max_what: int = 5) -> str:
    """All steps as one table, a row per step: the "before/after" view of a cleaning run.

    The last column lists removal reasons and cut counts, largest ``max_what`` first.
    """
    header = ("step", "docs in", "docs out", "removed", "changed", "bytes removed", "what")
    rows = []
    for report in reports:
        what = {**report.reason_counts, **{f"{k} cut": v for k, v in report.edit_counts.items()}}
        rows.append(
            (
                report.name,
                str(report.docs_in),
                str(report.docs_out),
                str(report.docs_removed),
                str(report.docs_changed),
                f"{report.bytes_removed:,}",
                _top_items(what, max_what),
            )
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(w) for cell, w in zip(row[1:-1], widths[1:], strict=True)
        ]
        lines.append("  ".join([*cells, row[-1]]))
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@dataclass
class CorpusStats:
    """Size and shape of a corpus: counts, type/token ratio and length histograms.

    Words are :func:`word_tokens` (punctuation excluded); types are distinct lower-cased words.
    The type/token ratio falls as a corpus grows (Heaps' law), so compare it only between
    corpora of similar size. Histograms are ``{"bin_edges": [...], "counts": [...]}`` with
    ``len(bin_edges) == len(counts) + 1``, ready for ``plt.stairs`` or a plotly bar chart.
    """

    documents: int
    sentences: int
    words: int
    characters: int
    bytes: int
    types: int
    type_token_ratio: float
    words_per_document: dict[str, float]
    words_per_sentence: dict[str, float]
    document_length_histogram: dict[str, list[float]]
    sentence_length_histogram: dict[str, list[float]]

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Any],
        *,
        sentences: Sequence[Sequence[str]] | None = None,
        bins: int = 20,
    ) -> CorpusStats:
        """Measure ``documents`` (objects with a ``.text``, or plain strings).

        ``sentences`` (one list per document) skips re-splitting when the caller already has
        them; otherwise :func:`~minibert.data.text.split_sentences` is used.
        """
        texts = [doc if isinstance(doc, str) else doc.text for doc in documents]
        if sentences is not None and len(sentences) != len(texts):
            raise ValueError(
                f"got sentences for {len(sentences)} documents but {len(texts)} documents; "
                "pass one list of sentences per document"
            )
        types: Counter[str] = Counter()
        doc_lengths: list[int] = []
        sentence_lengths: list[int] = []
        for i, text in enumerate(texts):
            words = word_tokens(text)
            types.update(word.lower() for word in words)
            doc_lengths.append(len(words))
            doc_sentences = sentences[i] if sentences is not None else split_sentences(text)
            sentence_lengths.extend(count_words(sentence) for sentence in doc_sentences)
        n_words = sum(doc_lengths)
        return cls(
            documents=len(texts),
            sentences=len(sentence_lengths),
            words=n_words,
            characters=sum(len(text) for text in texts),
            bytes=sum(len(text.encode("utf-8")) for text in texts),
            types=len(types),
            type_token_ratio=len(types) / n_words if n_words else 0.0,
            words_per_document=_summary(doc_lengths),
            words_per_sentence=_summary(sentence_lengths),
            document_length_histogram=_histogram(doc_lengths, bins),
            sentence_length_histogram=_histogram(sentence_lengths, bins),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CorpusStats:
        return cls(**data)

    def to_table(self) -> str:
        per_doc, per_sent = self.words_per_document, self.words_per_sentence
        rows = [
            ("documents", f"{self.documents:,}"),
            ("sentences", f"{self.sentences:,}"),
            ("words", f"{self.words:,}"),
            ("characters", f"{self.characters:,}"),
            ("bytes (UTF-8)", f"{self.bytes:,}"),
            ("types (distinct lower-cased words)", f"{self.types:,}"),
            ("type/token ratio", f"{self.type_token_ratio:.4f}"),
            (
                "words per document",
                f"mean {per_doc['mean']:.1f}, median {per_doc['median']:.0f}, "
                f"min {per_doc['min']:.0f}, max {per_doc['max']:.0f}",
            ),
            (
                "words per sentence",
                f"mean {per_sent['mean']:.1f}, median {per_sent['median']:.0f}, "
                f"min {per_sent['min']:.0f}, max {per_sent['max']:.0f}",
            ),
        ]
        return _two_columns(rows)

    def __str__(self) -> str:
        return self.to_table()


def compare_stats(
    before: CorpusStats, after: CorpusStats, labels: tuple[str, str] = ("before", "after")
) -> str:
    """Two :class:`CorpusStats` side by side with the relative change, as a text table."""
    names = ("documents", "sentences", "words", "characters", "bytes", "types")
    header = ("", labels[0], labels[1], "change")
    rows = [header]
    for name in names:
        a, b = getattr(before, name), getattr(after, name)
        change = f"{(b - a) / a:+.1%}" if a else "-"
        rows.append((name, f"{a:,}", f"{b:,}", change))
    rows.append(
        ("type/token ratio", f"{before.type_token_ratio:.4f}", f"{after.type_token_ratio:.4f}", "")
    )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
            ]
        ).rstrip()
        for row in rows
    )


def _summary(values: Sequence[int]) -> dict[str, float]:
    if not values:
        return {"mean": 0.0, "median": 0.0, "min": 0.0, "max": 0.0}
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(array.mean()),
        "median": float(np.median(array)),
        "min": float(array.min()),
        "max": float(array.max()),
    }


def _histogram(values: Sequence[int], bins: int) -> dict[str, list[float]]:
    if not values:
        return {"bin_edges": [], "counts": []}
    top = max(values)
    # Integer-aligned edges so every bin is a whole number of words wide.
    width = max(1, math.ceil((top + 1) / bins))
    edges = np.arange(0, width * bins + 1, width)  # exactly `bins` bins covering 0..top
    counts, edges = np.histogram(values, bins=edges)
    return {"bin_edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _top_items(counts: dict[str, int], limit: int) -> str:
    items = sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: -kv[1])
    text = ", ".join(f"{k}={v:,}" for k, v in items[:limit])
    if len(items) > limit:
        text += f", ... (+{len(items) - limit} more)"
    return text or "-"


def _two_columns(rows: Sequence[tuple[str, str]]) -> str:
    width = max(len(key) for key, _ in rows)
    return "\n".join(f"{key.ljust(width)}  {value}" for key, value in rows)
