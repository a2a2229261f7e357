"""Lesson 04, pretraining data: the exercises (Jaccard similarity of shingle sets, a MinHash
signature, one quality-filter rule) and the helpers the notebook uses to plant duplicates, find
them with locality-sensitive hashing, and measure what cleaning and deduplication change in a
short pretraining run.

Sources. Shingling, Jaccard similarity and MinHash: Broder 1997 ("On the resemblance and
containment of documents"); banded LSH: Leskovec, Rajaraman & Ullman, *Mining of Massive
Datasets*, ch. 3.4. Quality rules: C4 (Raffel et al. 2020, Sec. 2.2) and Gopher (Rae et al.
2021, App. A.1). Why duplicates matter: Lee et al. 2022 ("Deduplicating Training Data Makes
Language Models Better"); Hernandez et al. 2022 ("Scaling Laws and Interpretability of
Learning from Repeated Data").
"""

from __future__ import annotations

import hashlib
import random
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from minibert.data import dedup, filters
from minibert.data.stats import snippet
from minibert.lessons.checking import Mistake, Report, exercise

# --------------------------------------------------------------------------------------------
# Exercise 1: Jaccard similarity of word-shingle sets
# --------------------------------------------------------------------------------------------


def solution_shingle_jaccard(text_a, text_b, n=5):
    def shingle_set(text):
        words = re.findall(r"\w+", text.lower())  # normalise: lower-case, drop punctuation
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}

    a, b = shingle_set(text_a), shingle_set(text_b)
    if not a and not b:
        return 0.0
    return len(a & b) / len(a | b)


def _jaccard_character_shingles(text_a, text_b, n=5):
    def shingle_set(text):
        text = text.lower()
        return {text[i : i + n] for i in range(len(text) - n + 1)}

    a, b = shingle_set(text_a), shingle_set(text_b)
    return len(a & b) / len(a | b) if a | b else 0.0


def _jaccard_no_lowercase(text_a, text_b, n=5):
    def shingle_set(text):
        words = re.findall(r"\w+", text)
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}

    a, b = shingle_set(text_a), shingle_set(text_b)
    return len(a & b) / len(a | b) if a | b else 0.0


def _jaccard_over_smaller_set(text_a, text_b, n=5):
    def shingle_set(text):
        words = re.findall(r"\w+", text.lower())
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}

    a, b = shingle_set(text_a), shingle_set(text_b)
    return len(a & b) / min(len(a), len(b)) if a and b else 0.0


def _jaccard_split_on_spaces(text_a, text_b, n=5):
    def shingle_set(text):
        words = text.lower().split()  # punctuation stays attached: "data," != "data"
        return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}

    a, b = shingle_set(text_a), shingle_set(text_b)
    return len(a & b) / len(a | b) if a | b else 0.0


_BASE = (
    "The cleaned corpus keeps prose and drops markup, lists and tables. Near duplicates are "
    "found by comparing sets of word shingles, never whole documents, so a copy with a few "
    "edited words still looks almost the same to the filter."
)
JACCARD_CASES = [
    (_BASE, _BASE, "a text and itself"),
    (_BASE, _BASE.upper(), "the same text in capitals"),
    (_BASE, _BASE.replace("edited", "changed").replace("prose", "text"), "two words edited"),
    (_BASE, _BASE + " " + _BASE.split(". ")[0] + ", and it adds a sentence.", "a longer copy"),
    (
        _BASE,
        "Wikipedia articles are long documents about one subject, written and edited by many "
        "volunteers over the years.",
        "unrelated texts",
    ),
    (_BASE, _BASE.replace(",", " ,").replace(".", " ."), "spacing around punctuation"),
]


@exercise(
    "shingle_jaccard",
    solution=solution_shingle_jaccard,
    mistakes={
        "shingled characters instead of words": Mistake(
            _jaccard_character_shingles,
            why="dedup compares *word* n-grams: re.findall(r'\\w+', ...) gives the words, then "
            "join n consecutive words. Character 5-grams are shared by almost any two English "
            "texts ('tion ', ' the '), so unrelated documents look similar.",
        ),
        "forgot to lowercase (normalise) before shingling": Mistake(
            _jaccard_no_lowercase,
            why="a copy that only changed capitalisation is still a copy. Lower-case the text "
            "before splitting it into words, so 'The Cleaned' and 'the cleaned' are one shingle.",
        ),
        "intersection over the smaller set (not the union)": Mistake(
            _jaccard_over_smaller_set,
            why="|A & B| / min(|A|, |B|) is the overlap coefficient: a short text contained in a "
            "long one scores 1.0. Jaccard divides by the union, |A | B|.",
        ),
        "split on spaces (punctuation stays attached)": Mistake(
            _jaccard_split_on_spaces,
            why="text.split() keeps 'markup,' and 'markup' apart, so moving a comma changes five "
            "shingles. Take words with re.findall(r'\\w+', text), which drops punctuation.",
        ),
    },
)
def check_shingle_jaccard(fn: Callable[..., float], report: Report) -> None:
    """Pairs of texts: identical, recapitalised, lightly edited, extended, unrelated, respaced."""
    got = report.call(_BASE, _BASE)
    if not isinstance(got, (int, float)):
        report.fail(f"return one number (the Jaccard similarity), got {type(got).__name__}")
    for a, b, case in JACCARD_CASES:
        report.expect(a, b, case=case)
    report.expect(_BASE, _BASE.replace("edited", "changed"), n=3, case="n=3 shingles")


# --------------------------------------------------------------------------------------------
# Exercise 2: a MinHash signature
# --------------------------------------------------------------------------------------------

# Universal hashing h(x) = (a * x + b) mod p with a Mersenne prime p (Carter & Wegman 1979),
# as datasketch does: a different (a, b) per signature position acts as a different random
# permutation of the shingle universe.
MERSENNE_PRIME = (1 << 61) - 1


def base_hash(shingle: str) -> int:
    """A stable integer for a shingle: the first 8 bytes of its SHA-1, below the prime.

    Python's built-in ``hash`` of a str changes from one process to the next, so it would give
    different signatures every run."""
    return int.from_bytes(hashlib.sha1(shingle.encode("utf-8")).digest()[:8], "big") % (
        MERSENNE_PRIME
    )


def hash_params(num_perm: int = 64, seed: int = 1) -> list[tuple[int, int]]:
    """``num_perm`` pairs (a, b) with 1 <= a < p and 0 <= b < p: one hash function each."""
    rng = random.Random(seed)
    return [
        (rng.randrange(1, MERSENNE_PRIME), rng.randrange(MERSENNE_PRIME)) for _ in range(num_perm)
    ]


def solution_minhash(shingle_set, params):
    hashed = [base_hash(s) for s in shingle_set]  # one integer per shingle
    signature = []
    for a, b in params:  # one "permutation" per signature position
        signature.append(min((a * x + b) % MERSENNE_PRIME for x in hashed))
    return signature


def _minhash_max(shingle_set, params):
    hashed = [base_hash(s) for s in shingle_set]
    return [max((a * x + b) % MERSENNE_PRIME for x in hashed) for a, b in params]


def _minhash_argmin_shingle_hash(shingle_set, params):
    # Takes the same shingle (the one with the smallest base hash) for every position.
    x = min(base_hash(s) for s in shingle_set)
    return [(a * x + b) % MERSENNE_PRIME for a, b in params]


def _minhash_no_modulus(shingle_set, params):
    hashed = [base_hash(s) for s in shingle_set]
    return [min(a * x + b for x in hashed) for a, b in params]


MINHASH_CASES = [
    ({"the cat sat on the", "cat sat on the mat"}, "two shingles"),
    ({"a b c d e"}, "one shingle"),
    ({f"w{i} w{i + 1} w{i + 2} w{i + 3} w{i + 4}" for i in range(40)}, "forty shingles"),
]


@exercise(
    "minhash",
    solution=solution_minhash,
    mistakes={
        "max instead of min": Mistake(
            _minhash_max,
            why="MinHash keeps the *smallest* hash value under each permutation; that the "
            "minimum of A and of B agree with probability J(A, B) is the whole trick. (The "
            "maximum works too in theory, but it is not the signature everyone compares.)",
        ),
        "the same shingle for every position (min taken before hashing)": Mistake(
            _minhash_argmin_shingle_hash,
            why="the minimum must be taken *after* applying each hash function h_i: each "
            "position is a different random order of the shingles, so a different shingle "
            "can come first. Picking one shingle and hashing it num_perm times gives one "
            "sample of the similarity, repeated.",
        ),
        "forgot the modulus (not a permutation)": Mistake(
            _minhash_no_modulus,
            why="without '% MERSENNE_PRIME', a * x + b orders shingles by x for every (a, b) "
            "(a > 0), so every position sees the same order. The modulus is what scrambles "
            "the order differently for each (a, b).",
        ),
    },
)
def check_minhash(fn: Callable[..., list[int]], report: Report) -> None:
    """Small shingle sets, then the property itself: matching positions estimate Jaccard."""
    params = hash_params(16, seed=3)
    got = report.call({"a b c d e"}, params)
    if not isinstance(got, (list, tuple)) or len(got) != len(params):
        report.fail(
            f"return one integer per (a, b) pair: a list of {len(params)} ints, got "
            f"{type(got).__name__} of length {len(got) if hasattr(got, '__len__') else '?'}"
        )
    for shingle_set, case in MINHASH_CASES:
        report.expect(shingle_set, params, case=case)
    # The property: on two sets with Jaccard 0.5, about half the positions agree.
    a = {f"s{i}" for i in range(0, 300)}
    b = {f"s{i}" for i in range(100, 400)}
    params = hash_params(200, seed=5)
    sig_a, sig_b = report.call(a, params), report.call(b, params)
    estimate = estimate_jaccard(sig_a, sig_b)
    if abs(estimate - 0.5) > 0.12:
        report.fail(
            f"signatures of two sets with Jaccard 0.50 agree in {estimate:.2f} of positions"
        )
    report.passed(f"agreement {estimate:.2f} for true Jaccard 0.50")


def estimate_jaccard(signature_a: Sequence[int], signature_b: Sequence[int]) -> float:
    """The share of positions where two MinHash signatures agree: an unbiased estimate of the
    Jaccard similarity, with standard error sqrt(J (1 - J) / num_perm)."""
    if len(signature_a) != len(signature_b):
        raise ValueError(
            f"signatures of different lengths ({len(signature_a)} vs {len(signature_b)}); "
            "make both with the same hash_params"
        )
    return sum(x == y for x, y in zip(signature_a, signature_b, strict=True)) / len(signature_a)


# --------------------------------------------------------------------------------------------
# Exercise 3: one quality rule (Gopher's stop-word test)
# --------------------------------------------------------------------------------------------

STOP_WORDS = sorted(filters.GOPHER_STOP_WORDS)
STRIP = "\"'()[]{}.,;:!?\u2018\u2019\u201c\u201d"  # the punctuation stripped from each word


def solution_too_few_stop_words(text, min_count=2):
    words = {word.strip(STRIP).lower() for word in text.split()}
    present = words & set(STOP_WORDS)  # distinct stop words, not occurrences
    return len(present) < min_count


def _stop_words_occurrences(text, min_count=2):
    count = sum(1 for word in text.split() if word.strip(STRIP).lower() in STOP_WORDS)
    return count < min_count


def _stop_words_no_lowercase(text, min_count=2):
    words = {word.strip(STRIP) for word in text.split()}
    return len(words & set(STOP_WORDS)) < min_count


def _stop_words_punctuation_attached(text, min_count=2):
    words = {word.lower() for word in text.split()}
    return len(words & set(STOP_WORDS)) < min_count


def _stop_words_inverted(text, min_count=2):
    words = {word.strip(STRIP).lower() for word in text.split()}
    return len(words & set(STOP_WORDS)) >= min_count


STOP_WORD_CASES = [
    ("The history of the city is long and varied.", "prose: 'the', 'of', 'and'"),
    ("Home | About | Contact | Login | Search", "a navigation bar"),
    ("the the the the the", "one stop word repeated"),
    ("The Senate, to which he belonged, met daily.", "capitalised 'The', 'to'"),
    ("Rules (of thumb) and, in short: tips.", "stop words inside punctuation"),
    ("Buy cheap phones now free shipping", "a spam line"),
    ("With luck; that works.", "'With' and 'that' with punctuation"),
]


@exercise(
    "too_few_stop_words",
    solution=solution_too_few_stop_words,
    mistakes={
        "counted occurrences, not distinct stop words": Mistake(
            _stop_words_occurrences,
            why="Gopher asks how many *different* stop words appear: 'the the the the' has "
            "only one. Put the stop words you find in a set before counting.",
        ),
        "forgot to lowercase": Mistake(
            _stop_words_no_lowercase,
            why="'The' at the start of a sentence is the stop word 'the'; lower-case each word "
            "before looking it up.",
        ),
        "punctuation left attached": Mistake(
            _stop_words_punctuation_attached,
            why="'and,' and '(of' are stop words with punctuation stuck on: strip it from "
            "both ends of each word (word.strip(STRIP)) before looking it up.",
        ),
        "returned keep instead of remove": Mistake(
            _stop_words_inverted,
            why="the rule answers 'should this document be removed?': True when it has *fewer* "
            "than min_count of the stop words.",
        ),
    },
)
def check_too_few_stop_words(fn: Callable[..., bool], report: Report) -> None:
    """Prose, navigation bars, repeated and capitalised stop words, punctuation, min_count 1/3."""
    got = report.call("the cat and the dog")
    if not isinstance(got, bool):
        report.fail(f"return True (remove) or False (keep), got {type(got).__name__} {got!r}")
    for text, case in STOP_WORD_CASES:
        report.expect(text, case=case)
    report.expect("Home of cats", min_count=1, case="min_count=1")
    report.expect("the cat and the dog", min_count=3, case="min_count=3")


# --------------------------------------------------------------------------------------------
# Planting and finding duplicates
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlantedCopy:
    """Text ``index`` of the planted corpus is a ``kind`` copy of text ``original``."""

    index: int
    original: int
    kind: str  # "exact (recased, respaced)", "near (5% of words replaced)", ...


def edit_words(text: str, fraction: float, rng: random.Random) -> str:
    """Replace about ``fraction`` of the words of ``text`` by random words of the same text."""
    words = text.split()
    for _ in range(max(1, round(fraction * len(words)))):
        words[rng.randrange(len(words))] = rng.choice(words)
    return " ".join(words)


def plant_duplicates(
    texts: Sequence[str], copies: int = 6, seed: int = 0
) -> tuple[list[str], list[PlantedCopy]]:
    """``texts`` plus ``copies`` planted copies of randomly chosen texts, mixed in at random
    places: exact copies (recased and respaced, which exact dedup's key ignores), near copies
    with 1% and 10% of words replaced, and copies with an extra paragraph appended.

    Returns the new list and where each copy is (indices into the new list)."""
    rng = random.Random(seed)
    kinds: list[tuple[str, Callable[[str], str]]] = [
        ("exact (recased, respaced)", lambda t: "  ".join(t.upper().split(" "))),
        ("near (1% of words replaced)", lambda t: edit_words(t, 0.01, rng)),
        ("near (10% of words replaced)", lambda t: edit_words(t, 0.10, rng)),
        (
            "near (a paragraph appended)",
            lambda t: t + "\n\n" + texts[rng.randrange(len(texts))][:600],
        ),
    ]
    originals = rng.sample(range(len(texts)), min(copies, len(texts)))
    items: list[tuple[str, int | None, str | None]] = [(t, i, None) for i, t in enumerate(texts)]
    for n, original in enumerate(originals):
        kind, make = kinds[n % len(kinds)]
        # Insert after the original so "keep the first copy" keeps the original.
        at = next(i for i, (_, src, k) in enumerate(items) if src == original and k is None)
        position = rng.randrange(at + 1, len(items) + 1)
        items.insert(position, (make(texts[original]), original, kind))
    # Map original indices (into ``texts``) to their positions in the new list.
    where = {}
    for position, (_, source, kind) in enumerate(items):
        if kind is None:
            where[source] = position
    planted = [
        PlantedCopy(position, where[source], kind)
        for position, (_, source, kind) in enumerate(items)
        if kind is not None
    ]
    return [text for text, _, _ in items], planted


def band_probability(s: float, rows: int, bands: int) -> float:
    """Probability that two documents of Jaccard ``s`` share at least one LSH band:
    1 - (1 - s^r)^b (Leskovec et al., MMDS 3.4.2)."""
    return 1.0 - (1.0 - s**rows) ** bands


def lsh_candidates(
    signatures: Sequence[Sequence[int]], bands: int, rows: int
) -> set[tuple[int, int]]:
    """Pairs (i, j), i < j, whose signatures agree on every row of at least one band.

    Each band's ``rows`` values are a bucket key; documents in one bucket become candidates,
    so no pair is compared unless it shares a bucket (linear work instead of all pairs)."""
    if bands * rows > len(signatures[0]):
        raise ValueError(
            f"{bands} bands x {rows} rows = {bands * rows} values, but the signatures have "
            f"{len(signatures[0])}"
        )
    pairs: set[tuple[int, int]] = set()
    for band in range(bands):
        buckets: dict[tuple[int, ...], list[int]] = {}
        for doc, signature in enumerate(signatures):
            key = tuple(signature[band * rows : (band + 1) * rows])
            buckets.setdefault(key, []).append(doc)
        for members in buckets.values():
            pairs.update((a, b) for i, a in enumerate(members) for b in members[i + 1 :])
    return pairs


def lsh_curve_figure(rows: int, bands: int, threshold: float, pairs: Sequence[tuple[float, bool]]):
    """The S-curve 1 - (1 - s^r)^b, with the threshold and the measured pairs (Jaccard, found)."""
    import plotly.graph_objects as go

    xs = [i / 200 for i in range(201)]
    fig = go.Figure(
        go.Scatter(
            x=xs,
            y=[band_probability(s, rows, bands) for s in xs],
            mode="lines",
            name=f"P(candidate), b={bands}, r={rows}",
        )
    )
    fig.add_vline(x=threshold, line_dash="dash", annotation_text=f"threshold {threshold}")
    if pairs:
        fig.add_trace(
            go.Scatter(
                x=[s for s, _ in pairs],
                y=[1.0 if found else 0.0 for _, found in pairs],
                mode="markers",
                name="pairs in our corpus (1 = candidate)",
                marker={"size": 7, "opacity": 0.6},
            )
        )
    fig.update_layout(
        title="LSH: probability that a pair becomes a candidate",
        xaxis={"title": "Jaccard similarity s of the pair", "range": [0, 1]},
        yaxis={"title": "probability", "range": [-0.05, 1.05]},
        height=380,
        margin={"t": 60, "b": 40},
    )
    return fig


# --------------------------------------------------------------------------------------------
# Showing what the cleaning chain removed
# --------------------------------------------------------------------------------------------


def web_like_documents() -> list[Any]:
    """Eight short documents of the kinds a web crawl is full of, written for this lesson so
    that each trips a different rule of the cleaning chain (Wikipedia, our corpus, has almost
    none of them). Each has the id of the rule it is meant to trip."""
    from minibert.data.corpora import Document

    prose = (
        "The river flows through the old town and past the mill. It was the main trade route "
        "for the region until the railway came. Farmers brought their grain to the market by "
        "boat. The boats were small and flat, so that they could pass under the bridges. Some "
        "of them are still kept in the museum. Visitors can see how they were built and used."
    )
    texts = {
        "web-boilerplate": "This site uses cookies to improve your experience and to show ads.\n"
        "Please enable JavaScript in your browser to view this page correctly.\n" + prose,
        "web-navigation": "Home\nAbout us\nProducts\nContact\nLogin\nSearch\nCart",
        "web-lorem": prose + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do "
        "eiusmod tempor incididunt ut labore et dolore magna aliqua.",
        "web-code": prose + "\nTo install it, paste this into the console: "
        "function init() { return setup(config); } and press enter to continue.",
        "web-numbers": "Results 2023: 12.5, 13.7, 14.2, 15.9, 16.1, 17.3, 18.8, 19.0, 21.4, "
        "22.6, 23.1, 24.9, 25.5, 26.7, 27.2, 28.8 and 30.1 in the table of the year.\n" * 6,
        "web-repeated-lines": ("Buy now and save on all the phones in our shop today.\n" * 8)
        + prose,
        "web-keywords": "cheap phones best phones phones sale phones deals buy phones cheap "
        "prices phones online shop phones discount phones offer.\n" * 6,
        "web-short": "Click here to read more.",
    }
    return [
        Document(id=key, title=key, text=text, source="written for lesson 04")
        for key, text in texts.items()
    ]


def what_removed(reports: Sequence[Any], ids: Sequence[str]) -> dict[str, str]:
    """For each document id in ``ids``: the cleaning step that removed it (or "kept"), from
    the examples in the step reports (``CleaningConfig.max_examples`` must be large enough)."""
    found = {doc_id: "kept" for doc_id in ids}
    for report in reports:
        for example in report.examples:
            now = found.get(example.doc_id)
            if now is None or not now.startswith("kept"):
                continue  # not asked for, or already removed by an earlier step
            if report.docs_in != report.docs_out:
                found[example.doc_id] = (
                    f"removed by {report.name}: {example.detail or example.reason}"
                )
            else:  # a line rule edited the document and kept it
                found[example.doc_id] = f"kept; {report.name} cut: {snippet(example.snippet, 60)}"
    return found


def removal_rows(reports: Sequence[Any]) -> list[dict[str, Any]]:
    """One row per cleaning step that removed or changed something: documents removed, bytes
    removed, and one example of what it removed (from the step's report)."""
    rows = []
    for report in reports:
        if report.docs_in == report.docs_out and not report.docs_changed:
            continue
        example = report.examples[0] if report.examples else None
        rows.append(
            {
                "step": report.name,
                "docs removed": report.docs_in - report.docs_out,
                "docs changed": report.docs_changed,
                "bytes removed": report.bytes_in - report.bytes_out,
                "example": (
                    f"[{example.reason}] {example.doc_id}: {example.snippet}" if example else ""
                ),
            }
        )
    return rows


def reports_figure(reports: Sequence[Any]):
    """Documents and bytes left after each cleaning step (a waterfall of the chain)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    names = ["input"] + [r.name for r in reports]
    docs = [reports[0].docs_in] + [r.docs_out for r in reports]
    megabytes = [reports[0].bytes_in / 1e6] + [r.bytes_out / 1e6 for r in reports]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("documents left", "megabytes left"))
    fig.add_trace(go.Bar(x=names, y=docs, name="documents"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=megabytes, name="MB"), row=1, col=2)
    fig.update_layout(height=420, showlegend=False, margin={"t": 60, "b": 140})
    fig.update_xaxes(tickangle=-60)
    return fig


# --------------------------------------------------------------------------------------------
# The measured effect: a short pretraining on each version of the training text
# --------------------------------------------------------------------------------------------


@dataclass
class ArmResult:
    """One arm of the data ablation: what it trained on and the held-out numbers after it."""

    name: str
    documents: int
    train_tokens: int
    examples: int
    steps: int
    seconds: float
    held_out: dict[str, float] = field(default_factory=dict)
    seed: int = 0  # initial weights, data order and masking


def raw_training_texts(raw_documents: Sequence[Any], valid_ids: set[str]) -> list[tuple[str, str]]:
    """(id, raw wikitext) of every article not in the validation split: the "no cleaning"
    arm's training text, markup, templates, tables and all."""
    return [(doc.id, doc.text) for doc in raw_documents if doc.id not in valid_ids]


def duplicated_corpus(
    texts: Sequence[str], share_of_documents: float = 0.1, copies_each: int = 10, seed: int = 0
) -> tuple[list[str], list[int]]:
    """``texts`` with ``share_of_documents`` of them repeated ``copies_each`` extra times (half
    exact, half with 1% of words replaced), in random positions after their original.

    A few documents repeated many times is what real web crawls look like (Lee et al. 2022,
    Sec. 4: boilerplate pages and mirrors); Hernandez et al. 2022 find that repeating a small
    part of the data many times costs more than its share. Returns the texts and the indices
    of the originals that were repeated."""
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(len(texts)), max(1, round(share_of_documents * len(texts)))))
    items = [(text, index) for index, text in enumerate(texts)]  # (text, original or None)
    for original in chosen:
        at = next(i for i, (_, src) in enumerate(items) if src == original)
        for k in range(copies_each):
            copy = texts[original] if k % 2 == 0 else edit_words(texts[original], 0.01, rng)
            # After the original, so dedup's "keep the first copy" keeps the original.
            items.insert(rng.randrange(at + 1, len(items) + 1), (copy, None))
    out = [text for text, _ in items]
    return out, chosen


def deduplicate(texts: Sequence[str], threshold: float = 0.8) -> tuple[list[str], int, int]:
    """``texts`` after the library's exact and MinHash near-duplicate passes (the pipeline's
    own ``minibert.data.dedup``): the kept texts and the numbers removed by each pass."""
    kept, exact_removed = dedup.exact_duplicates(texts)
    after_exact = [texts[i] for i in kept]
    kept_near, near_removed = dedup.near_duplicates(after_exact, threshold=threshold)
    return [after_exact[i] for i in kept_near], len(exact_removed), len(near_removed)


def encode_texts(texts: Sequence[str], tokenizer: Any) -> list[list[list[int]]]:
    """Token ids per document, per sentence (the pipeline's sentence splitter and encoder)."""
    from minibert.data.examples import encode_documents
    from minibert.data.text import split_sentences

    return encode_documents([split_sentences(text) for text in texts], tokenizer)


def ablation_config(steps: int, *, batch_size: int = 32, eval_examples: int = 256, seed: int = 0):
    """The tiny BERT's pretraining config every arm shares: same model, steps, batch, seed."""
    import torch

    from minibert.train.pretraining import build_pretrain_config

    return build_pretrain_config(
        {
            "preset": "tiny",
            "max_steps": steps,
            "batch_size": batch_size,
            "seed": seed,
            "eval_every": 0,  # evaluate once, at the end
            "eval_examples": eval_examples,
            "checkpoint_every": 0,
            "num_threads": torch.get_num_threads(),
            "progress": True,
        }
    )


def train_arm(
    name: str, train_ids: list[list[list[int]]], data: Any, config: Any, *, progress: bool = True
) -> ArmResult:
    """Pretrain a fresh tiny BERT on ``train_ids`` and measure it on ``data``'s held-out
    examples (the cleaned, deduplicated validation documents, identical for every arm).

    Uses the library's pieces (examples, :class:`PretrainingTask`, :class:`Trainer`) rather than
    ``pretrain()``, because ``pretrain`` splits whatever corpus it is given into its own
    train/validation parts, and an honest comparison needs one fixed held-out set."""
    import torch

    from minibert.data.examples import create_pretraining_examples
    from minibert.train.loop import Trainer, derive_seed
    from minibert.train.overrides import apply_overrides
    from minibert.train.pretraining import PretrainingTask, _example_settings, build_eval_examples
    from minibert.train.rundir import RunDirectory

    config = apply_overrides(
        config, {"model.vocab_size": len(data.tokenizer), "train.progress": progress}
    )
    examples = create_pretraining_examples(
        train_ids,
        data.tokenizer,
        seed=config.objective.example_seed,
        **_example_settings(config),
    )
    held_out = build_eval_examples(config, data)
    torch.manual_seed(derive_seed(config.train.seed, "init"))  # same initial weights every arm
    task = PretrainingTask(config, data.tokenizer, examples, held_out)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"lesson04-{name}-") as folder:
        run = RunDirectory.create(folder + "/run")
        try:
            result = Trainer(task, config.optim, config.train, run).fit()
        finally:
            run.close()
    tokens = sum(len(sentence) for doc in train_ids for sentence in doc)
    return ArmResult(
        name=name,
        documents=len(train_ids),
        train_tokens=tokens,
        examples=len(examples),
        steps=result.step,
        seconds=time.perf_counter() - started,
        held_out={k: float(v) for k, v in result.last_eval.items()},
        seed=config.train.seed,
    )


def _by_arm(results: Sequence[ArmResult]) -> dict[str, list[ArmResult]]:
    """The results grouped by arm, arms in the order they first appear."""
    arms: dict[str, list[ArmResult]] = {}
    for result in results:
        arms.setdefault(result.name, []).append(result)
    return arms


def ablation_table(results: Sequence[ArmResult]) -> str:
    """The arms side by side: what each trained on, and its held-out MLM loss and accuracy for
    every seed and their mean (the spread between seeds is the run-to-run noise)."""
    arms = _by_arm(results)
    seeds = [r.seed for r in next(iter(arms.values()))]
    per_seed = " ".join(f"{f'acc s{seed}':>7}" for seed in seeds)
    lines = [
        f"{'arm':<26} {'documents':>9} {'train tokens':>12} {'steps':>5} "
        f"{'mean loss':>9} {per_seed} {'mean acc':>8}"
    ]
    for name, runs in arms.items():
        first = runs[0]
        losses = [r.held_out.get("mlm_loss", float("nan")) for r in runs]
        accuracies = [r.held_out.get("mlm_accuracy", float("nan")) for r in runs]
        lines.append(
            f"{name:<26} {first.documents:>9,} {first.train_tokens:>12,} {first.steps:>5} "
            f"{sum(losses) / len(losses):>9.3f} "
            + " ".join(f"{a:>7.1%}" for a in accuracies)
            + f" {sum(accuracies) / len(accuracies):>8.1%}"
        )
    return "\n".join(lines)


def ablation_figure(results: Sequence[ArmResult]):
    """Held-out MLM accuracy of each arm: the mean over seeds (bar) and each seed (dot), the
    same held-out set for all."""
    import plotly.graph_objects as go

    arms = _by_arm(results)
    names = list(arms)
    means = [
        sum(r.held_out.get("mlm_accuracy", 0.0) for r in runs) / len(runs) for runs in arms.values()
    ]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=means,
            text=[f"mean {m:.1%}" for m in means],
            textposition="inside",  # the seeds' dots sit at the bar's top
            insidetextanchor="middle",
            name="mean over seeds",
            marker_color="#9DB8D9",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[r.name for runs in arms.values() for r in runs],
            y=[r.held_out.get("mlm_accuracy", 0.0) for runs in arms.values() for r in runs],
            text=[f"seed {r.seed}" for runs in arms.values() for r in runs],
            mode="markers",
            marker={"size": 10, "color": "#1F3B63"},
            name="one seed",
            hovertemplate="%{x}, %{text}: %{y:.1%}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Held-out masked-token accuracy after the same number of steps",
        yaxis={"title": "accuracy on the cleaned validation text", "tickformat": ".0%"},
        height=420,
        margin={"t": 60, "b": 40},
    )
    return fig
