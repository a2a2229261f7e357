"""The cached end-to-end data pipeline: wiki-sample cold and warm, cache keys, damage, bad input.

The wiki-sample run (tens of seconds cold) happens once per module; the cache-behaviour tests
use a small generated .jsonl corpus so each rebuild takes about a second.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from minibert.data import pipeline
from minibert.data.clean import CleaningConfig
from minibert.data.pipeline import (
    DataConfig,
    PreparedData,
    default_cache_dir,
    prepare_corpus,
    prepare_data,
)

# --- the real corpus, once ----------------------------------------------------------------


@pytest.fixture(scope="module")
def wiki_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("minibert-cache")


@pytest.fixture(scope="module")
def wiki_cold(wiki_cache) -> PreparedData:
    return prepare_data(DataConfig(), cache_dir=wiki_cache, progress=False)


@pytest.fixture(scope="module")
def wiki_warm(wiki_cold, wiki_cache) -> PreparedData:
    return prepare_data(DataConfig(), cache_dir=wiki_cache, progress=False)


def test_wiki_sample_cold_run(wiki_cold, wiki_cache):
    data = wiki_cold
    assert not data.from_cache
    # Every stage was timed.
    for stage in ("load", "parse_wikitext", "clean", "split", "train_tokenizer", "encode", "total"):
        assert data.timings[stage] >= 0.0
    # The wikitext step comes first, then the cleaning chain; the reports add up.
    names = [r.name for r in data.reports]
    assert names[0] == "wikitext" and names[1] == "normalize" and names[-1] == "near_dedup"
    for before, after in zip(data.reports, data.reports[1:], strict=False):
        assert before.docs_out == after.docs_in
    for report in data.reports:
        assert (
            report.docs_in - report.docs_out
            == report.docs_removed
            == sum(report.reason_counts.values())
        )
    wikitext = data.reports[0]
    assert wikitext.docs_in == 106  # the articles of the excerpt (redirects dropped by the loader)
    assert wikitext.edit_counts["refs"] > 1000 and wikitext.edit_counts["templates"] > 100
    kept = data.reports[-1].docs_out
    assert kept == len(data.train_documents) + len(data.valid_documents)
    assert 80 <= kept <= 106
    assert len(data.valid_documents) == round(0.1 * kept)
    # Statistics before and after.
    assert data.stats["cleaned"].documents == kept
    assert data.stats["parsed"].words > data.stats["cleaned"].words > 300_000
    assert data.stats["train"].words + data.stats["valid"].words == data.stats["cleaned"].words
    # Tokenizer trained on the training split, saved as standard HF files.
    assert len(data.tokenizer) == 8192
    assert (data.tokenizer_path / "tokenizer.json").is_file()
    assert (data.tokenizer_path / "vocab.txt").is_file()
    assert data.tokenizer_report.unk_word_rate < 0.01
    # ids mirror the sentence structure and decode back to the text.
    assert [len(doc) for doc in data.train_ids] == [len(doc) for doc in data.train_sentences]
    sentence = data.train_sentences[0][0]
    decoded = data.tokenizer.decode(data.train_ids[0][0])
    assert (
        decoded.split()[:3] == sentence.lower().split()[:3] or decoded[:10] == sentence.lower()[:10]
    )
    # Nothing temporary is left behind.
    assert not [p for p in wiki_cache.rglob(".tmp-*")]
    assert (
        len(data.fingerprint)
        == len(data.corpus_fingerprint)
        == len(data.tokenizer_fingerprint)
        == 32
    )


def test_wiki_sample_warm_run_hits_the_cache(wiki_cold, wiki_warm):
    warm = wiki_warm
    assert warm.from_cache
    assert "load_data_cache" in warm.timings and "train_tokenizer" not in warm.timings
    assert warm.timings["total"] < 5.0
    assert warm.fingerprint == wiki_cold.fingerprint
    assert warm.corpus_fingerprint == wiki_cold.corpus_fingerprint
    assert warm.tokenizer_fingerprint == wiki_cold.tokenizer_fingerprint
    assert warm.train_ids == wiki_cold.train_ids and warm.valid_ids == wiki_cold.valid_ids
    assert warm.train_documents == wiki_cold.train_documents
    assert warm.train_sentences == wiki_cold.train_sentences
    assert warm.reports == wiki_cold.reports
    assert warm.stats == wiki_cold.stats
    assert warm.tokenizer.get_vocab() == wiki_cold.tokenizer.get_vocab()
    text = "The albedo of snow is high."
    assert warm.tokenizer(text)["input_ids"] == wiki_cold.tokenizer(text)["input_ids"]
    info = warm.run_info()
    assert info["data_fingerprint"] == warm.fingerprint and info["train_tokens"] > 400_000
    summary = warm.summary()
    assert (
        "what each step removed" in summary and "near_dedup" in summary and "cache hit" in summary
    )


# --- a small local corpus for cache behaviour ---------------------------------------------

_WORDS = str.split(
    "river mountain harbour village council market engine garden winter summer castle railway "
    "bridge forest island school church museum station factory library theatre valley coast "
    "desert meadow orchard quarry canal tower palace temple harvest festival merchant soldier"
)


def write_corpus(path: Path, n_docs: int = 24, seed: int = 0, sentences_per_doc: int = 12) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(n_docs):
            sentences = [
                f"The {' '.join(rng.choices(_WORDS, k=rng.randint(5, 10)))} was built near the {rng.choice(_WORDS)} and the {rng.choice(_WORDS)}."
                for _ in range(sentences_per_doc)
            ]
            handle.write(
                json.dumps({"id": f"doc-{i}", "title": f"Doc {i}", "text": " ".join(sentences)})
                + "\n"
            )
    return path


def small_config(corpus: Path, **overrides) -> DataConfig:
    settings = {"corpus": str(corpus), "vocab_size": 200, "max_seq_len": 32, "min_frequency": 1}
    settings.update(overrides)
    return DataConfig(**settings)


@pytest.fixture
def small_corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "small.jsonl")


def test_same_settings_hit_and_changed_settings_miss(small_corpus, tmp_path):
    cache = tmp_path / "cache"
    first = prepare_data(small_config(small_corpus), cache, progress=False)
    assert not first.from_cache and first.reports[0].name == "normalize"  # no wikitext step
    again = prepare_data(small_config(small_corpus), cache, progress=False)
    assert again.from_cache and again.fingerprint == first.fingerprint

    # A tokenizer setting: new data entry, but the cleaned corpus is reused.
    bigger = prepare_data(small_config(small_corpus, vocab_size=260), cache, progress=False)
    assert not bigger.from_cache and bigger.fingerprint != first.fingerprint
    assert bigger.corpus_key == first.corpus_key
    assert "load_corpus_cache" in bigger.timings and "clean" not in bigger.timings

    # A cleaning setting: a new corpus entry too.
    stricter = small_config(small_corpus, cleaning=CleaningConfig(min_words=100))
    changed = prepare_data(stricter, cache, progress=False)
    assert not changed.from_cache and changed.corpus_key != first.corpus_key
    assert "clean" in changed.timings

    # The source's content: a changed file misses.
    write_corpus(small_corpus, seed=1)
    edited = prepare_data(small_config(small_corpus), cache, progress=False)
    assert not edited.from_cache and edited.corpus_key != first.corpus_key
    assert len(list((cache / "corpus").iterdir())) == 3
    assert len(list((cache / "data").iterdir())) == 4


@pytest.mark.parametrize(
    "damaged_file", ["corpus/train.jsonl", "data/train_tokens.npy", "corpus/manifest.json"]
)
def test_damaged_cache_entry_is_rebuilt_with_a_warning(
    small_corpus, tmp_path, caplog, damaged_file
):
    cache = tmp_path / "cache"
    config = small_config(small_corpus)
    first = prepare_data(config, cache, progress=False)
    stage, name = damaged_file.split("/")
    entry = first.corpus_cache_path if stage == "corpus" else first.cache_path
    target = entry / name
    target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])  # a torn write

    with caplog.at_level(logging.WARNING, logger="minibert.data.pipeline"):
        rebuilt = prepare_data(config, cache, progress=False)
    assert any(
        "damaged" in record.message and "rebuilding" in record.message for record in caplog.records
    )
    # The damaged entry was rebuilt (the other one is reused).
    assert ("clean" if stage == "corpus" else "train_tokenizer") in rebuilt.timings
    assert rebuilt.train_documents == first.train_documents
    assert rebuilt.train_sentences == first.train_sentences
    # Same structure. (Not necessarily the same ids: the `tokenizers` WordPiece trainer breaks
    # frequency ties in an order that can change from run to run, so a retrained vocabulary
    # may differ slightly -- one reason the cache keeps the tokenizer with its ids.)
    assert [len(doc) for doc in rebuilt.train_ids] == [len(doc) for doc in first.train_ids]
    assert prepare_data(config, cache, progress=False).from_cache  # the rebuilt entry is whole


def test_killed_write_leaves_no_entry(small_corpus, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    config = small_config(small_corpus)

    def crash(folder, data):
        (folder / "train_tokens.npy").write_bytes(b"partial")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(pipeline, "_write_data_entry", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_data(config, cache, progress=False)
    assert list((cache / "data").iterdir()) == []  # no entry, no temporary folder
    monkeypatch.undo()
    data = prepare_data(config, cache, progress=False)
    assert not data.from_cache and (data.cache_path / "manifest.json").is_file()


def test_leftovers_of_a_killed_run_are_swept(small_corpus, tmp_path):
    import os
    import time

    cache = tmp_path / "cache"
    stale = cache / "data" / ".tmp-abc-1-deadbeef"
    fresh = cache / "data" / ".tmp-def-2-cafef00d"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "train_tokens.npy").write_bytes(b"partial")
    day_ago = time.time() - 2 * 24 * 3600
    os.utime(stale, (day_ago, day_ago))
    prepare_data(small_config(small_corpus), cache, progress=False)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a run still writing


def test_empty_corpus_is_a_clear_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no documents"):
        prepare_data(small_config(empty), tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / "corpus").exists() or not any(
        (tmp_path / "cache" / "corpus").iterdir()
    )


def test_corpus_emptied_by_cleaning_is_a_clear_error(small_corpus, tmp_path):
    config = small_config(
        small_corpus, cleaning=CleaningConfig(min_words=10_000, max_words=100_000)
    )
    with pytest.raises(
        ValueError, match=r"(?s)cleaning kept 0 of 24 documents.*too_few_words +24 +0 +24"
    ):
        prepare_corpus(config, tmp_path / "cache", progress=False)


def test_corpus_too_small_for_one_sequence_is_a_clear_error(tmp_path):
    tiny = write_corpus(tmp_path / "tiny.jsonl", n_docs=3, sentences_per_doc=5)
    config = small_config(tiny, max_seq_len=512, vocab_size=100)
    with pytest.raises(ValueError, match="too few for a single sequence of max_seq_len=512"):
        prepare_data(config, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache" / "data").exists() or not any(
        (tmp_path / "cache" / "data").iterdir()
    )


def test_data_config_validation_and_round_trip():
    config = DataConfig(corpus="lee-news", vocab_size=1000, cleaning={"min_words": 20})
    assert config.cleaning == CleaningConfig(min_words=20)
    assert DataConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown DataConfig fields"):
        DataConfig.from_dict({"vocab": 3})
    with pytest.raises(ValueError, match="valid_fraction"):
        DataConfig(valid_fraction=1.0)
    with pytest.raises(ValueError, match="vocab_size"):
        DataConfig(vocab_size=4)
    with pytest.raises(TypeError, match="DataConfig"):
        prepare_data({"corpus": "wiki-sample"})  # type: ignore[arg-type]


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIBERT_CACHE", str(tmp_path / "here"))
    assert default_cache_dir() == tmp_path / "here"
    monkeypatch.delenv("MINIBERT_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "minibert"


def test_two_processes_needing_one_entry_build_it_once(small_corpus, tmp_path, monkeypatch):
    """The second waits on the entry's lock, then reads what the first wrote."""
    import threading
    import time

    cache = tmp_path / "cache"
    config = small_config(small_corpus)
    builds = []
    real_build = pipeline._build_corpus

    def slow_build(*args, **kwargs):
        builds.append(threading.get_ident())
        time.sleep(1.0)  # long enough for the other caller to arrive while this one builds
        return real_build(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_build_corpus", slow_build)
    results, errors = [], []

    def prepare():
        try:
            results.append(prepare_corpus(config, cache, progress=False))
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    # Each thread opens the lock file itself, and flock excludes separate opens even within one
    # process, so two threads stand in for two processes (or two machines sharing the folder).
    threads = [threading.Thread(target=prepare) for _ in range(2)]
    for thread in threads:
        thread.start()
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and len(results) == 2
    assert len(builds) == 1
    assert sorted(r.from_cache for r in results) == [False, True]
    assert results[0].fingerprint == results[1].fingerprint


def test_a_complete_entry_is_never_replaced_by_an_identical_one(small_corpus, tmp_path):
    cache = tmp_path / "cache"
    config = small_config(small_corpus)
    first = prepare_corpus(config, cache, progress=False)
    inode = first.cache_path.stat().st_ino
    # A process that found no entry when it looked, and built one meanwhile, must keep the
    # complete entry it finds when it gets the lock (a reader may be using it).
    value, built = pipeline._load_or_build(
        first.cache_path,
        read=lambda: pipeline._read_corpus_entry(first.cache_path, config),
        build=lambda folder: pytest.fail("rebuilt an entry that was complete"),
        refresh=False,
    )
    assert not built and value.fingerprint == first.fingerprint
    assert first.cache_path.stat().st_ino == inode


def test_a_killed_cache_swap_is_restored(small_corpus, tmp_path, monkeypatch):
    """A rebuild (refresh) killed between its two renames: the old entry comes back."""
    cache = tmp_path / "cache"
    config = small_config(small_corpus)
    first = prepare_corpus(config, cache, progress=False)
    aside = first.cache_path.parent / f".old-{first.cache_path.name}-12345"
    first.cache_path.rename(aside)  # what the kill leaves (the crash itself: test_train_rundir)
    again = prepare_corpus(config, cache, progress=False)
    assert again.from_cache and again.cache_path.is_dir() and not aside.exists()
