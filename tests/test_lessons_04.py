"""Lesson 04 (pretraining data): the references agree with minibert.data, and the notebook's
helpers (planting and finding duplicates, LSH, the web-like documents, the ablation arms) do
what they say.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import random

import pytest

from minibert.data import dedup, filters
from minibert.data.clean import CleaningConfig, clean_corpus
from minibert.data.corpora import load_corpus
from minibert.lessons import lesson04
from minibert.lessons.checking import get_exercise, run_check


@pytest.fixture(scope="module")
def news_texts():
    """300 real news articles from gensim's wheel (read in place, offline)."""
    return [doc.text for doc in load_corpus("lee-news")]


def test_jaccard_reference_matches_the_library(news_texts):
    rng = random.Random(0)
    pairs = [(a, b, "") for a, b, _ in lesson04.JACCARD_CASES]
    pairs += [(rng.choice(news_texts), rng.choice(news_texts), "") for _ in range(30)]
    pairs += [(t, lesson04.edit_words(t, 0.05, rng), "") for t in news_texts[:20]]
    for a, b, _ in pairs:
        expected = dedup.jaccard(dedup.shingles(a, 5), dedup.shingles(b, 5))
        assert lesson04.solution_shingle_jaccard(a, b) == pytest.approx(expected)


def test_stop_word_reference_matches_the_library_rule(news_texts):
    texts = [text for text, _ in lesson04.STOP_WORD_CASES]
    texts += [" ".join(t.split()[:6]) for t in news_texts[:100]]  # short ones: some fail
    outcomes = set()
    for text in texts:
        for k in (1, 2, 3):
            library = filters.too_few_stop_words(filters.TextFeatures(text), k) is not None
            assert lesson04.solution_too_few_stop_words(text, k) == library, (text, k)
            outcomes.add(library)
    assert outcomes == {True, False}


def test_minhash_agreement_estimates_jaccard():
    params = lesson04.hash_params(256, seed=2)
    a = {f"x{i}" for i in range(400)}
    for overlap in (0, 100, 300, 400):
        b = {f"x{i}" for i in range(400 - overlap, 800 - overlap)}
        true = dedup.jaccard(a, b)
        estimate = lesson04.estimate_jaccard(
            lesson04.solution_minhash(a, params), lesson04.solution_minhash(b, params)
        )
        assert abs(estimate - true) < 0.1, (overlap, true, estimate)
    with pytest.raises(ValueError, match="different lengths"):
        lesson04.estimate_jaccard([1, 2], [1])


def test_band_probability_and_candidates():
    assert lesson04.band_probability(1.0, 4, 16) == 1.0
    assert lesson04.band_probability(0.0, 4, 16) == 0.0
    assert lesson04.band_probability(0.5, 4, 16) == pytest.approx(1 - (1 - 0.5**4) ** 16)
    signatures = [[1, 2, 3, 4], [1, 2, 9, 9], [7, 8, 3, 4], [5, 5, 5, 5]]
    assert lesson04.lsh_candidates(signatures, bands=2, rows=2) == {(0, 1), (0, 2)}
    with pytest.raises(ValueError, match="bands"):
        lesson04.lsh_candidates(signatures, bands=3, rows=2)


def test_planted_duplicates_are_where_they_say(news_texts):
    texts = news_texts[:30]
    planted_texts, planted = lesson04.plant_duplicates(texts, copies=8, seed=1)
    assert len(planted_texts) == len(texts) + 8
    originals = [t for i, t in enumerate(planted_texts) if i not in {c.index for c in planted}]
    assert originals == texts  # the originals keep their order
    for copy in planted:
        assert copy.original < copy.index
        similarity = dedup.jaccard(
            dedup.shingles(planted_texts[copy.original]), dedup.shingles(planted_texts[copy.index])
        )
        if copy.kind.startswith("exact"):
            assert dedup.exact_key(planted_texts[copy.index]) == dedup.exact_key(
                planted_texts[copy.original]
            )
        assert similarity > 0.3, copy


def test_minhash_and_lsh_find_planted_copies(news_texts):
    texts, planted = lesson04.plant_duplicates(news_texts[:40], copies=4, seed=0)
    params = lesson04.hash_params(64, seed=1)
    signatures = [lesson04.solution_minhash(dedup.shingles(t), params) for t in texts]
    candidates = lesson04.lsh_candidates(signatures, 16, 4)
    exact = next(c for c in planted if c.kind.startswith("exact"))
    light = next(c for c in planted if "1%" in c.kind)
    assert (exact.original, exact.index) in candidates
    assert (light.original, light.index) in candidates
    # Unrelated news articles almost never collide.
    assert len(candidates) < 20


def test_web_like_documents_each_trip_a_rule():
    docs = lesson04.web_like_documents()
    cleaned = clean_corpus(docs, CleaningConfig(max_examples=50))
    verdicts = lesson04.what_removed(cleaned.reports, [d.id for d in docs])
    assert verdicts["web-boilerplate"].startswith("kept; boilerplate_lines")
    expected = {
        "web-lorem": "contains_lorem_ipsum",
        "web-code": "contains_curly_bracket",
        "web-numbers": "too_many_digits",
        "web-repeated-lines": "too_many_duplicate_lines",
        "web-keywords": "too_few_stop_words",
        "web-short": "too_few_sentences",
    }
    for doc_id, step in expected.items():
        assert verdicts[doc_id].startswith(f"removed by {step}"), verdicts[doc_id]


def test_removal_rows_and_figure():
    cleaned = clean_corpus(lesson04.web_like_documents(), CleaningConfig())
    rows = lesson04.removal_rows(cleaned.reports)
    assert {r["step"] for r in rows} >= {"contains_lorem_ipsum", "too_many_digits"}
    assert all(r["docs removed"] >= 0 for r in rows)
    fig = lesson04.reports_figure(cleaned.reports)
    assert len(fig.data) == 2 and len(fig.data[0].x) == len(cleaned.reports) + 1


def test_duplicated_corpus_is_undone_by_dedup(news_texts):
    texts = news_texts[:40]
    duplicated, repeated = lesson04.duplicated_corpus(texts, share_of_documents=0.1, copies_each=4)
    assert len(repeated) == 4 and len(duplicated) == 40 + 16
    kept, n_exact, n_near = lesson04.deduplicate(duplicated)
    # Every exact copy goes; a 1% edit of a short news article can fall below 0.8 (MinHash
    # estimate), so most but not necessarily all near copies do.
    assert n_exact == 8 and 6 <= n_near <= 8
    assert len(kept) == 40 + (8 - n_near)
    assert [t for t in kept if t in texts] == texts  # the originals are kept, in order


def test_raw_training_texts_leave_out_validation():
    class Doc:
        def __init__(self, id_, text):
            self.id, self.text = id_, text

    docs = [Doc("a", "x"), Doc("b", "y"), Doc("c", "z")]
    assert lesson04.raw_training_texts(docs, {"b"}) == [("a", "x"), ("c", "z")]


def test_train_arm_measures_on_the_shared_held_out_set(cache_dir):
    from minibert.data.pipeline import DataConfig, prepare_data

    # The small news corpus (as conftest's micro run): the held-out set comes from its split.
    data = prepare_data(DataConfig(corpus="lee-news", vocab_size=1000), cache_dir, progress=False)
    config = lesson04.ablation_config(2, batch_size=4, eval_examples=8)
    texts = [doc.text for doc in data.train_documents[:3]]
    first = lesson04.train_arm("a", lesson04.encode_texts(texts, data.tokenizer), data, config)
    assert first.steps == 2 and first.documents == 3 and first.held_out["examples"] == 8
    assert 0.0 <= first.held_out["mlm_accuracy"] <= 1.0
    again = lesson04.train_arm("a", lesson04.encode_texts(texts, data.tokenizer), data, config)
    assert again.held_out["mlm_loss"] == pytest.approx(first.held_out["mlm_loss"])  # seeded
    assert first.seed == 0
    other = lesson04.train_arm(
        "a",
        lesson04.encode_texts(texts, data.tokenizer),
        data,
        lesson04.ablation_config(2, batch_size=4, eval_examples=8, seed=1),
    )
    assert other.seed == 1
    b = lesson04.ArmResult("b", 1, 10, 5, 2, 0.1, {"mlm_loss": 5.0, "mlm_accuracy": 0.25})
    c = lesson04.ArmResult("b", 1, 10, 5, 2, 0.1, {"mlm_loss": 7.0, "mlm_accuracy": 0.15}, seed=1)
    table = lesson04.ablation_table([first, other, b, c])
    header, row_a, row_b = table.splitlines()
    assert "acc s0" in header and "acc s1" in header and "mean acc" in header
    assert row_a.startswith("a ") and row_b.startswith("b ")
    assert row_b.split()[-4:] == ["6.000", "25.0%", "15.0%", "20.0%"]  # mean loss, seeds, mean
    figure = lesson04.ablation_figure([first, other, b, c])
    assert list(figure.data[0].x) == ["a", "b"] and len(figure.data[1].x) == 4
    assert figure.data[0].y[1] == pytest.approx(0.20)


def test_the_checks_name_their_mistakes():
    ex = get_exercise("shingle_jaccard", "minibert.lessons.lesson04")
    outcome = run_check(ex, lesson04._jaccard_over_smaller_set)
    assert outcome.mistake == "intersection over the smaller set (not the union)"
    assert "|A | B|" in outcome.text
