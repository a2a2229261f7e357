"""Exact and near-duplicate removal (MinHash LSH) and its report."""

from __future__ import annotations

import random

import pytest

from minibert.data.clean import CleaningConfig, clean_corpus
from minibert.data.dedup import (
    exact_duplicates,
    exact_key,
    jaccard,
    minhash_signature,
    near_duplicates,
    shingles,
)

_VOCABULARY = str.split(
    "river mountain harbour village council market engine garden winter summer castle "
    "railway bridge forest island school church museum station factory library theatre "
    "valley coast desert meadow orchard quarry canal tower palace temple harvest festival "
    "merchant soldier farmer teacher painter sailor doctor miner weaver baker builder "
    "ancient modern northern southern eastern western quiet busy narrow broad famous rare"
)


def random_document(seed: int, n_sentences: int = 30) -> str:
    """A distinct document of plain sentences (about 300 words) from a seeded generator."""
    rng = random.Random(seed)
    sentences = []
    for _ in range(n_sentences):
        words = rng.choices(_VOCABULARY, k=rng.randint(6, 12))
        sentences.append("The " + " ".join(words) + " was seen at the edge of the town.")
    return " ".join(sentences)


def lightly_edited(text: str, n_edits: int, seed: int = 0) -> str:
    """``text`` with ``n_edits`` words replaced at random positions."""
    rng = random.Random(seed)
    words = text.split()
    for position in rng.sample(range(len(words)), n_edits):
        words[position] = "changed"
    return " ".join(words)


def test_exact_key_ignores_case_and_whitespace_only():
    assert exact_key("The  cat\nsat.") == exact_key("the cat sat.") == exact_key(" THE CAT\tSAT. ")
    assert exact_key("The cat sat.") != exact_key("The cat sat!")


def test_exact_duplicates_catches_whitespace_and_case_variants():
    texts = ["Alpha beta gamma.", "Delta epsilon.", "ALPHA  beta\ngamma.", "alpha beta gamma."]
    kept, removed = exact_duplicates(texts)
    assert kept == [0, 1]
    assert [(m.index, m.kept_index, m.similarity) for m in removed] == [(2, 0, 1.0), (3, 0, 1.0)]


def test_shingles_are_word_ngrams():
    assert shingles("A b, C d.", size=2) == {"a b", "b c", "c d"}
    assert shingles("Only two", size=5) == {"only two"}
    assert shingles("", size=5) == set()
    with pytest.raises(ValueError, match="shingle size"):
        shingles("x", size=0)


def test_minhash_estimates_jaccard():
    a, b = shingles(random_document(1), 5), shingles(lightly_edited(random_document(1), 10), 5)
    true = jaccard(a, b)
    estimate = minhash_signature(a, num_perm=256).jaccard(minhash_signature(b, num_perm=256))
    assert 0.5 < true < 0.95
    assert estimate == pytest.approx(true, abs=0.1)  # standard error ~ 1/sqrt(256) = 0.06


def test_near_duplicates_catches_a_lightly_edited_copy_and_keeps_distinct_documents():
    originals = [random_document(seed) for seed in range(6)]
    copy = lightly_edited(originals[2], n_edits=3)
    assert jaccard(shingles(originals[2]), shingles(copy)) > 0.85
    texts = [*originals, copy]
    kept, removed = near_duplicates(texts, threshold=0.8)
    assert kept == list(range(6))
    assert len(removed) == 1
    match = removed[0]
    assert (match.index, match.kept_index) == (6, 2)
    assert match.similarity >= 0.8


def test_near_duplicates_keeps_a_heavily_edited_copy():
    original = random_document(7)
    rewrite = lightly_edited(original, n_edits=60, seed=3)  # a fifth of the words changed
    assert jaccard(shingles(original), shingles(rewrite)) < 0.5
    kept, removed = near_duplicates([original, rewrite], threshold=0.8)
    assert kept == [0, 1] and removed == []


def test_near_duplicate_threshold_is_configurable():
    original = random_document(11)
    edited = lightly_edited(original, n_edits=15, seed=5)
    similarity = jaccard(shingles(original), shingles(edited))
    assert 0.5 < similarity < 0.8
    assert near_duplicates([original, edited], threshold=0.9)[1] == []
    assert len(near_duplicates([original, edited], threshold=0.4)[1]) == 1


def test_near_duplicates_validates_settings():
    with pytest.raises(ValueError, match="threshold"):
        near_duplicates(["a"], threshold=1.5)
    with pytest.raises(ValueError, match="num_perm"):
        near_duplicates(["a"], num_perm=2)


def test_dedup_steps_in_the_cleaning_report():
    originals = [random_document(seed) for seed in range(4)]
    texts = [
        *originals,
        originals[0].upper(),  # exact (case) variant of 0
        originals[1].replace(". ", ".   "),  # exact (whitespace) variant of 1
        lightly_edited(originals[3], n_edits=2),  # near duplicate of 3
    ]
    result = clean_corpus(texts, CleaningConfig(near_dup_threshold=0.8))
    reports = {r.name: r for r in result.reports}
    exact, near = reports["exact_dedup"], reports["near_dedup"]
    assert (exact.docs_in, exact.docs_out, exact.reason_counts) == (7, 5, {"exact_dedup": 2})
    assert (near.docs_in, near.docs_out, near.reason_counts) == (5, 4, {"near_dedup": 1})
    assert near.docs_in - near.docs_out == near.docs_removed == 1
    assert near.bytes_removed == len(texts[6].encode())
    assert near.examples[0].doc_id == "#6" and "copy of #3" in near.examples[0].detail
    assert [doc for doc in result.documents] == originals

    no_dedup = clean_corpus(texts, CleaningConfig(exact_dedup=False, near_dedup=False))
    assert len(no_dedup.documents) == 7
