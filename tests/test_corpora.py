"""Corpora: the embedded Wikipedia excerpt and news, local files, hub names offline, clear errors."""

import json
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from minibert.data import KNOWN_CORPORA, Document, load_corpus
from minibert.data.corpora import (
    WIKI_SAMPLE_FILE,
    CorpusEncodingError,
    EmptyCorpusError,
    HubUnavailableError,
    gensim_test_data,
    group_wikitext_lines,
    iter_wiki_pages,
)

LEFTOVER_MARKUP = ["{{", "}}", "[[", "]]", "<ref", "</ref>", "&nbsp;", "&amp;", "|-", "{|", "|}",
                   "File:", "Image:", "Category:", "thumb|", "''", "<!--", "__TOC__"]  # fmt: skip


@pytest.fixture(scope="module")
def wiki_docs() -> list[Document]:
    return load_corpus("wiki-sample")  # parsed once per process (cached in corpora)


def test_the_export_streams_all_pages_with_redirects_marked():
    pages = list(iter_wiki_pages(gensim_test_data(WIKI_SAMPLE_FILE)))
    assert len(pages) == 206
    kinds = Counter((page.namespace, page.is_redirect) for page in pages)
    assert kinds == {(0, False): 106, (0, True): 99, (4, True): 1}
    redirect = next(page for page in pages if page.title == "AccessibleComputing")
    assert redirect.redirect == "Computer accessibility" and not redirect.is_article
    anarchism = next(page for page in pages if page.title == "Anarchism")
    assert anarchism.id == "12" and "'''Anarchism'''" in anarchism.wikitext


def test_wiki_sample_is_about_a_hundred_articles_of_clean_prose(wiki_docs):
    assert len(wiki_docs) == 106
    assert len({d.id for d in wiki_docs}) == 106
    assert all(d.source == "wiki-sample" and d.meta["markup"] == "plain" for d in wiki_docs)
    titles = {d.title for d in wiki_docs}
    assert "AccessibleComputing" not in titles and "Anarchism" in titles  # no redirects
    words = sum(len(d.text.split()) for d in wiki_docs)
    assert 350_000 < words < 550_000
    for doc in wiki_docs:
        for marker in LEFTOVER_MARKUP:
            assert marker not in doc.text, (doc.title, marker)
        assert not doc.text.lstrip().upper().startswith("#REDIRECT")


def test_headings_are_kept_as_structure_not_as_text(wiki_docs):
    alabama = next(d for d in wiki_docs if d.title == "Alabama")
    paragraphs = alabama.text.split("\n\n")
    assert len(paragraphs) == len(alabama.meta["paragraph_headings"])
    assert len(paragraphs) == len(alabama.meta["paragraph_kinds"])
    assert "Etymology" in alabama.meta["headings"]
    assert "Etymology" not in paragraphs and "History" not in paragraphs
    first = alabama.meta["paragraph_headings"].index("Etymology")
    assert paragraphs[first].startswith("The European-American naming of the Alabama River")
    assert alabama.meta["paragraph_headings"][0] is None  # the lead has no heading
    assert "References" not in alabama.meta["headings"]  # boilerplate section dropped


def test_raw_markup_keeps_the_wikitext_for_the_cleaning_report():
    raw = load_corpus("wiki-sample", raw_markup=True)
    assert len(raw) == 106
    assert all(d.meta["markup"] == "wikitext" for d in raw)
    anarchism = next(d for d in raw if d.title == "Anarchism")
    assert "[[" in anarchism.text and "<ref" in anarchism.text


def test_streaming_returns_an_iterator_and_limit_stops_early():
    stream = load_corpus("wiki-sample", streaming=True, limit=3)
    assert isinstance(stream, Iterator)
    docs = list(stream)
    assert [d.title for d in docs] == ["Anarchism", "Autism", "Albedo"]
    assert "[[" not in docs[0].text
    assert len(load_corpus("lee-news", limit=5)) == 5


def test_lee_news_is_300_articles():
    docs = load_corpus("lee-news")
    assert len(docs) == 300
    assert all(d.source == "lee-news" and len(d.text.split()) > 20 for d in docs)
    assert docs[0].text.startswith("Hundreds of people have been forced to vacate their homes")


def test_a_txt_file_holds_documents_separated_by_blank_lines(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("First doc, line one.\nLine two.\n\n\nSecond doc.\n  \nThird doc.\n")
    docs = load_corpus(path)
    assert [d.text for d in docs] == [
        "First doc, line one.\nLine two.",
        "Second doc.",
        "Third doc.",
    ]
    assert docs[0].title == "notes" and docs[1].title == "notes #2"
    assert docs[0].source == str(path) and docs[2].meta["line"] == 7


def test_a_jsonl_file_needs_a_text_field(tmp_path):
    path = tmp_path / "docs.jsonl"
    rows = [{"text": "Alpha text.", "title": "Alpha"}, {"text": "Beta text.", "id": "b-1"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = load_corpus(str(path))
    assert [(d.title, d.text) for d in docs] == [
        ("Alpha", "Alpha text."),
        ("docs #2", "Beta text."),
    ]
    assert docs[1].id == "b-1"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(
        ValueError, match=r"bad\.jsonl:2: expected a JSON object with a string 'text'"
    ):
        load_corpus(bad)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"}\n{"text": \n')
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: not valid JSON"):
        load_corpus(broken)


def test_a_folder_reads_its_txt_and_jsonl_files_recursively(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_text("From a.\n")
    (tmp_path / "b" / "c.jsonl").write_text(json.dumps({"text": "From c."}) + "\n")
    (tmp_path / "ignored.csv").write_text("x,y\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "d.txt").write_text("Hidden.\n")
    docs = load_corpus(tmp_path)
    assert [d.text for d in docs] == ["From a.", "From c."]
    assert [d.id for d in docs] == ["a.txt:0", "b/c.jsonl:0"]
    assert list(load_corpus(tmp_path, streaming=True)) == docs


def test_a_file_that_is_not_utf8_names_the_file_and_byte_offset(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"First line.\nCaf" + b"\xe9 au lait.\n")
    with pytest.raises(CorpusEncodingError) as info:
        load_corpus(path)
    assert info.value.offset == len(b"First line.\nCaf") and info.value.path == path
    assert str(path) in str(info.value) and "byte offset 15" in str(info.value)
    assert "errors='replace'" in str(info.value)
    assert load_corpus(path, errors="replace")[0].text == "First line.\nCaf\ufffd au lait."
    assert load_corpus(path, errors="ignore")[0].text == "First line.\nCaf au lait."
    with pytest.raises(ValueError, match="errors must be"):
        load_corpus(path, errors="surrogateescape")


def test_empty_sources_are_an_error_not_an_empty_list(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n\n")
    with pytest.raises(EmptyCorpusError, match="holds no documents"):
        load_corpus(empty)
    with pytest.raises(EmptyCorpusError, match="holds no documents"):
        list(load_corpus(empty, streaming=True))
    folder = tmp_path / "nothing"
    folder.mkdir()
    (folder / "readme.md").write_text("# not a corpus file\n")
    with pytest.raises(EmptyCorpusError, match="without .txt or .jsonl files"):
        load_corpus(folder)


def test_unknown_names_and_paths_list_what_is_known(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus 'wikipedia'") as info:
        load_corpus("wikipedia")
    for name in KNOWN_CORPORA:
        assert repr(name) in str(info.value)
    with pytest.raises(FileNotFoundError, match="does not exist.*'wiki-sample'"):
        load_corpus(tmp_path / "missing.txt")
    unsupported = tmp_path / "data.csv"
    unsupported.write_text("a,b\n")
    with pytest.raises(ValueError, match="unsupported corpus file type '.csv'"):
        load_corpus(unsupported)
    with pytest.raises(ValueError, match="limit must be a positive int"):
        load_corpus("lee-news", limit=0)


@pytest.mark.parametrize("name", ["wikitext-2", "wikitext-103"])
def test_hub_corpora_fail_fast_offline_and_name_the_offline_ones(name, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # the datasets flag alone is enough
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError) as info:
        load_corpus(name, streaming=True)  # fails at the call, not on first iteration
    assert time.perf_counter() - started < 2.0
    assert "'wiki-sample'" in str(info.value) and "'lee-news'" in str(info.value)
    assert "HF_DATASETS_OFFLINE" in str(info.value)


def test_an_unreachable_hub_fails_within_seconds(monkeypatch):
    pytest.importorskip("datasets")
    import datasets  # noqa: F401  (imported here so the timing below is the probe alone)

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError, match="cannot be reached.*'wiki-sample'"):
        load_corpus("wikitext-103")
    assert time.perf_counter() - started < 5.0


def test_wikitext_lines_are_grouped_into_articles():
    lines = [
        "",
        " = Valkyria Chronicles III = \n",
        "",
        " Senjō no Valkyria 3 is a tactical role @-@ playing game , released in 2011 . \n",
        " = = Gameplay = = \n",
        " It costs 1 @,@ 000 yen ( about 10 @.@ 5 dollars ) . \n",
        " = = = Plot = = = \n",
        " The squad doesn 't win . \n",
        " = Tower Building = \n",
        " The building is tall . \n",
    ]
    docs = list(group_wikitext_lines(lines, "wikitext-2"))
    assert [d.title for d in docs] == ["Valkyria Chronicles III", "Tower Building"]
    assert docs[0].text.split("\n\n") == [
        "Senjō no Valkyria 3 is a tactical role-playing game, released in 2011.",
        "It costs 1,000 yen (about 10.5 dollars).",
        "The squad doesn't win.",
    ]
    assert docs[0].meta["headings"] == ["Gameplay", "Plot"]
    assert docs[0].meta["paragraph_headings"] == [None, "Gameplay", "Plot"]
    assert docs[1].id == "wikitext-2-0000001"


def test_missing_gensim_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gensim", None)  # importlib then reports it as absent
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'gensim>=4\.3'"):
        load_corpus("lee-news")


def test_documents_are_frozen_and_hashable():
    doc = Document("x", "X", "text", "test", {"markup": "plain"})
    with pytest.raises(AttributeError):
        doc.text = "changed"  # type: ignore[misc]
    assert hash(doc) == hash(Document("x", "X", "text", "test", {"other": 1}))


def test_a_malformed_or_truncated_wiki_dump_names_the_file(tmp_path):
    # Issue 13: ElementTree's ParseError (a SyntaxError) and bz2's EOFError used to reach the
    # command line as tracebacks without the file's name.
    import bz2

    from minibert.data.corpora import CorpusFormatError

    whole = gensim_test_data(WIKI_SAMPLE_FILE).read_bytes()
    if WIKI_SAMPLE_FILE.endswith(".bz2"):
        whole = bz2.decompress(whole)
    cut = tmp_path / "cut.xml"
    cut.write_bytes(whole[: len(whole) // 3])
    with pytest.raises(CorpusFormatError, match=r"cut\.xml is not a well-formed MediaWiki XML"):
        list(iter_wiki_pages(cut))
    archive = tmp_path / "cut.xml.bz2"
    archive.write_bytes(bz2.compress(whole)[:5000])
    with pytest.raises(CorpusFormatError, match=r"cut\.xml\.bz2 cannot be decompressed"):
        load_corpus(archive)
