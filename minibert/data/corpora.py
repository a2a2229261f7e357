"""Named text sources -> documents.

BERT's pre-training corpus was "BooksCorpus (800M words) and English Wikipedia (2,500M words)",
using document-level text so that long contiguous sequences can be extracted (Devlin et al.
2019, Sec. 3.1). A classroom cannot download that, so the default here is a real slice of it that
is already installed:

==================  ===========================================================================
name                source
==================  ===========================================================================
``wiki-sample``     the English Wikipedia XML excerpt inside gensim's wheel (206 pages, 106
                    articles once redirects are dropped), streamed with ``bz2`` + ``iterparse``
                    and parsed with ``mwparserfromhell`` (see :mod:`minibert.data.wikitext`)
``lee-news``        300 news articles from gensim's test data (``lee_background.cor``)
``wikitext-2``      WikiText-2 (raw) from the Hugging Face hub, online only
``wikitext-103``    WikiText-103 (raw) from the Hugging Face hub, online only; streamable
a path              a ``.txt`` file, a ``.jsonl`` file with a ``text`` field, or a folder of them
==================  ===========================================================================

Every source yields :class:`Document` objects. Hub sources fail at once, with a message naming the
offline alternatives, when the hub cannot be reached.

Local file formats
------------------
``.txt``
    BERT's own input format (``create_pretraining_data.py``): documents separated by blank lines,
    one sentence or paragraph per line; lines of a document are joined with ``"\\n"``.
``.jsonl``
    One JSON object per line with a ``"text"`` string; ``"title"`` and ``"id"`` are optional.

Text must be UTF-8. With ``errors="strict"`` (the default) a bad byte raises
:class:`CorpusEncodingError` naming the file and the byte offset; ``errors="replace"`` substitutes
U+FFFD and ``errors="ignore"`` drops the bytes (both are Python's codec policies).
"""

from __future__ import annotations

import bz2
import functools
import gzip
import importlib.util
import json
import logging
import os
import re
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "KNOWN_CORPORA",
    "CorpusEncodingError",
    "Document",
    "CorpusFormatError",
    "EmptyCorpusError",
    "HubUnavailableError",
    "WikiPage",
    "gensim_test_data",
    "group_wikitext_lines",
    "iter_wiki_pages",
    "load_corpus",
    "require_hub",
    "wiki_sample_articles",
]

WIKI_SAMPLE_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
LEE_NEWS_FILE = "lee_background.cor"

KNOWN_CORPORA: dict[str, str] = {
    "wiki-sample": "English Wikipedia excerpt shipped in gensim's wheel (106 articles, offline)",
    "lee-news": "300 news articles shipped in gensim's wheel (lee_background.cor, offline)",
    "wikitext-2": "WikiText-2 raw, Salesforce/wikitext on the Hugging Face hub (online)",
    "wikitext-103": "WikiText-103 raw, Salesforce/wikitext on the Hugging Face hub (online)",
}
OFFLINE_CORPORA = ("wiki-sample", "lee-news")

# name -> (dataset repository, configuration) on the Hugging Face hub
_HUB_CORPORA = {
    "wikitext-2": ("Salesforce/wikitext", "wikitext-2-raw-v1"),
    "wikitext-103": ("Salesforce/wikitext", "wikitext-103-raw-v1"),
}
_LOCAL_SUFFIXES = (".txt", ".jsonl")
_HUB_PROBE_SECONDS = 3.0


@dataclass(frozen=True)
class Document:
    """One document of a corpus.

    ``text`` is plain text with paragraphs separated by a blank line (or raw wikitext when loaded
    with ``raw_markup=True``; then ``meta["markup"] == "wikitext"``). ``meta`` holds
    source-specific extras such as the section heading of each paragraph.
    """

    id: str
    title: str
    text: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class WikiPage:
    """One ``<page>`` of a MediaWiki XML export, before any wikitext parsing."""

    id: str
    title: str
    namespace: int
    wikitext: str
    redirect: str | None = None  # the redirect's target title, None for an ordinary page

    @property
    def is_redirect(self) -> bool:
        return self.redirect is not None

    @property
    def is_article(self) -> bool:
        """A page in the main namespace that is not a redirect."""
        return self.namespace == 0 and self.redirect is None


class HubUnavailableError(ConnectionError):
    """A hub-backed corpus or task was asked for, but the hub cannot be used here."""


class CorpusEncodingError(ValueError):
    """A corpus file is not valid UTF-8; ``path`` and ``offset`` (in bytes) say where."""

    def __init__(self, path: Path, offset: int, byte: int):
        self.path, self.offset, self.byte = path, offset, byte
        super().__init__(
            f"{path}: not valid UTF-8 at byte offset {offset} (byte 0x{byte:02x}). Re-encode the "
            "file as UTF-8 (e.g. `iconv -f cp1252 -t utf-8`), or pass errors='replace' "
            "(substitute U+FFFD) or errors='ignore' (drop bad bytes) to load_corpus."
        )


class EmptyCorpusError(ValueError):
    """A corpus source held no documents with text."""


class CorpusFormatError(ValueError):
    """A corpus file is not in its format (malformed XML, a damaged archive); says which file."""


# --------------------------------------------------------------------------------------------
# gensim's test data: the offline corpora


def gensim_test_data(filename: str) -> Path:
    """Path of a file in gensim's installed ``test/test_data`` folder (read in place, never copied).

    The package is located without importing it (importing gensim pulls in scipy).
    """
    try:
        spec = importlib.util.find_spec("gensim")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"the offline corpora ({', '.join(OFFLINE_CORPORA)}) and tasks are files inside "
            "gensim's wheel, and gensim is not installed: pip install 'gensim>=4.3' "
            "(a dependency of minibert; `pip install minibert` brings it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "test" / "test_data" / filename
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: this gensim install has no test data (some system packages strip "
            "it). Reinstall the PyPI wheel: pip install --force-reinstall 'gensim>=4.3'"
        )
    return path


def _read_legacy_text(path: Path) -> str:
    """Decode one of gensim's older test files.

    Some are not UTF-8: ``lee.cor`` has a 0xA3 pound sign and ``pang_lee_polarity.cor`` 0x97
    dashes and 0xE9 accents, i.e. Windows-1252 (checked byte by byte). UTF-8 is tried first so a
    re-encoded file also works.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


# --------------------------------------------------------------------------------------------
# MediaWiki XML


def iter_wiki_pages(path: str | os.PathLike) -> Iterator[WikiPage]:
    """Stream the pages of a MediaWiki XML export (``.xml``, ``.xml.bz2`` or ``.xml.gz``).

    Parsed with ``xml.etree.ElementTree.iterparse`` so a dump larger than memory streams: each
    ``<page>`` element is cleared once read. The export namespace
    (``http://www.mediawiki.org/xml/export-0.10/`` and its siblings) is taken from the root tag,
    so any export version works.
    """
    path = Path(path)
    opener: Callable[..., Any]
    if path.suffix == ".bz2":
        opener = bz2.open
    elif path.suffix == ".gz":
        opener = gzip.open
    else:
        opener = open
    try:
        yield from _iter_pages(path, opener)
    except ET.ParseError as err:
        raise CorpusFormatError(
            f"{path} is not a well-formed MediaWiki XML export ({err}). A dump cut short by an "
            "interrupted download ends like this; download it again, or give a .txt/.jsonl "
            "corpus instead"
        ) from err
    except (EOFError, OSError) as err:
        if isinstance(err, FileNotFoundError) or opener is open:
            raise
        # bz2/gzip: a truncated or corrupt archive ("Compressed file ended before the
        # end-of-stream marker was reached", "Invalid data stream").
        raise CorpusFormatError(
            f"{path} cannot be decompressed ({' '.join(str(err).split())}); the archive is "
            "incomplete or damaged: download it again"
        ) from err


def _iter_pages(path: Path, opener: Callable[..., Any]) -> Iterator[WikiPage]:
    with opener(path, "rb") as stream:
        ns = ""
        context = ET.iterparse(stream, events=("start", "end"))
        for event, element in context:
            if event == "start":
                if not ns and element.tag.startswith("{"):
                    ns = element.tag[: element.tag.index("}") + 1]
                continue
            if element.tag != f"{ns}page":
                continue
            redirect = element.find(f"{ns}redirect")
            text = element.find(f"{ns}revision/{ns}text")
            namespace = element.findtext(f"{ns}ns", default="0").strip() or "0"
            yield WikiPage(
                id=element.findtext(f"{ns}id", default="").strip(),
                title=element.findtext(f"{ns}title", default="").strip(),
                namespace=int(namespace),
                wikitext=(text.text or "") if text is not None else "",
                redirect=redirect.get("title", "") if redirect is not None else None,
            )
            element.clear()  # keep memory flat on a full dump


@functools.lru_cache(maxsize=2)
def _parsed_pages(path: str) -> tuple:
    from minibert.data.wikitext import parse_wikitext

    started = time.perf_counter()
    pages = [page for page in iter_wiki_pages(path) if page.is_article]
    parsed = tuple(
        (page, parse_wikitext(page.wikitext))
        for page in tqdm(pages, desc="parsing wikitext", unit="page", disable=None)
    )
    logger.info(
        "parsed %d articles from %s in %.1f s", len(parsed), path, time.perf_counter() - started
    )
    return parsed


def wiki_sample_articles(path: str | os.PathLike | None = None) -> list:
    """``[(WikiPage, WikiArticle), ...]`` for every article (redirects dropped) of a dump.

    Defaults to the ``wiki-sample`` excerpt. Parsed once per process and cached, because the
    corpus loader, the cleaning report and three tasks all read it; treat the objects as
    read-only.
    """
    path = gensim_test_data(WIKI_SAMPLE_FILE) if path is None else Path(path)
    return list(_parsed_pages(str(path)))


def _wiki_document(page: WikiPage, article, source: str) -> Document:
    return Document(
        id=f"enwiki-{page.id}",
        title=page.title,
        text=article.text,
        source=source,
        meta={
            "markup": "plain",
            "page_id": page.id,
            "headings": [title for _, title in article.headings],
            "paragraph_headings": [p.heading for p in article.paragraphs],
            "paragraph_kinds": [p.kind for p in article.paragraphs],
        },
    )


def _iter_wiki_documents(path: Path, source: str, raw_markup: bool, cached: bool):
    if raw_markup:
        for page in iter_wiki_pages(path):
            if page.is_article:
                yield Document(
                    id=f"enwiki-{page.id}",
                    title=page.title,
                    text=page.wikitext,
                    source=source,
                    meta={"markup": "wikitext", "page_id": page.id},
                )
        return
    if cached:
        pairs: Iterable = _parsed_pages(str(path))
    else:  # streaming: parse page by page, keep nothing
        from minibert.data.wikitext import parse_wikitext

        pairs = (
            (page, parse_wikitext(page.wikitext))
            for page in iter_wiki_pages(path)
            if page.is_article
        )
    for page, article in pairs:
        if article.paragraphs:
            yield _wiki_document(page, article, source)
        else:
            logger.debug("skipping %r: no prose left after removing markup", page.title)


def _iter_lee_news() -> Iterator[Document]:
    path = gensim_test_data(LEE_NEWS_FILE)
    for i, line in enumerate(_read_legacy_text(path).splitlines()):
        text = " ".join(line.split())
        if text:
            yield Document(
                id=f"lee-news-{i:03d}",
                title=f"Lee news article {i + 1}",
                text=text,
                source="lee-news",
                meta={"markup": "plain", "line": i + 1},
            )


# --------------------------------------------------------------------------------------------
# Local files


def _iter_decoded_lines(path: Path, errors: str) -> Iterator[tuple[int, str]]:
    """``(line_number, line)`` pairs, decoding UTF-8 line by line so the byte offset is known."""
    offset = 0
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8", errors=errors)
            except UnicodeDecodeError as err:
                raise CorpusEncodingError(path, offset + err.start, raw[err.start]) from None
            if number == 1:
                line = line.removeprefix("\ufeff")  # a byte-order mark is not text
            yield number, line.rstrip("\r\n")
            offset += len(raw)


def _iter_txt_file(path: Path, label: str, errors: str) -> Iterator[Document]:
    block: list[str] = []
    index = 0
    first_line = 1

    def emit() -> Document:
        return Document(
            id=f"{label}:{index}",
            title=path.stem if index == 0 else f"{path.stem} #{index + 1}",
            text="\n".join(block),
            source=str(path),
            meta={"markup": "plain", "path": str(path), "line": first_line},
        )

    for number, line in _iter_decoded_lines(path, errors):
        line = line.strip()
        if line:
            if not block:
                first_line = number
            block.append(line)
        elif block:
            yield emit()
            index += 1
            block = []
    if block:
        yield emit()


def _iter_jsonl_file(path: Path, label: str, errors: str) -> Iterator[Document]:
    index = 0
    for number, line in _iter_decoded_lines(path, errors):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path}:{number}: not valid JSON ({err.msg}); each line of a "
                ".jsonl corpus must be one JSON object"
            ) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ValueError(
                f"{path}:{number}: expected a JSON object with a string 'text' "
                f"field, got {str(record)[:80]!r}"
            )
        text = record["text"].strip()
        if text:
            yield Document(
                id=str(record.get("id", f"{label}:{index}")),
                title=str(record.get("title", f"{path.stem} #{index + 1}")),
                text=text,
                source=str(path),
                meta={"markup": "plain", "path": str(path), "line": number},
            )
            index += 1


def _local_files(path: Path) -> list[Path]:
    if path.is_dir():
        files = sorted(
            p for p in path.rglob("*")
            if p.is_file() and p.suffix in _LOCAL_SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(path).parts)
        )  # fmt: skip
        if not files:
            raise EmptyCorpusError(
                f"{path} is a folder without .txt or .jsonl files; put documents in such files "
                "(see minibert.data.corpora for the formats)"
            )
        return files
    if path.suffix not in _LOCAL_SUFFIXES:
        raise ValueError(
            f"{path}: unsupported corpus file type {path.suffix or '(no suffix)'!r}; use a .txt "
            "file (blank line between documents), a .jsonl file with a 'text' field, or a folder "
            "of them"
        )
    return [path]


def _iter_local(path: Path, errors: str) -> Iterator[Document]:
    root = path if path.is_dir() else path.parent
    for file in _local_files(path):
        label = file.relative_to(root).as_posix()
        reader = _iter_txt_file if file.suffix == ".txt" else _iter_jsonl_file
        yield from reader(file, label, errors)


# --------------------------------------------------------------------------------------------
# The Hugging Face hub


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _probe(host: str, port: int, seconds: float) -> bool:
    """Whether a TCP connection to host:port opens within ``seconds`` (DNS included).

    Runs in a daemon thread because name resolution ignores socket timeouts; a resolver that
    hangs cannot hold the caller longer than ``seconds``.
    """
    result: list[bool] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=seconds):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=connect, daemon=True)
    worker.start()
    worker.join(seconds)
    return bool(result and result[0])


def require_hub(what: str, offline_alternatives: Iterable[str]):
    """Import ``datasets`` and check that the hub is reachable, or fail fast and clearly.

    Checks, in order: ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE``, that ``datasets`` is installed,
    and that the endpoint (``HF_ENDPOINT`` or huggingface.co) accepts a connection within a few
    seconds. Returns the ``datasets`` module.
    """
    alternatives = ", ".join(repr(a) for a in offline_alternatives)
    hint = f"Offline alternatives: {alternatives}."
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if _env_flag(flag):
            raise HubUnavailableError(
                f"{what} comes from the Hugging Face hub, but {flag} is set (offline mode). "
                f"{hint} Unset {flag} on a machine with network access to use {what}."
            )
    try:
        import datasets
    except ImportError as err:
        raise HubUnavailableError(
            f"{what} needs the 'datasets' package: pip install 'minibert[hub]'. {hint}"
        ) from err
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    # Behind a proxy the hub itself is not directly reachable; the proxy is what must answer.
    proxy = next(
        (
            os.environ[v]
            for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
            if os.environ.get(v)
        ),
        None,
    )
    if proxy and url.hostname not in ("127.0.0.1", "localhost"):
        url = urlparse(proxy if "://" in proxy else f"http://{proxy}")
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    if not _probe(host, port, _HUB_PROBE_SECONDS):
        raise HubUnavailableError(
            f"{what} comes from the Hugging Face hub, and {host}:{port} cannot be reached from "
            f"here (no answer within {_HUB_PROBE_SECONDS:.0f} s). {hint}"
        )
    return datasets


_HUB_HEADING = re.compile(r"^ ?= (?!=)(.*?) = ?$")
_HUB_SUBHEADING = re.compile(r"^ ?(?:= ){2,}(.*?)(?: =){2,} ?$")
_HUB_DETOKENIZE = (
    (re.compile(r" @([-,.])@ "), r"\1"),  # "1 @,@ 000" -> "1,000", "well @-@ known"
    (re.compile(r" ([.,;:!?%)\]}])"), r"\1"),
    (re.compile(r"([(\[{]) "), r"\1"),
    (re.compile(r" (n't|'t|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"),
)


def _detokenize_wikitext_line(line: str) -> str:
    """Undo WikiText's tokenisation where it is unambiguous (``@-@``, spaces before commas)."""
    line = " ".join(line.split())
    for pattern, replacement in _HUB_DETOKENIZE:
        line = pattern.sub(replacement, line)
    return line


def group_wikitext_lines(lines: Iterable[str], source: str) -> Iterator[Document]:
    """Group WikiText's line-per-paragraph stream into articles.

    WikiText (Merity et al. 2017) stores each article as lines: `` = Title = `` starts an article,
    `` = = Section = = `` (more ``=`` for deeper levels) a section, other non-blank lines are
    paragraphs. Headings become ``meta["headings"]``/``meta["paragraph_headings"]``, not text.
    """
    title: str | None = None
    paragraphs: list[str] = []
    headings: list[str] = []
    paragraph_headings: list[str | None] = []
    section: str | None = None
    count = 0

    def emit() -> Document:
        return Document(
            id=f"{source}-{count:07d}",
            title=title or f"{source} article {count + 1}",
            text="\n\n".join(paragraphs),
            source=source,
            meta={
                "markup": "plain",
                "headings": list(headings),
                "paragraph_headings": list(paragraph_headings),
            },
        )

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            continue
        sub = _HUB_SUBHEADING.match(line)
        if sub:
            section = _detokenize_wikitext_line(sub.group(1))
            headings.append(section)
            continue
        top = _HUB_HEADING.match(line)
        if top:
            if paragraphs:
                yield emit()
                count += 1
            title = _detokenize_wikitext_line(top.group(1))
            paragraphs, headings, paragraph_headings, section = [], [], [], None
            continue
        paragraphs.append(_detokenize_wikitext_line(line))
        paragraph_headings.append(section)
    if paragraphs:
        yield emit()


def _iter_hub_corpus(datasets, name: str, split: str, streaming: bool) -> Iterator[Document]:
    repo, config = _HUB_CORPORA[name]
    try:
        data = datasets.load_dataset(repo, config, split=split, streaming=streaming)
    except Exception as err:  # network, auth, missing split: all mean "not available here"
        raise HubUnavailableError(
            f"could not load {repo} ({config}, split {split!r}) from the hub: {err}. "
            f"Offline alternatives: {', '.join(OFFLINE_CORPORA)}."
        ) from err
    yield from group_wikitext_lines((row["text"] for row in data), name)


# --------------------------------------------------------------------------------------------
# The entry point


def _known_sources() -> str:
    known = ", ".join(f"{k!r} ({v})" for k, v in KNOWN_CORPORA.items())
    return (
        f"Known names: {known}; or pass the path of a .txt file, a .jsonl file with a 'text' "
        "field, or a folder of them."
    )


def _resolve(
    name_or_path: str | os.PathLike, raw_markup: bool, streaming: bool, split: str, errors: str
) -> tuple[str, Callable[[], Iterator[Document]]]:
    """Validate the request now (so errors surface before any iteration) and return a reader."""
    if errors not in ("strict", "replace", "ignore"):
        raise ValueError(f"errors must be 'strict', 'replace' or 'ignore', got {errors!r}")
    if isinstance(name_or_path, str) and name_or_path in KNOWN_CORPORA:
        name = name_or_path
        if name == "wiki-sample":
            path = gensim_test_data(WIKI_SAMPLE_FILE)
            return name, lambda: _iter_wiki_documents(path, name, raw_markup, not streaming)
        if name == "lee-news":
            gensim_test_data(LEE_NEWS_FILE)
            return name, _iter_lee_news
        datasets = require_hub(f"corpus {name!r}", OFFLINE_CORPORA)  # fail fast, right here
        return name, lambda: _iter_hub_corpus(datasets, name, split, streaming)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(
            f"load_corpus expects a corpus name or a path, got {type(name_or_path).__name__}"
        )
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_file() and path.name.endswith((".xml", ".xml.bz2", ".xml.gz")):
            label = str(path)
            return label, lambda: _iter_wiki_documents(path, label, raw_markup, not streaming)
        _local_files(path)  # validates the suffix / that a folder holds corpus files
        return str(path), lambda: _iter_local(path, errors)
    looks_like_path = os.sep in str(name_or_path) or path.suffix in (*_LOCAL_SUFFIXES, ".xml")
    if looks_like_path:
        raise FileNotFoundError(
            f"corpus file or folder {str(path)!r} does not exist. {_known_sources()}"
        )
    raise ValueError(f"unknown corpus {name_or_path!r}. {_known_sources()}")


def _limited(documents: Iterator[Document], limit: int | None, label: str) -> Iterator[Document]:
    count = 0
    for document in documents:
        if limit is not None and count >= limit:
            return
        count += 1
        yield document
    if count == 0:
        raise EmptyCorpusError(
            f"corpus {label!r} holds no documents with text (empty file, or only blank lines)"
        )


def load_corpus(
    name_or_path: str | os.PathLike,
    *,
    raw_markup: bool = False,
    streaming: bool = False,
    limit: int | None = None,
    split: str = "train",
    errors: str = "strict",
) -> list[Document] | Iterator[Document]:
    """Load a corpus as documents: a known name (see ``KNOWN_CORPORA``) or a local path.

    Args:
        name_or_path: ``"wiki-sample"`` (the default offline corpus), ``"lee-news"``,
            ``"wikitext-2"``, ``"wikitext-103"``, a MediaWiki ``.xml[.bz2]`` export, a ``.txt``
            or ``.jsonl`` file, or a folder of ``.txt``/``.jsonl`` files.
        raw_markup: for wiki sources, keep the raw wikitext in ``Document.text`` (the cleaning
            step then calls :func:`minibert.data.wikitext.parse_wikitext` itself and reports what
            markup removal did). Other sources have no markup and ignore it.
        streaming: return an iterator that reads (and, for wiki sources, parses) one document at
            a time instead of a list, so WikiText-103 need not fit in memory.
        limit: stop after this many documents.
        split: the split of a hub corpus (``"train"``, ``"validation"``, ``"test"``).
        errors: what to do with bytes that are not UTF-8 in local files: ``"strict"`` raises
            :class:`CorpusEncodingError` (file and byte offset), ``"replace"``, ``"ignore"``.

    Raises:
        ValueError: unknown name (the message lists the known ones), unsupported file type.
        EmptyCorpusError: the source holds no documents.
        HubUnavailableError: a hub corpus while offline (raised at once, not on iteration).
        ModuleNotFoundError: gensim (offline corpora) or datasets (hub corpora) missing.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int or None, got {limit!r}")
    label, reader = _resolve(name_or_path, raw_markup, streaming, split, errors)
    documents = _limited(reader(), limit, label)
    if streaming:
        return documents
    return list(documents)
