"""Clean a corpus of plain-text documents, step by step, reporting what every step removed.

The chain (each step a :class:`~minibert.data.stats.StepReport`), in order:

1. ``normalize`` -- Unicode NFKC (or the configured form) and whitespace tidying
   (:func:`~minibert.data.text.normalize_text`).
2. Length caps, this project's guard against input that is not prose (and would slow every
   later step down): ``document_too_long`` (more than 1,000,000 characters) and ``long_lines``
   (lines of more than 20,000 characters); :mod:`minibert.data.filters` says why those numbers.
3. Line rules from C4 (Raffel et al. 2020, §2.2), which edit documents: ``citation_markers``,
   ``boilerplate_lines``, ``terminal_punctuation``, ``short_lines``.
4. Document rules from C4 §2.2 and Gopher (Rae et al. 2021, App. A.1), one step each, named
   after the rule function in :mod:`minibert.data.filters` (``too_few_words``, ...).
5. ``exact_dedup`` and ``near_dedup`` (MinHash LSH), from :mod:`minibert.data.dedup`.

Any rule is switched off by setting its threshold to ``None`` (or its flag to ``False``) in
:class:`CleaningConfig`. Wikitext-to-plain-text is not done here: the pipeline runs
:func:`minibert.data.wikitext.parse_wikitext` first and reports it as its own step.

    >>> cleaned = clean_corpus(documents, CleaningConfig(min_words=30))
    >>> print(format_reports(cleaned.reports))
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

from minibert.data import dedup, filters
from minibert.data.filters import TextFeatures
from minibert.data.stats import (
    CorpusStats,
    RemovedExample,
    StepReport,
    compare_stats,
    format_reports,
    snippet,
)
from minibert.data.text import NORMALIZATION_FORMS, normalize_text, split_sentences

__all__ = [
    "CleanedCorpus",
    "CleaningConfig",
    "CorpusStats",
    "StepReport",
    "clean_corpus",
    "compare_stats",
    "format_reports",
    "normalize_text",
    "split_sentences",
]

logger = logging.getLogger(__name__)

_MANY_NEWLINES = re.compile(r"\n{3,}")


@dataclass
class CleaningConfig:
    """Every threshold of the cleaning chain. Defaults are the published C4/Gopher values.

    ``None`` switches a rule off. Sources: C4 = Raffel et al. 2020 §2.2; Gopher = Rae et al.
    2021 App. A.1.1 (quality) and A.1.2 (repetition); near-dedup threshold 0.8 as in Gopher
    App. A.1.3.
    """

    normalization: str | None = "NFKC"  # Unicode form; see minibert.data.text for NFC vs NFKC
    # length caps (this project's; measured reasons in minibert.data.filters' docstring)
    max_document_chars: int | None = 1_000_000  # > Gopher's 100,000 words (~630k characters)
    max_line_chars: int | None = 20_000  # > 5x the longest real line (3,832) in the corpora
    # line rules (C4)
    remove_citation_markers: bool = True
    drop_boilerplate_lines: bool = True
    require_terminal_punctuation: bool = True
    min_words_per_line: int | None = 3
    # document rules
    min_sentences: int | None = 5  # C4
    min_words: int | None = 50  # Gopher
    max_words: int | None = 100_000  # Gopher
    min_mean_word_length: float | None = 3.0  # Gopher
    max_mean_word_length: float | None = 10.0  # Gopher
    max_symbol_ratio: float | None = 0.1  # Gopher: "#" and ellipses per word
    max_digit_ratio: float | None = 0.2  # this project's rule
    min_alphabetic_word_ratio: float | None = 0.8  # Gopher
    min_stop_words: int | None = 2  # Gopher
    max_bullet_line_ratio: float | None = 0.9  # Gopher
    max_ellipsis_line_ratio: float | None = 0.3  # Gopher
    max_duplicate_line_ratio: float | None = 0.3  # Gopher repetition
    drop_lorem_ipsum: bool = True  # C4
    drop_curly_brackets: bool = True  # C4
    # deduplication
    exact_dedup: bool = True
    near_dedup: bool = True
    near_dup_threshold: float = 0.8  # estimated Jaccard of word shingles
    num_perm: int = 128  # MinHash permutations
    shingle_size: int = 5  # words per shingle
    minhash_seed: int = 1
    # reporting
    max_examples: int = 3  # removed snippets kept per reason

    def __post_init__(self) -> None:
        if self.normalization is not None and self.normalization not in NORMALIZATION_FORMS:
            raise ValueError(
                f"normalization={self.normalization!r} is not a Unicode normal form; "
                f"use one of {NORMALIZATION_FORMS} or None"
            )
        for name in (
            "max_document_chars",
            "max_line_chars",
            "min_words_per_line",
            "min_sentences",
            "min_words",
            "max_words",
            "min_stop_words",
            "max_examples",
        ):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
        for name in (
            "max_symbol_ratio",
            "max_digit_ratio",
            "min_alphabetic_word_ratio",
            "max_bullet_line_ratio",
            "max_ellipsis_line_ratio",
            "max_duplicate_line_ratio",
        ):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:  # also False for NaN
                raise ValueError(f"{name} is a fraction in [0, 1] (or None), got {value!r}")
        for name in ("min_mean_word_length", "max_mean_word_length"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)  # NaN would pass every comparison below
                or value < 0
            ):
                raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
        if (
            self.min_words is not None
            and self.max_words is not None
            and self.min_words > self.max_words
        ):
            raise ValueError(
                f"min_words={self.min_words} is larger than max_words={self.max_words}"
            )
        for name in ("num_perm", "shingle_size", "minhash_seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if not 0.0 < self.near_dup_threshold <= 1.0:
            raise ValueError(f"near_dup_threshold must be in (0, 1], got {self.near_dup_threshold}")
        if self.num_perm < 16:
            raise ValueError(f"num_perm={self.num_perm} is too small; use >= 16 (128 is usual)")
        if self.shingle_size < 1:
            raise ValueError(f"shingle_size must be >= 1, got {self.shingle_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CleaningConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown CleaningConfig fields {unknown}; known fields: {sorted(known)}"
            )
        return cls(**data)


@dataclass
class CleanedCorpus:
    """The kept documents (same type as the input) and one report per step, in order."""

    documents: list[Any]
    reports: list[StepReport] = field(default_factory=list)

    def report_table(self) -> str:
        return format_reports(self.reports)

    def __len__(self) -> int:
        return len(self.documents)


def clean_corpus(
    documents: Sequence[Any], config: CleaningConfig | None = None, *, progress: bool = False
) -> CleanedCorpus:
    """Run the cleaning chain over ``documents`` and return what was kept, with reports.

    ``documents`` are objects with ``id`` and ``text`` (``minibert.data.corpora.Document``; any
    dataclass works and is copied with ``dataclasses.replace``) or plain strings. The input is
    not modified.
    """
    config = config or CleaningConfig()
    if not isinstance(config, CleaningConfig):
        raise TypeError(f"config must be a CleaningConfig, got {type(config).__name__}")
    docs = list(documents)
    for i, doc in enumerate(docs[:1]):
        if not isinstance(doc, str) and not isinstance(getattr(doc, "text", None), str):
            raise TypeError(
                f"document {i} has no str .text (got {type(doc).__name__}); pass Documents or strings"
            )
    steps = _build_steps(config)
    reports: list[StepReport] = []
    items = [_Item(doc, _doc_id(doc, i)) for i, doc in enumerate(docs)]
    bar = _progress(len(steps), progress)
    for name, run in steps:
        start = time.perf_counter()
        items, report = run(items)
        report.seconds = time.perf_counter() - start
        reports.append(report)
        logger.debug("cleaning step %s: %d -> %d documents", name, report.docs_in, report.docs_out)
        if bar is not None:
            bar.set_postfix_str(name)
            bar.update(1)
    if bar is not None:
        bar.close()
    return CleanedCorpus(documents=[item.doc for item in items], reports=reports)


# --- the steps ----------------------------------------------------------------------------


class _Item:
    """A document travelling through the chain with its id and (lazily) its features."""

    __slots__ = ("doc", "doc_id", "_features")

    def __init__(self, doc: Any, doc_id: str) -> None:
        self.doc = doc
        self.doc_id = doc_id
        self._features: TextFeatures | None = None

    @property
    def text(self) -> str:
        return self.doc if isinstance(self.doc, str) else self.doc.text

    @property
    def features(self) -> TextFeatures:
        if self._features is None:
            self._features = TextFeatures(self.text)
        return self._features

    def with_text(self, text: str) -> _Item:
        doc = text if isinstance(self.doc, str) else dataclasses.replace(self.doc, text=text)
        return _Item(doc, self.doc_id)


StepFunction = Callable[[list[_Item]], "tuple[list[_Item], StepReport]"]


def _build_steps(config: CleaningConfig) -> list[tuple[str, StepFunction]]:
    c = config
    keep = c.max_examples
    steps: list[tuple[str, StepFunction]] = [
        ("normalize", partial(_normalize_step, form=c.normalization, max_examples=keep)),
    ]

    def line_step(
        name: str, description: str, edit: Callable[[str], tuple[str | None, list[str]]], unit: str
    ):
        steps.append(
            (
                name,
                partial(
                    _line_step,
                    name=name,
                    description=description,
                    edit=edit,
                    unit=unit,
                    max_examples=keep,
                ),
            )
        )

    def document_step(rule: Callable[..., str | None], source: str, **threshold: Any) -> None:
        if any(value is None for value in threshold.values()):
            return
        check = partial(rule, **threshold) if threshold else rule
        settings = ", ".join(f"{k}={v}" for k, v in threshold.items())
        description = f"{source}: {rule.__name__}" + (f" ({settings})" if settings else "")
        steps.append(
            (
                rule.__name__,
                partial(
                    _document_step,
                    name=rule.__name__,
                    description=description,
                    check=check,
                    max_examples=keep,
                ),
            )
        )

    # The length caps first: every later step then works on text of a bounded size.
    document_step(filters.document_too_long, "minibert length cap", max_chars=c.max_document_chars)
    if c.max_line_chars is not None:
        line_step(
            "long_lines",
            f"minibert length cap: drop lines of more than {c.max_line_chars:,} characters",
            _drop_if(partial(filters.line_is_too_long, max_chars=c.max_line_chars)),
            "lines",
        )
    if c.remove_citation_markers:
        line_step(
            "citation_markers",
            "C4 §2.2: remove citation markers such as [1] and [citation needed]",
            filters.remove_citation_markers,
            "markers",
        )
    if c.drop_boilerplate_lines:
        line_step(
            "boilerplate_lines",
            "C4 §2.2: drop lines mentioning javascript or a cookie/privacy/terms-of-use notice",
            _drop_if(filters.is_boilerplate_line),
            "lines",
        )
    if c.require_terminal_punctuation:
        line_step(
            "terminal_punctuation",
            "C4 §2.2: keep only lines ending in terminal punctuation (drops headings, list items, captions)",
            _drop_if(filters.lacks_terminal_punctuation),
            "lines",
        )
    if c.min_words_per_line is not None:
        line_step(
            "short_lines",
            f"C4 §2.2: drop lines with fewer than {c.min_words_per_line} words",
            _drop_if(partial(filters.line_has_too_few_words, min_words=c.min_words_per_line)),
            "lines",
        )

    document_step(filters.too_few_sentences, "C4 §2.2", min_sentences=c.min_sentences)
    document_step(filters.too_few_words, "Gopher App. A.1.1", min_words=c.min_words)
    document_step(filters.too_many_words, "Gopher App. A.1.1", max_words=c.max_words)
    if c.min_mean_word_length is not None or c.max_mean_word_length is not None:
        document_step(
            filters.mean_word_length_out_of_range,
            "Gopher App. A.1.1",
            min_length=c.min_mean_word_length if c.min_mean_word_length is not None else 0.0,
            max_length=c.max_mean_word_length
            if c.max_mean_word_length is not None
            else float("inf"),
        )
    document_step(filters.too_many_symbols, "Gopher App. A.1.1", max_ratio=c.max_symbol_ratio)
    document_step(
        filters.too_many_digits,
        "minibert (digit analogue of Gopher's symbol ratio)",
        max_ratio=c.max_digit_ratio,
    )
    document_step(
        filters.too_few_alphabetic_words, "Gopher App. A.1.1", min_ratio=c.min_alphabetic_word_ratio
    )
    document_step(filters.too_few_stop_words, "Gopher App. A.1.1", min_count=c.min_stop_words)
    document_step(
        filters.too_many_bullet_lines, "Gopher App. A.1.1", max_ratio=c.max_bullet_line_ratio
    )
    document_step(
        filters.too_many_ellipsis_lines, "Gopher App. A.1.1", max_ratio=c.max_ellipsis_line_ratio
    )
    document_step(
        filters.too_many_duplicate_lines, "Gopher App. A.1.2", max_ratio=c.max_duplicate_line_ratio
    )
    if c.drop_lorem_ipsum:
        document_step(filters.contains_lorem_ipsum, "C4 §2.2")
    if c.drop_curly_brackets:
        document_step(filters.contains_curly_bracket, "C4 §2.2")

    if c.exact_dedup:
        steps.append(("exact_dedup", partial(_exact_dedup_step, max_examples=keep)))
    if c.near_dedup:
        steps.append(
            (
                "near_dedup",
                partial(
                    _near_dedup_step,
                    threshold=c.near_dup_threshold,
                    num_perm=c.num_perm,
                    shingle_size=c.shingle_size,
                    seed=c.minhash_seed,
                    max_examples=keep,
                ),
            )
        )
    return steps


def _drop_if(predicate: Callable[[str], bool]) -> Callable[[str], tuple[str | None, list[str]]]:
    def edit(line: str) -> tuple[str | None, list[str]]:
        return (None, [line]) if predicate(line) else (line, [])

    edit.__name__ = getattr(predicate, "__name__", "rule")
    return edit


class _Examples:
    """Collects up to ``limit`` examples per reason."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[RemovedExample] = []
        self._per_reason: Counter[str] = Counter()

    def add(self, reason: str, doc_id: str, text: str, detail: str = "") -> None:
        if self._per_reason[reason] < self.limit:
            self._per_reason[reason] += 1
            self.items.append(RemovedExample(reason, doc_id, snippet(text), detail))


def _nbytes(items: Sequence[_Item]) -> int:
    return sum(len(item.text.encode("utf-8")) for item in items)


def _normalize_step(
    items: list[_Item], *, form: str | None, max_examples: int
) -> tuple[list[_Item], StepReport]:
    examples = _Examples(max_examples)
    kept: list[_Item] = []
    reasons: Counter[str] = Counter()
    changed = 0
    for item in items:
        text = normalize_text(item.text, form)
        if not text:
            reasons["empty"] += 1
            examples.add("empty", item.doc_id, item.text, "nothing left after normalization")
            continue
        if text != item.text:
            changed += 1
            item = item.with_text(text)
        kept.append(item)
    report = StepReport(
        name="normalize",
        docs_in=len(items),
        docs_out=len(kept),
        bytes_in=_nbytes(items),
        bytes_out=_nbytes(kept),
        reason_counts=dict(reasons),
        docs_changed=changed,
        examples=examples.items,
        description=f"Unicode {form or 'no'} normalization, whitespace and invisible characters tidied",
    )
    return kept, report


def _line_step(
    items: list[_Item],
    *,
    name: str,
    description: str,
    edit: Callable[[str], tuple[str | None, list[str]]],
    unit: str,
    max_examples: int,
) -> tuple[list[_Item], StepReport]:
    examples = _Examples(max_examples)
    kept: list[_Item] = []
    removed_units = 0
    changed = 0
    emptied = 0
    for item in items:
        new_lines: list[str] = []
        item_units = 0  # markers or lines cut from this document
        for line in item.text.split("\n"):
            if not line.strip():
                new_lines.append("")  # paragraph break: keep the structure
                continue
            new_line, removed = edit(line)
            if removed:
                item_units += len(removed)
                detail = "" if removed == [line] else "removed " + ", ".join(removed)
                examples.add(name, item.doc_id, line, detail)
            if new_line is not None and new_line.strip():
                new_lines.append(new_line)
        if not item_units:
            kept.append(item)
            continue
        removed_units += item_units
        text = _MANY_NEWLINES.sub("\n\n", "\n".join(new_lines)).strip()
        if not text:
            emptied += 1
            continue
        changed += 1
        kept.append(item.with_text(text))
    report = StepReport(
        name=name,
        docs_in=len(items),
        docs_out=len(kept),
        bytes_in=_nbytes(items),
        bytes_out=_nbytes(kept),
        reason_counts={"no_lines_left": emptied} if emptied else {},
        edit_counts={unit: removed_units},
        docs_changed=changed,
        examples=examples.items,
        description=description,
    )
    return kept, report


def _document_step(
    items: list[_Item],
    *,
    name: str,
    description: str,
    check: Callable[[TextFeatures], str | None],
    max_examples: int,
) -> tuple[list[_Item], StepReport]:
    examples = _Examples(max_examples)
    kept: list[_Item] = []
    for item in items:
        detail = check(item.features)
        if detail is None:
            kept.append(item)
        else:
            examples.add(name, item.doc_id, item.text, detail)
    removed = len(items) - len(kept)
    report = StepReport(
        name=name,
        docs_in=len(items),
        docs_out=len(kept),
        bytes_in=_nbytes(items),
        bytes_out=_nbytes(kept),
        reason_counts={name: removed} if removed else {},
        examples=examples.items,
        description=description,
    )
    return kept, report


def _dedup_report(
    name: str,
    description: str,
    items: list[_Item],
    kept_indices: list[int],
    matches: list[dedup.DuplicateMatch],
    max_examples: int,
) -> tuple[list[_Item], StepReport]:
    kept = [items[i] for i in kept_indices]
    examples = _Examples(max_examples)
    for match in matches:
        duplicate, original = items[match.index], items[match.kept_index]
        examples.add(
            name,
            duplicate.doc_id,
            duplicate.text,
            f"copy of {original.doc_id}, similarity {match.similarity:.2f}",
        )
    report = StepReport(
        name=name,
        docs_in=len(items),
        docs_out=len(kept),
        bytes_in=_nbytes(items),
        bytes_out=_nbytes(kept),
        reason_counts={name: len(matches)} if matches else {},
        examples=examples.items,
        description=description,
    )
    return kept, report


def _exact_dedup_step(items: list[_Item], *, max_examples: int) -> tuple[list[_Item], StepReport]:
    kept_indices, matches = dedup.exact_duplicates([item.text for item in items])
    return _dedup_report(
        "exact_dedup",
        "exact duplicates after case folding and whitespace collapsing (SHA-256), first copy kept",
        items,
        kept_indices,
        matches,
        max_examples,
    )


def _near_dedup_step(
    items: list[_Item],
    *,
    threshold: float,
    num_perm: int,
    shingle_size: int,
    seed: int,
    max_examples: int,
) -> tuple[list[_Item], StepReport]:
    kept_indices, matches = dedup.near_duplicates(
        [item.text for item in items],
        threshold=threshold,
        num_perm=num_perm,
        shingle_size=shingle_size,
        seed=seed,
    )
    return _dedup_report(
        "near_dedup",
        f"near duplicates: MinHash LSH over word {shingle_size}-grams, Jaccard >= {threshold} "
        f"({num_perm} permutations), first copy kept",
        items,
        kept_indices,
        matches,
        max_examples,
    )


def _doc_id(doc: Any, index: int) -> str:
    doc_id = None if isinstance(doc, str) else getattr(doc, "id", None)
    return str(doc_id) if doc_id is not None else f"#{index}"


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="cleaning", unit="step")
