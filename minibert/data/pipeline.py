"""The data pipeline end to end, cached on disk: corpus -> clean -> split -> tokenizer -> ids.

::

    load_corpus ─> parse_wikitext ─> clean_corpus ─> split_by_document ─> split_sentences
    (corpora)      (wikitext)        (clean)         (pretraining)        (text)
                                                                │
              train_wordpiece (train documents only) ─> encode_documents ─> PreparedData
              (tokenizer)                                (pretraining)

This module only wires the steps together; each one lives in, and is documented by, its own
module. BERT's recipe is followed where it speaks: Wikipedia text passages without lists, tables
or headers, documents kept whole so sentence pairs come from one document (Devlin et al. 2019,
§3.1), a WordPiece vocabulary (Wu et al. 2016) learned from the training split only, so the
validation split measures text the tokenizer never saw.

Caching. Two cache entries, each a folder under ``cache_dir`` named by a SHA-256 key:

* ``corpus/<key>/`` -- the cleaned, split documents with their sentences, the cleaning reports
  and statistics. The key hashes the source (file content, or size + mtime for files over
  256 MB), the corpus settings, the cleaning settings, the split, the versions of the parsing
  and dedup libraries and :data:`DATA_FORMAT_VERSION`.
* ``data/<key>/`` -- the tokenizer (standard HF files) and the token ids as ``.npy`` arrays.
  The key hashes the corpus key, the tokenizer settings and the ``tokenizers`` version.

So changing ``vocab_size`` re-trains the tokenizer but reuses the cleaned corpus. An entry is
built in a temporary folder and renamed into place only when complete, so a killed run never
leaves half an entry; every file's SHA-256 is in the entry's ``manifest.json`` and is checked on
load, and a damaged entry is rebuilt with a warning. A process building an entry holds its lock
(``<cache>/locks/``): another process that needs the same entry, on this machine or on one
sharing the cache folder (``torchrun`` over several machines), waits and then reads it. Nothing is pickled: JSON, JSON lines and
``.npy`` files loaded with ``allow_pickle=False``.

The default cache folder is ``$MINIBERT_CACHE`` or ``~/.cache/minibert``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from minibert.atomic import (
    TMP_PREFIX,
    TRASH_PREFIX,
    atomic_directory,
    restore_interrupted_replace,
)
from minibert.data.clean import CleaningConfig, clean_corpus
from minibert.data.stats import CorpusStats, RemovedExample, StepReport, format_reports, snippet
from minibert.data.text import split_sentences
from minibert.locking import FileLock

__all__ = [
    "DATA_FORMAT_VERSION",
    "CacheCorruptError",
    "DataConfig",
    "PreparedCorpus",
    "PreparedData",
    "default_cache_dir",
    "prepare_corpus",
    "prepare_data",
]

logger = logging.getLogger(__name__)

# Bump when the cached output of the same inputs and settings changes (a cleaning rule, the
# sentence splitter, the on-disk layout): old entries then miss instead of being reused.
DATA_FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_CONTENT_HASH_LIMIT = 256 * 1024 * 1024  # bytes; larger sources are keyed by size + mtime
_SPLITS = ("train", "valid")


class CacheCorruptError(RuntimeError):
    """A cache entry failed its checks (missing file, checksum mismatch, unreadable JSON)."""


def default_cache_dir() -> Path:
    """``$MINIBERT_CACHE`` if set, else ``~/.cache/minibert``."""
    env = os.environ.get("MINIBERT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "minibert"


# --- configuration ------------------------------------------------------------------------


@dataclass
class DataConfig:
    """Everything that decides what :func:`prepare_data` produces (and so its cache key).

    ``corpus`` is a name from ``minibert.data.corpora.KNOWN_CORPORA`` or a path (see
    :func:`minibert.data.corpora.load_corpus`). ``drop_list_items`` removes wikitext list
    items, which BERT ignored (§3.1). ``max_seq_len`` is the example length the data must be
    able to fill at least once; it does not change the cached arrays.
    """

    corpus: str = "wiki-sample"
    limit: int | None = None  # read at most this many documents
    drop_list_items: bool = True
    cleaning: CleaningConfig = field(default_factory=CleaningConfig)
    valid_fraction: float = 0.1
    seed: int = 0
    vocab_size: int = 8192
    lowercase: bool = True
    min_frequency: int = 2
    limit_alphabet: int | None = 1000
    max_seq_len: int = 128

    def __post_init__(self) -> None:
        if isinstance(self.cleaning, dict):
            self.cleaning = CleaningConfig.from_dict(self.cleaning)
        if not isinstance(self.cleaning, CleaningConfig):
            raise TypeError(
                f"cleaning must be a CleaningConfig or a dict, got {type(self.cleaning).__name__}"
            )
        if isinstance(self.corpus, os.PathLike):
            self.corpus = os.fspath(self.corpus)
        if not isinstance(self.corpus, str) or not self.corpus:
            raise ValueError(f"corpus must be a corpus name or a path, got {self.corpus!r}")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"limit must be a positive integer or None, got {self.limit!r}")
        if not 0.0 < self.valid_fraction < 1.0:
            raise ValueError(
                f"valid_fraction must be strictly between 0 and 1, got {self.valid_fraction}"
            )
        if not isinstance(self.vocab_size, int) or self.vocab_size < 16:
            raise ValueError(f"vocab_size must be an integer >= 16, got {self.vocab_size!r}")
        if not isinstance(self.min_frequency, int) or self.min_frequency < 1:
            raise ValueError(
                f"min_frequency must be a positive integer, got {self.min_frequency!r}"
            )
        if self.limit_alphabet is not None and (
            isinstance(self.limit_alphabet, bool)
            or not isinstance(self.limit_alphabet, int)
            or self.limit_alphabet < 1
        ):
            raise ValueError(
                f"limit_alphabet must be a positive integer or None (no limit), got "
                f"{self.limit_alphabet!r}"
            )
        if not isinstance(self.max_seq_len, int) or self.max_seq_len < 8:
            raise ValueError(f"max_seq_len must be an integer >= 8, got {self.max_seq_len!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DataConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown DataConfig fields {unknown}; known fields: {sorted(known)}")
        return cls(**data)

    def corpus_settings(self) -> dict[str, Any]:
        """The settings the cleaned, split corpus depends on."""
        return {
            "corpus": self.corpus,
            "limit": self.limit,
            "drop_list_items": self.drop_list_items,
            "cleaning": self.cleaning.to_dict(),
            "valid_fraction": self.valid_fraction,
            "seed": self.seed,
        }

    def tokenizer_settings(self) -> dict[str, Any]:
        """The settings the tokenizer and the token ids depend on."""
        return {
            "vocab_size": self.vocab_size,
            "lowercase": self.lowercase,
            "min_frequency": self.min_frequency,
            "limit_alphabet": self.limit_alphabet,
        }


# --- results ------------------------------------------------------------------------------


@dataclass
class PreparedCorpus:
    """The cleaned corpus split by document, with reports and statistics.

    ``stats`` maps ``"parsed"`` (before cleaning), ``"cleaned"``, ``"train"`` and ``"valid"`` to
    :class:`~minibert.data.stats.CorpusStats`. ``fingerprint`` is the cache key (inputs +
    settings); ``corpus_fingerprint`` hashes the resulting documents themselves.
    """

    config: DataConfig
    train_documents: list[Any]
    valid_documents: list[Any]
    train_sentences: list[list[str]]
    valid_sentences: list[list[str]]
    reports: list[StepReport]
    stats: dict[str, CorpusStats]
    fingerprint: str
    corpus_fingerprint: str
    timings: dict[str, float]
    cache_path: Path | None = None
    from_cache: bool = False

    def report_table(self) -> str:
        return format_reports(self.reports)


@dataclass
class PreparedData(PreparedCorpus):
    """:class:`PreparedCorpus` plus the tokenizer and the token ids.

    ``train_ids[d][s]`` is the list of token ids (no special tokens) of sentence ``s`` of
    training document ``d`` -- the input of
    :func:`minibert.data.examples.create_pretraining_examples`. ``tokenizer`` is a
    ``transformers`` fast tokenizer; the same files are in ``tokenizer_path``. After a cache
    hit it is loaded on first use: importing ``transformers`` takes seconds, and a lesson that
    only looks at the statistics or the ids need not pay for it.
    """

    corpus_key: str = ""  # the corpus entry's cache key (``fingerprint`` is this entry's)
    train_ids: list[list[list[int]]] = field(default_factory=list)
    valid_ids: list[list[list[int]]] = field(default_factory=list)
    _tokenizer: Any = field(default=None, repr=False, compare=False)
    tokenizer_report: Any = None  # minibert.data.tokenizer.TokenizerReport on valid documents
    tokenizer_fingerprint: str = ""
    corpus_cache_path: Path | None = None

    @property
    def tokenizer_path(self) -> Path | None:
        return None if self.cache_path is None else self.cache_path / "tokenizer"

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None and self.tokenizer_path is not None:
            from minibert.data.tokenizer import load_tokenizer

            self._tokenizer = load_tokenizer(self.tokenizer_path)
        return self._tokenizer

    def run_info(self) -> dict[str, Any]:
        """What a run directory's ``run.json`` records about its data."""
        return {
            "data_config": self.config.to_dict(),
            "data_format_version": DATA_FORMAT_VERSION,
            "data_fingerprint": self.fingerprint,
            "corpus_fingerprint": self.corpus_fingerprint,
            "tokenizer_fingerprint": self.tokenizer_fingerprint,
            "train_documents": len(self.train_documents),
            "valid_documents": len(self.valid_documents),
            "train_tokens": sum(len(s) for doc in self.train_ids for s in doc),
            "valid_tokens": sum(len(s) for doc in self.valid_ids for s in doc),
        }

    def summary(self) -> str:
        """A printable summary: corpus statistics before/after, the removal report, the
        tokenizer's held-out coverage and the stage timings."""
        from minibert.data.stats import compare_stats

        parts = [
            f"corpus {self.config.corpus!r}  (cache {'hit' if self.from_cache else 'miss'}: {self.cache_path})",
            "",
            "statistics (parsed -> cleaned)",
            compare_stats(self.stats["parsed"], self.stats["cleaned"], ("parsed", "cleaned")),
            "",
            "what each step removed",
            format_reports(self.reports),
            "",
            f"split: {len(self.train_documents)} train / {len(self.valid_documents)} valid documents, "
            f"{self.run_info()['train_tokens']:,} / {self.run_info()['valid_tokens']:,} tokens",
        ]
        if self.tokenizer_report is not None:
            parts += ["", "tokenizer on the validation documents", str(self.tokenizer_report)]
        parts += ["", "timings: " + ", ".join(f"{k} {v:.2f}s" for k, v in self.timings.items())]
        return "\n".join(parts)


# --- entry points -------------------------------------------------------------------------


def prepare_corpus(
    config: DataConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    refresh: bool = False,
) -> PreparedCorpus:
    """Load, parse, clean and split the corpus (cached); no tokenizer.

    ``refresh=True`` rebuilds the entry even if it exists. Raises ``ValueError`` when the corpus
    is empty or cleaning leaves fewer than two documents (one for each split).
    """
    config = config or DataConfig()
    if not isinstance(config, DataConfig):
        raise TypeError(f"config must be a DataConfig, got {type(config).__name__}")
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    started = time.perf_counter()
    source = _source_fingerprint(config.corpus)
    key = _hash_json(
        {
            "stage": "corpus",
            "format": DATA_FORMAT_VERSION,
            "source": source,
            "settings": config.corpus_settings(),
            "libraries": _library_versions("mwparserfromhell", "datasketch"),
        }
    )
    entry = root / "corpus" / key

    def build(folder: Path) -> PreparedCorpus:
        corpus = _build_corpus(config, key, progress)
        save_start = time.perf_counter()
        _write_corpus_entry(folder, corpus, source)
        corpus.timings["save_corpus"] = time.perf_counter() - save_start
        return corpus

    corpus, built = _load_or_build(entry, lambda: _read_corpus_entry(entry, config), build, refresh)
    if not built:
        corpus.timings = {"load_corpus_cache": time.perf_counter() - started}
        logger.info("corpus cache hit: %s", entry)
    corpus.cache_path = entry
    return corpus


def prepare_data(
    config: DataConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
    refresh: bool = False,
) -> PreparedData:
    """The whole pipeline: :func:`prepare_corpus`, then WordPiece on the training documents
    and token ids for both splits. Cached (see the module docstring); a second call with the
    same inputs and settings loads the cache in a few seconds.

    Raises ``ValueError`` for an empty corpus, a corpus that cleaning empties, or one too small
    to fill a single ``max_seq_len`` sequence.
    """
    config = config or DataConfig()
    started = time.perf_counter()
    corpus = prepare_corpus(config, cache_dir, progress=progress, refresh=refresh)
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    key = _hash_json(
        {
            "stage": "data",
            "format": DATA_FORMAT_VERSION,
            "corpus": corpus.fingerprint,
            "settings": config.tokenizer_settings(),
            "libraries": _library_versions("tokenizers"),
        }
    )
    entry = root / "data" / key

    def build(folder: Path) -> PreparedData:
        data = _build_data(corpus, key, progress)
        _check_fills_a_sequence(data)  # before writing: an unusable corpus gets no data entry
        save_start = time.perf_counter()
        _write_data_entry(folder, data)
        data.timings["save_data"] = time.perf_counter() - save_start
        return data

    data, built = _load_or_build(entry, lambda: _read_data_entry(entry, corpus), build, refresh)
    if not built:
        logger.info("data cache hit: %s", entry)
        _check_fills_a_sequence(data)  # max_seq_len is not part of the key
    data.cache_path = entry
    data.corpus_cache_path = corpus.cache_path
    data.timings["total"] = time.perf_counter() - started
    return data


# --- building -----------------------------------------------------------------------------


def _build_corpus(config: DataConfig, key: str, progress: bool) -> PreparedCorpus:
    from minibert.data.corpora import load_corpus
    from minibert.data.examples import split_by_document

    timings: dict[str, float] = {}
    t = time.perf_counter()
    raw = load_corpus(config.corpus, raw_markup=True, limit=config.limit)
    documents = list(raw)
    timings["load"] = time.perf_counter() - t
    if not documents:
        raise ValueError(
            f"corpus {config.corpus!r} holds no documents; point DataConfig.corpus at a non-empty source"
        )
    logger.info("loaded %d documents from %s", len(documents), config.corpus)

    reports: list[StepReport] = []
    if any(_is_wikitext(doc) for doc in documents):
        t = time.perf_counter()
        documents, report = _parse_wikitext_step(
            documents, config.drop_list_items, config.cleaning.max_examples, progress
        )
        report.seconds = timings["parse_wikitext"] = time.perf_counter() - t
        reports.append(report)
        if not documents:
            raise ValueError(
                f"no prose left in corpus {config.corpus!r} after removing wiki markup "
                f"({report.docs_in} pages); check that it holds articles, not only redirects or lists"
            )

    t = time.perf_counter()
    parsed_stats = CorpusStats.from_documents(documents)
    timings["stats"] = time.perf_counter() - t

    t = time.perf_counter()
    cleaned = clean_corpus(documents, config.cleaning, progress=progress)
    timings["clean"] = time.perf_counter() - t
    reports.extend(cleaned.reports)
    kept = cleaned.documents
    if len(kept) < 2:
        raise ValueError(
            f"cleaning kept {len(kept)} of {len(documents)} documents of {config.corpus!r}; at least 2 "
            "are needed (one for training, one for validation). Loosen the filters in "
            "DataConfig.cleaning (e.g. min_words, min_sentences) or use a larger corpus. "
            f"What was removed:\n{format_reports([r for r in cleaned.reports if r.docs_removed])}"
        )

    t = time.perf_counter()
    train_docs, valid_docs = split_by_document(kept, config.valid_fraction, config.seed)
    timings["split"] = time.perf_counter() - t

    t = time.perf_counter()
    train_sentences = [split_sentences(doc.text) for doc in train_docs]
    valid_sentences = [split_sentences(doc.text) for doc in valid_docs]
    timings["sentences"] = time.perf_counter() - t

    t = time.perf_counter()
    stats = {
        "parsed": parsed_stats,
        "cleaned": CorpusStats.from_documents(
            kept,
            sentences=_sentences_in_order(
                kept, train_docs, valid_docs, train_sentences, valid_sentences
            ),
        ),
        "train": CorpusStats.from_documents(train_docs, sentences=train_sentences),
        "valid": CorpusStats.from_documents(valid_docs, sentences=valid_sentences),
    }
    timings["stats"] += time.perf_counter() - t
    return PreparedCorpus(
        config=config,
        train_documents=train_docs,
        valid_documents=valid_docs,
        train_sentences=train_sentences,
        valid_sentences=valid_sentences,
        reports=reports,
        stats=stats,
        fingerprint=key,
        corpus_fingerprint=_documents_fingerprint(train_docs, valid_docs),
        timings=timings,
    )


def _build_data(corpus: PreparedCorpus, key: str, progress: bool) -> PreparedData:
    from minibert.data.examples import encode_documents
    from minibert.data.tokenizer import tokenizer_report, train_wordpiece

    config = corpus.config
    timings = dict(corpus.timings)
    t = time.perf_counter()
    tokenizer = train_wordpiece(
        (doc.text for doc in corpus.train_documents),
        vocab_size=config.vocab_size,
        lowercase=config.lowercase,
        min_frequency=config.min_frequency,
        show_progress=progress,
        limit_alphabet=config.limit_alphabet,
    )
    timings["train_tokenizer"] = time.perf_counter() - t
    t = time.perf_counter()
    train_ids = encode_documents(corpus.train_sentences, tokenizer, show_progress=progress)
    valid_ids = encode_documents(corpus.valid_sentences, tokenizer, show_progress=progress)
    timings["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    report = tokenizer_report(tokenizer, (doc.text for doc in corpus.valid_documents))
    timings["tokenizer_report"] = time.perf_counter() - t
    fields_ = {f.name: getattr(corpus, f.name) for f in fields(PreparedCorpus)}
    fields_.update(timings=timings, fingerprint=key, from_cache=False)
    return PreparedData(
        **fields_,
        corpus_key=corpus.fingerprint,
        train_ids=train_ids,
        valid_ids=valid_ids,
        _tokenizer=tokenizer,
        tokenizer_report=report,
        tokenizer_fingerprint="",  # set from the saved tokenizer.json in _write_data_entry
    )


def _check_fills_a_sequence(data: PreparedData) -> None:
    # [CLS] A [SEP] B [SEP]: a full input holds max_seq_len - 3 corpus tokens (BERT §3.1).
    needed = data.config.max_seq_len - 3
    train_tokens = sum(len(s) for doc in data.train_ids for s in doc)
    if train_tokens < needed:
        raise ValueError(
            f"the training split of {data.config.corpus!r} has {train_tokens} tokens, too few for a "
            f"single sequence of max_seq_len={data.config.max_seq_len} ({needed} tokens plus "
            "[CLS]/[SEP]). Use a larger corpus, loosen the cleaning filters, or lower max_seq_len."
        )


def _is_wikitext(doc: Any) -> bool:
    return isinstance(getattr(doc, "meta", None), dict) and doc.meta.get("markup") == "wikitext"


def _parse_wikitext_step(
    documents: list[Any], drop_list_items: bool, max_examples: int, progress: bool
) -> tuple[list[Any], StepReport]:
    """Wikitext -> plain text with :func:`minibert.data.wikitext.parse_wikitext`, as a step
    whose report sums the parser's removal counts (``edit_counts``) over all pages."""
    from tqdm.auto import tqdm

    from minibert.data.wikitext import parse_wikitext

    kept: list[Any] = []
    removed_markup: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    examples: list[RemovedExample] = []
    bytes_in = bytes_out = changed = 0
    for doc in tqdm(documents, desc="parsing wikitext", unit="page", disable=not progress):
        bytes_in += len(doc.text.encode("utf-8"))
        if not _is_wikitext(doc):
            kept.append(doc)
            bytes_out += len(doc.text.encode("utf-8"))
            continue
        article = parse_wikitext(doc.text)
        removed_markup.update(article.removed)
        paragraphs = article.paragraphs
        if drop_list_items:
            lists = sum(1 for p in paragraphs if p.kind == "list")
            if lists:
                removed_markup["list_items_dropped"] += lists
            paragraphs = [p for p in paragraphs if p.kind != "list"]
        text = "\n\n".join(p.text for p in paragraphs).strip()
        if not text:
            reasons["no_prose"] += 1
            if sum(1 for e in examples if e.reason == "no_prose") < max_examples:
                examples.append(
                    RemovedExample(
                        "no_prose", str(doc.id), snippet(doc.text), f"title {doc.title!r}"
                    )
                )
            continue
        changed += 1
        bytes_out += len(text.encode("utf-8"))
        meta = {k: v for k, v in doc.meta.items() if k != "markup"}
        meta.update(markup="plain", headings=[title for _, title in article.headings])
        kept.append(dataclasses.replace(doc, text=text, meta=meta))
    report = StepReport(
        name="wikitext",
        docs_in=len(documents),
        docs_out=len(kept),
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        reason_counts=dict(reasons),
        edit_counts=dict(removed_markup.most_common()),
        docs_changed=changed,
        examples=examples,
        description="wikitext -> plain prose (minibert.data.wikitext.parse_wikitext)"
        + ("; list items dropped (BERT §3.1)" if drop_list_items else ""),
    )
    return kept, report


def _sentences_in_order(
    kept, train_docs, valid_docs, train_sentences, valid_sentences
) -> list[list[str]]:
    by_id = {id(doc): s for doc, s in zip(train_docs, train_sentences, strict=True)}
    by_id.update({id(doc): s for doc, s in zip(valid_docs, valid_sentences, strict=True)})
    return [by_id[id(doc)] for doc in kept]


# --- fingerprints -------------------------------------------------------------------------


def _hash_json(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, default=str).encode("utf-8")
    ).hexdigest()[:32]


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _source_fingerprint(corpus: str) -> dict[str, Any]:
    """What identifies the source's content: a hash of its file(s), or the hub name."""
    from minibert.data import corpora

    files: list[Path]
    if corpus == "wiki-sample":
        files = [corpora.gensim_test_data(corpora.WIKI_SAMPLE_FILE)]
    elif corpus == "lee-news":
        files = [corpora.gensim_test_data(corpora.LEE_NEWS_FILE)]
    elif corpus in corpora.KNOWN_CORPORA:
        return {"hub": corpus}  # the datasets library fingerprints and caches hub data itself
    else:
        path = Path(corpus).expanduser()
        if not path.exists():
            return {"missing": corpus}  # load_corpus raises the helpful error
        # The files load_corpus reads from a folder: .txt/.jsonl, hidden ones skipped.
        files = (
            sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and p.suffix in (".txt", ".jsonl")
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if path.is_dir()
            else [path]
        )
    described = []
    for path in files:
        stat = path.stat()
        entry: dict[str, Any] = {"name": path.name, "size": stat.st_size}
        if stat.st_size <= _CONTENT_HASH_LIMIT:
            entry["sha256"] = _file_sha256(path)
        else:
            entry["mtime_ns"] = stat.st_mtime_ns
        described.append(entry)
    return {"files": described}


def _library_versions(*names: str) -> dict[str, str]:
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "missing"
    return versions


def _documents_fingerprint(train_docs: Sequence[Any], valid_docs: Sequence[Any]) -> str:
    digest = hashlib.sha256()
    for split, docs in (("train", train_docs), ("valid", valid_docs)):
        for doc in docs:
            for part in (split, str(doc.id), doc.text):
                digest.update(part.encode("utf-8"))
                digest.update(b"\x00")
    return digest.hexdigest()[:32]


# --- the cache on disk --------------------------------------------------------------------


def _entry_lock(entry: Path) -> FileLock:
    """The lock of cache entry ``<cache>/<stage>/<key>``: ``<cache>/locks/<stage>-<key>.lock``.

    Kept out of the entry folders (an entry appears by a rename, so its lock cannot live inside
    it) and never deleted (a process may be waiting on it).
    """
    return FileLock(
        entry.parent.parent / "locks" / f"{entry.parent.name}-{entry.name}.lock",
        what=f"cache entry {entry}",
    )


def _load_or_build(
    entry: Path, read: Callable[[], Any], build: Callable[[Path], Any], refresh: bool
) -> tuple[Any, bool]:
    """The entry's contents, built (into a temporary folder, then renamed) if needed.

    Returns ``(value, built)``. A complete entry is read without locking. Building holds the
    entry's lock: a second process that needs the same entry waits for it (on this machine,
    or on another sharing the cache folder), then reads what the first one wrote instead of
    building it again. So a complete entry is never replaced by an identical one, except on
    ``refresh``, and then by an atomic swap.
    """
    if not refresh:
        cached = _try_load(entry, read, warn=False)
        if cached is not None:
            return cached, False
    entry.parent.mkdir(parents=True, exist_ok=True)
    with _entry_lock(entry).acquire(wait=True):
        restore_interrupted_replace(entry)  # a swap killed between its two renames
        if not refresh:
            cached = _try_load(entry, read, warn=True)  # built while we waited?
            if cached is not None:
                return cached, False
        _sweep_stale_temporaries(entry.parent)
        with atomic_directory(entry) as tmp:
            value = build(tmp)
        return value, True


def _sweep_stale_temporaries(parent: Path, max_age_seconds: float = 24 * 3600) -> None:
    """Delete temporary folders that a killed run (SIGKILL, power loss) left behind.

    Only old ones: a younger folder may belong to a process that is still writing another
    entry. Trash (a deletion that was killed) goes at once.
    """
    now = time.time()
    for path in parent.glob(f"{TMP_PREFIX}*"):
        try:
            if now - path.stat().st_mtime > max_age_seconds:
                shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass  # another process removed it first
    for path in parent.glob(f"{TRASH_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)


def _write_manifest(folder: Path, payload: dict[str, Any]) -> None:
    """Checksum every file in ``folder`` and write the manifest last."""
    checksums = {
        str(path.relative_to(folder)): _file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
    payload = {**payload, "format": DATA_FORMAT_VERSION, "files": checksums}
    (folder / _MANIFEST).write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((folder / _MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise CacheCorruptError(f"unreadable manifest: {err}") from err
    if manifest.get("format") != DATA_FORMAT_VERSION:
        raise CacheCorruptError(f"format {manifest.get('format')} != {DATA_FORMAT_VERSION}")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise CacheCorruptError("manifest lists no files")
    for name, expected in files.items():
        path = folder / name
        if not path.is_file():
            raise CacheCorruptError(f"missing file {name}")
        if _file_sha256(path) != expected:
            raise CacheCorruptError(f"checksum mismatch in {name}")
    return manifest


def _try_load(entry: Path, read: Callable[[], Any], *, warn: bool) -> Any:
    """``read()`` the entry if it exists; None if it is missing or damaged (never deletes it:
    only the process holding the entry's lock replaces it, by a rename)."""
    if not entry.exists():
        return None
    try:
        return read()
    except (CacheCorruptError, OSError, ValueError, KeyError, TypeError) as err:
        if warn:
            logger.warning("cache entry %s is damaged (%s); rebuilding it", entry, err)
        return None


def _write_jsonl(path: Path, documents: Sequence[Any], sentences: Sequence[list[str]]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for doc, doc_sentences in zip(documents, sentences, strict=True):
            record = {
                "id": doc.id,
                "title": doc.title,
                "text": doc.text,
                "source": doc.source,
                "meta": doc.meta,
                "sentences": doc_sentences,
            }
            handle.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")


def _read_jsonl(path: Path) -> tuple[list[Any], list[list[str]]]:
    from minibert.data.corpora import Document

    documents, sentences = [], []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            sentences.append(record.pop("sentences"))
            documents.append(Document(**record))
    return documents, sentences


def _write_corpus_entry(folder: Path, corpus: PreparedCorpus, source: dict[str, Any]) -> None:
    _write_jsonl(folder / "train.jsonl", corpus.train_documents, corpus.train_sentences)
    _write_jsonl(folder / "valid.jsonl", corpus.valid_documents, corpus.valid_sentences)
    _write_manifest(
        folder,
        {
            "stage": "corpus",
            "key": corpus.fingerprint,
            "corpus_fingerprint": corpus.corpus_fingerprint,
            "settings": corpus.config.corpus_settings(),
            "source": source,
            "reports": [report.to_dict() for report in corpus.reports],
            "stats": {name: stats.to_dict() for name, stats in corpus.stats.items()},
            "timings": corpus.timings,
        },
    )


def _read_corpus_entry(folder: Path, config: DataConfig) -> PreparedCorpus:
    manifest = _read_manifest(folder)
    train_docs, train_sentences = _read_jsonl(folder / "train.jsonl")
    valid_docs, valid_sentences = _read_jsonl(folder / "valid.jsonl")
    return PreparedCorpus(
        config=config,
        train_documents=train_docs,
        valid_documents=valid_docs,
        train_sentences=train_sentences,
        valid_sentences=valid_sentences,
        reports=[StepReport.from_dict(r) for r in manifest["reports"]],
        stats={name: CorpusStats.from_dict(s) for name, s in manifest["stats"].items()},
        fingerprint=manifest["key"],
        corpus_fingerprint=manifest["corpus_fingerprint"],
        timings={},
        cache_path=folder,
        from_cache=True,
    )


def _save_ids(folder: Path, split: str, ids: Sequence[Sequence[Sequence[int]]]) -> None:
    """Ragged ids as three flat arrays: tokens, tokens per sentence, sentences per document."""
    sentence_lengths = [len(sentence) for doc in ids for sentence in doc]
    tokens = np.fromiter(
        (t for doc in ids for sentence in doc for t in sentence),
        dtype=np.int32,
        count=sum(sentence_lengths),
    )
    np.save(folder / f"{split}_tokens.npy", tokens, allow_pickle=False)
    np.save(
        folder / f"{split}_sentence_lengths.npy",
        np.asarray(sentence_lengths, dtype=np.int32),
        allow_pickle=False,
    )
    np.save(
        folder / f"{split}_document_sizes.npy",
        np.asarray([len(doc) for doc in ids], dtype=np.int32),
        allow_pickle=False,
    )


def _load_ids(folder: Path, split: str) -> list[list[list[int]]]:
    tokens = np.load(folder / f"{split}_tokens.npy", allow_pickle=False).tolist()
    sentence_lengths = np.load(
        folder / f"{split}_sentence_lengths.npy", allow_pickle=False
    ).tolist()
    document_sizes = np.load(folder / f"{split}_document_sizes.npy", allow_pickle=False).tolist()
    if sum(sentence_lengths) != len(tokens) or sum(document_sizes) != len(sentence_lengths):
        raise CacheCorruptError(f"{split} id arrays disagree in length")
    sentences, start = [], 0
    for length in sentence_lengths:
        sentences.append(tokens[start : start + length])
        start += length
    documents, start = [], 0
    for size in document_sizes:
        documents.append(sentences[start : start + size])
        start += size
    return documents


def _write_data_entry(folder: Path, data: PreparedData) -> None:
    from minibert.data.tokenizer import save_tokenizer

    save_tokenizer(data.tokenizer, folder / "tokenizer")
    data.tokenizer_fingerprint = _file_sha256(folder / "tokenizer" / "tokenizer.json")[:32]
    for split in _SPLITS:
        _save_ids(folder, split, getattr(data, f"{split}_ids"))
    _write_manifest(
        folder,
        {
            "stage": "data",
            "key": data.fingerprint,
            "corpus_key": data.corpus_key,
            "corpus_fingerprint": data.corpus_fingerprint,
            "settings": data.config.tokenizer_settings(),
            "tokenizer_fingerprint": data.tokenizer_fingerprint,
            "tokenizer_report": data.tokenizer_report.to_dict() if data.tokenizer_report else None,
            "timings": data.timings,
        },
    )


def _read_data_entry(folder: Path, corpus: PreparedCorpus) -> PreparedData:
    from minibert.data.tokenizer import TokenizerReport

    started = time.perf_counter()
    manifest = _read_manifest(folder)
    if (manifest.get("corpus_key"), manifest.get("corpus_fingerprint")) != (
        corpus.fingerprint,
        corpus.corpus_fingerprint,
    ):
        raise CacheCorruptError("entry was built from different documents than the corpus entry")
    train_ids, valid_ids = _load_ids(folder, "train"), _load_ids(folder, "valid")
    if len(train_ids) != len(corpus.train_documents) or len(valid_ids) != len(
        corpus.valid_documents
    ):
        raise CacheCorruptError("id arrays do not match the corpus documents")
    if not (folder / "tokenizer" / "tokenizer.json").is_file():
        raise CacheCorruptError("no tokenizer/tokenizer.json")
    report = manifest.get("tokenizer_report")
    fields_ = {f.name: getattr(corpus, f.name) for f in fields(PreparedCorpus)}
    fields_.update(
        timings={**corpus.timings, "load_data_cache": time.perf_counter() - started},
        fingerprint=manifest["key"],
        from_cache=True,
    )
    return PreparedData(
        **fields_,
        corpus_key=corpus.fingerprint,
        train_ids=train_ids,
        valid_ids=valid_ids,
        tokenizer_report=TokenizerReport(**report) if report else None,
        tokenizer_fingerprint=manifest["tokenizer_fingerprint"],
    )
