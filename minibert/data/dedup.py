"""Exact and near-duplicate document removal.

Duplicates waste compute and make a model memorise: Lee et al. 2022 ("Deduplicating Training
Data Makes Language Models Better", §4) find near-duplicates in every large web corpus and show
that removing them reduces verbatim regurgitation. Two passes, each keeping the first copy:

* **Exact**: documents whose text is equal after case folding and whitespace collapsing
  (:func:`exact_key`), compared by SHA-256 digest.
* **Near**: documents whose sets of word n-grams ("shingles") have Jaccard similarity at or
  above a threshold, estimated with MinHash (Broder 1997) and found without comparing all pairs
  by locality-sensitive hashing over bands of the signature (Leskovec, Rajaraman & Ullman,
  *Mining of Massive Datasets*, ch. 3). Gopher used the same scheme at a 0.8 threshold
  (Rae et al. 2021, App. A.1.3). The MinHash and LSH index come from ``datasketch``.

Both functions return the kept indices and, for every removed document, the index of the kept
document it duplicates (and the estimated similarity), so a report can show the pair.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "DuplicateMatch",
    "exact_duplicates",
    "exact_key",
    "jaccard",
    "minhash_signature",
    "near_duplicates",
    "shingles",
]

_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class DuplicateMatch:
    """Document ``index`` was removed as a copy of kept document ``kept_index``."""

    index: int
    kept_index: int
    similarity: float  # 1.0 for exact duplicates, the MinHash Jaccard estimate for near ones


def exact_key(text: str) -> str:
    """The hash under which two texts count as exact duplicates: SHA-256 of the case-folded
    text with all whitespace runs collapsed, so spacing and capitalisation variants collide."""
    canonical = " ".join(text.casefold().split())
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def exact_duplicates(texts: Sequence[str]) -> tuple[list[int], list[DuplicateMatch]]:
    """Split ``texts`` into the first copy of each :func:`exact_key` and the later copies."""
    first_seen: dict[str, int] = {}
    kept: list[int] = []
    removed: list[DuplicateMatch] = []
    for index, text in enumerate(texts):
        key = exact_key(text)
        if key in first_seen:
            removed.append(DuplicateMatch(index, first_seen[key], 1.0))
        else:
            first_seen[key] = index
            kept.append(index)
    return kept, removed


def shingles(text: str, size: int = 5) -> set[str]:
    """The set of lower-cased word ``size``-grams of ``text`` (its "shingles").

    A text shorter than ``size`` words is one shingle, so it can still match an equal text.
    Word n-grams rather than character n-grams: a one-word edit changes at most ``size``
    shingles, so a lightly edited copy keeps a high Jaccard similarity.
    """
    if size < 1:
        raise ValueError(f"shingle size must be >= 1, got {size}")
    words = _WORD.findall(text.casefold())
    if len(words) <= size:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i : i + size]) for i in range(len(words) - size + 1)}


def minhash_signature(shingle_set: Iterable[str], num_perm: int = 128, seed: int = 1):
    """A ``datasketch.MinHash`` of ``shingle_set`` with ``num_perm`` permutations.

    Two signatures agree in each position with probability equal to the Jaccard similarity of
    the sets, so ``a.jaccard(b)`` estimates it with standard error about ``1/sqrt(num_perm)``.
    """
    from datasketch import MinHash  # imported here: only this pass needs it

    signature = MinHash(num_perm=num_perm, seed=seed)
    encoded = [item.encode("utf-8") for item in shingle_set]
    if encoded:
        signature.update_batch(encoded)
    return signature


def near_duplicates(
    texts: Sequence[str],
    *,
    threshold: float = 0.8,
    num_perm: int = 128,
    shingle_size: int = 5,
    seed: int = 1,
) -> tuple[list[int], list[DuplicateMatch]]:
    """Keep each document unless an earlier kept one has estimated Jaccard >= ``threshold``.

    Candidates come from a ``datasketch.MinHashLSH`` index (tuned by datasketch to ``threshold``
    and ``num_perm``); each candidate's similarity is then estimated from the two signatures,
    so an LSH false positive below the threshold does not remove anything. Runs in roughly
    linear time: one signature per document and one index query each.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if num_perm < 16:
        raise ValueError(
            f"num_perm={num_perm} is too small for a useful estimate; use >= 16 (128 is usual)"
        )
    from datasketch import MinHashLSH

    index = MinHashLSH(threshold=threshold, num_perm=num_perm)
    signatures = {}
    kept: list[int] = []
    removed: list[DuplicateMatch] = []
    for position, text in enumerate(texts):
        shingle_set = shingles(text, shingle_size)
        if not shingle_set:
            kept.append(position)  # nothing to compare; empty texts are other steps' business
            continue
        signature = minhash_signature(shingle_set, num_perm=num_perm, seed=seed)
        best_index, best_similarity = -1, 0.0
        for candidate in index.query(signature):
            similarity = float(signature.jaccard(signatures[candidate]))
            if similarity > best_similarity:
                best_index, best_similarity = candidate, similarity
        if best_index >= 0 and best_similarity >= threshold:
            removed.append(DuplicateMatch(position, best_index, best_similarity))
        else:
            index.insert(position, signature)
            signatures[position] = signature
            kept.append(position)
    return kept, removed


def jaccard(a: set[str], b: set[str]) -> float:
    """Exact Jaccard similarity |a & b| / |a | b| (0.0 for two empty sets)."""
    union = len(a | b)
    return len(a & b) / union if union else 0.0
