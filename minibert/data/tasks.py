"""Downstream tasks for fine-tuning, and similarity benchmarks for probing representations.

BERT is evaluated by fine-tuning all parameters on labelled tasks: a sequence-level classifier on
the final ``[CLS]`` vector, and a token-level classifier on each token's final vector, where for
NER "we use the representation of the first sub-token as the input to the token-level classifier"
(Devlin et al. 2019, Sec. 4 and Sec. 5.3). The offline tasks here are built from data already
installed with gensim; the hub tasks are the paper's own (SST-2 from GLUE, CoNLL-2003 NER).

=================  ========  ======================================================================
name               kind      data
=================  ========  ======================================================================
``wiki-topic``     sequence  paragraphs of the Wikipedia excerpt, labelled with their article's
                             topic (:mod:`minibert.data.wiki_topics`), split by article
``sentiment``      sequence  200 movie-review sentences (Pang & Lee), k-fold cross-validation
``wiki-mentions``  token     mention detection: words that were wikilinks get B-/I-MENTION tags
``sst2``           sequence  SST-2 (GLUE) from the Hugging Face hub, online only
``conll2003``      token     CoNLL-2003 NER from the Hugging Face hub, online only
=================  ========  ======================================================================

Examples carry label *indices* into ``TaskData.labels``; :func:`encode_sequence_task` and
:func:`encode_token_task` turn them into model inputs with a ``transformers`` fast tokenizer.
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from minibert.constants import IGNORE_INDEX
from minibert.data.corpora import (
    HubUnavailableError,
    _read_legacy_text,
    gensim_test_data,
    require_hub,
    wiki_sample_articles,
)
from minibert.data.wiki_topics import ARTICLE_TOPICS, TOPIC_LABELS

logger = logging.getLogger(__name__)

__all__ = [
    "KNOWN_TASKS",
    "MENTION_LABELS",
    "SequenceExample",
    "SimilarityBenchmark",
    "SimilarityPair",
    "TaskData",
    "TokenExample",
    "encode_sequence_task",
    "encode_token_task",
    "load_similarity_benchmark",
    "load_task",
    "words_with_spans",
]

KNOWN_TASKS: dict[str, str] = {
    "wiki-topic": "topic of a Wikipedia paragraph (6 classes), split by article (offline)",
    "sentiment": "polarity of 200 movie-review sentences, k-fold (offline)",
    "wiki-mentions": "BIO mention detection from Wikipedia's own links (offline)",
    "sst2": "SST-2 sentence polarity from GLUE on the Hugging Face hub (online)",
    "conll2003": "CoNLL-2003 named entities on the Hugging Face hub (online)",
}
OFFLINE_TASKS = ("wiki-topic", "sentiment", "wiki-mentions")
MENTION_LABELS: tuple[str, ...] = ("O", "B-MENTION", "I-MENTION")
# The tag order of the Hugging Face CoNLL-2003 release, used when the data does not name them.
CONLL2003_LABELS: tuple[str, ...] = (
    "O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC",
)  # fmt: skip


@dataclass(frozen=True)
class SequenceExample:
    """One text (or text pair) with a label index; ``group`` is the unit splits keep together."""

    text: str
    label: int
    text_pair: str | None = None
    id: str = ""
    group: str = ""


@dataclass(frozen=True)
class TokenExample:
    """Words with one tag index per word."""

    words: tuple[str, ...]
    tags: tuple[int, ...]
    id: str = ""
    group: str = ""

    def __post_init__(self):
        if len(self.words) != len(self.tags):
            raise ValueError(
                f"TokenExample {self.id!r}: {len(self.words)} words but {len(self.tags)} tags"
            )


@dataclass
class TaskData:
    """A downstream task: label names and train/validation(/test) examples."""

    name: str
    kind: str  # "sequence" | "token"
    labels: list[str]
    train: list
    validation: list
    test: list | None = None
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def num_labels(self) -> int:
        return len(self.labels)

    def splits(self) -> dict[str, list]:
        """The splits that exist, by name."""
        out = {"train": self.train, "validation": self.validation}
        if self.test is not None:
            out["test"] = self.test
        return out


# --------------------------------------------------------------------------------------------
# Splitting by group (article)


def _split_groups(
    groups_by_label: dict[Any, list[str]], fractions: Sequence[float], seed: int
) -> dict[str, str]:
    """Assign whole groups to train/validation/test, stratified by label.

    Each label's groups are shuffled with ``seed``; a label with at least three groups puts at
    least one in validation and one in test, so every class can be evaluated.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(
            f"split_fractions must be three non-negative numbers summing to 1 (train, "
            f"validation, test), got {tuple(fractions)!r}"
        )
    rng = random.Random(seed)
    assignment: dict[str, str] = {}
    for label in sorted(groups_by_label, key=str):
        groups = sorted(groups_by_label[label])
        rng.shuffle(groups)
        n = len(groups)
        n_val = round(n * fractions[1])
        n_test = round(n * fractions[2])
        if n >= 3:
            n_val = max(n_val, 1) if fractions[1] > 0 else 0
            n_test = max(n_test, 1) if fractions[2] > 0 else 0
        for i, group in enumerate(groups):
            if i < n_val:
                assignment[group] = "validation"
            elif i < n_val + n_test:
                assignment[group] = "test"
            else:
                assignment[group] = "train"
    return assignment


# --------------------------------------------------------------------------------------------
# wiki-topic


def _wiki_topic(
    *,
    min_words: int = 20,
    include_lists: bool = False,
    max_paragraphs_per_article: int | None = None,
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> TaskData:
    """Paragraph topic classification on the Wikipedia excerpt.

    Each paragraph inherits its article's label from :data:`minibert.data.wiki_topics.ARTICLE_TOPICS`.
    Splits are by article (stratified by topic), so no article has paragraphs on both sides:
    a split by paragraph would let the model recognise the article rather than the topic.
    Paragraphs shorter than ``min_words`` (and list items, unless ``include_lists``) are left out;
    ``max_paragraphs_per_article`` caps long articles so that they do not dominate a class.
    """
    articles = wiki_sample_articles()
    unlabelled = [page.title for page, _ in articles if page.title not in ARTICLE_TOPICS]
    if unlabelled:
        raise ValueError(
            f"wiki-topic: {len(unlabelled)} articles of the excerpt have no label in "
            f"minibert/data/wiki_topics.py ({unlabelled[:5]}...); add them to ARTICLE_TOPICS"
        )
    label_index = {label: i for i, label in enumerate(TOPIC_LABELS)}
    by_label: dict[str, list[str]] = {}
    for page, _ in articles:
        by_label.setdefault(ARTICLE_TOPICS[page.title], []).append(page.title)
    assignment = _split_groups(by_label, split_fractions, seed)
    splits: dict[str, list[SequenceExample]] = {"train": [], "validation": [], "test": []}
    for page, article in articles:
        label = label_index[ARTICLE_TOPICS[page.title]]
        kept = 0
        for k, paragraph in enumerate(article.paragraphs):
            if paragraph.kind == "list" and not include_lists:
                continue
            if len(paragraph.text.split()) < min_words:
                continue
            if max_paragraphs_per_article is not None and kept >= max_paragraphs_per_article:
                break
            splits[assignment[page.title]].append(
                SequenceExample(
                    paragraph.text, label, id=f"enwiki-{page.id}-p{k}", group=page.title
                )
            )
            kept += 1
    return TaskData(
        name="wiki-topic",
        kind="sequence",
        labels=list(TOPIC_LABELS),
        description=KNOWN_TASKS["wiki-topic"],
        meta={"articles": {s: sorted(t for t, a in assignment.items() if a == s) for s in splits}},
        **splits,
    )


# --------------------------------------------------------------------------------------------
# sentiment


def _sentiment(*, fold: int = 0, num_folds: int = 5, seed: int = 0) -> TaskData:
    """Few-shot sentence polarity: 200 movie-review sentences with k-fold cross-validation.

    The data (gensim's ``pang_lee_polarity.cor``, ``__label__pos``/``__label__neg``, from Pang &
    Lee's sentence polarity data) is tiny: with 5 folds each validation fold holds 40 sentences,
    so one sentence moves accuracy by 2.5 points. Fine-tune once per fold (``fold=0 ..
    num_folds-1``) and report the mean and spread; every sentence is in exactly one validation
    fold. Folds are stratified (equal shares of each label). The text is as shipped: lower case,
    tokenised with spaces around punctuation. There is no test split.
    """
    if not isinstance(num_folds, int) or not 2 <= num_folds <= 100:
        raise ValueError(f"num_folds must be an int from 2 to 100, got {num_folds!r}")
    if not isinstance(fold, int) or not 0 <= fold < num_folds:
        raise ValueError(f"fold must be an int from 0 to {num_folds - 1}, got {fold!r}")
    path = gensim_test_data("pang_lee_polarity.cor")
    labels = ["neg", "pos"]
    by_label: dict[int, list[SequenceExample]] = {0: [], 1: []}
    for number, line in enumerate(_read_legacy_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        tag, _, text = line.strip().partition(" ")
        name = tag.removeprefix("__label__")
        if name not in labels or not tag.startswith("__label__"):
            raise ValueError(f"{path}:{number}: expected __label__pos/__label__neg, got {tag!r}")
        label = labels.index(name)
        by_label[label].append(SequenceExample(text.strip(), label, id=f"pang-lee-{number:03d}"))
    rng = random.Random(seed)
    train, validation = [], []
    for label in (0, 1):
        examples = list(by_label[label])
        rng.shuffle(examples)
        for i, example in enumerate(examples):
            (validation if i % num_folds == fold else train).append(example)
    return TaskData(
        name="sentiment",
        kind="sequence",
        labels=labels,
        train=train,
        validation=validation,
        test=None,
        description=KNOWN_TASKS["sentiment"],
        meta={
            "fold": fold,
            "num_folds": num_folds,
            "seed": seed,
            "size": len(train) + len(validation),
        },
    )


# --------------------------------------------------------------------------------------------
# wiki-mentions

_WORD = re.compile(r"\w+(?:['’.-]\w+)*|[^\w\s]")
_SENTENCE_END = frozenset({".", "!", "?"})


def words_with_spans(text: str) -> list[tuple[str, int, int]]:
    """Split text into words and punctuation marks, with character spans.

    Word-internal apostrophes, hyphens and dots stay in the word ("don't", "U.S", "well-known"),
    as in CoNLL-style word tokenisation; WordPiece splits further.
    """
    return [(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


def _bio_tags(spans: list[tuple[str, int, int]], links) -> list[int]:
    """B-/I-MENTION over the words that overlap each link span, O elsewhere."""
    tags = [0] * len(spans)
    w = 0
    for start, end, _target in sorted(links):
        while w < len(spans) and spans[w][2] <= start:
            w += 1
        first = True
        j = w
        while j < len(spans) and spans[j][1] < end:
            if tags[j] == 0:  # a word already in an earlier mention keeps its tag
                tags[j] = 1 if first else 2
                first = False
            j += 1
    return tags


def _windows(words: list[str], max_words: int) -> list[tuple[int, int]]:
    """Cut a paragraph into runs of whole sentences of at most ``max_words`` words.

    A sentence ends at ``.``/``!``/``?`` followed by a capitalised word; a sentence longer than
    ``max_words`` is cut, and the caller turns an ``I-`` that opens a window into ``B-``.
    """
    sentences, start = [], 0
    for i, word in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word in _SENTENCE_END and (not nxt or nxt[:1].isupper()):
            sentences.append((start, i + 1))
            start = i + 1
    if start < len(words):
        sentences.append((start, len(words)))
    windows: list[tuple[int, int]] = []
    for s, e in sentences:
        while e - s > max_words:  # an over-long sentence: cut it
            windows.append((s, s + max_words))
            s += max_words
        if windows and windows[-1][1] == s and e - windows[-1][0] <= max_words:
            windows[-1] = (windows[-1][0], e)  # pack consecutive sentences together
        else:
            windows.append((s, e))
    return windows


def _wiki_mentions(
    *,
    max_words: int = 100,
    min_words: int = 5,
    include_lists: bool = False,
    split_fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> TaskData:
    """Mention detection: which words of a Wikipedia paragraph were a link to another article.

    The labels come from the wikitext itself (the spans of ``[[target|text]]`` links that
    :func:`~minibert.data.wikitext.parse_wikitext` keeps), tagged BIO over words. Caveat for
    students: Wikipedia style links a term only at its first mention, so later mentions of the
    same entity are tagged ``O``; precision is therefore the more meaningful number. Examples
    are windows of whole sentences of at most ``max_words`` words; splits are by article.
    """
    if max_words < 1 or min_words < 1:
        raise ValueError(f"max_words and min_words must be >= 1, got {max_words}, {min_words}")
    articles = wiki_sample_articles()
    assignment = _split_groups({None: [p.title for p, _ in articles]}, split_fractions, seed)
    splits: dict[str, list[TokenExample]] = {"train": [], "validation": [], "test": []}
    for page, article in articles:
        for k, paragraph in enumerate(article.paragraphs):
            if paragraph.kind == "list" and not include_lists:
                continue
            spans = words_with_spans(paragraph.text)
            tags = _bio_tags(spans, paragraph.links)
            words = [w for w, _, _ in spans]
            for n, (s, e) in enumerate(_windows(words, max_words)):
                if e - s < min_words:
                    continue
                window_tags = list(tags[s:e])
                if window_tags[0] == 2:
                    window_tags[0] = 1  # a mention cut by the window restarts with B-
                splits[assignment[page.title]].append(
                    TokenExample(
                        tuple(words[s:e]),
                        tuple(window_tags),
                        id=f"enwiki-{page.id}-p{k}-w{n}",
                        group=page.title,
                    )
                )
    return TaskData(
        name="wiki-mentions",
        kind="token",
        labels=list(MENTION_LABELS),
        description=KNOWN_TASKS["wiki-mentions"],
        meta={"articles": {s: sorted(t for t, a in assignment.items() if a == s) for s in splits}},
        **splits,
    )


# --------------------------------------------------------------------------------------------
# Hub tasks


def _load_hub_splits(task: str, repo: str, revision: str | None, **kwargs):
    datasets = require_hub(f"task {task!r}", OFFLINE_TASKS)
    try:
        return datasets.load_dataset(repo, revision=revision, **kwargs)
    except Exception as err:  # network, auth, renamed repository: all mean "not available"
        raise HubUnavailableError(
            f"could not load {repo} for task {task!r} from the hub: {err}. Pass hub_id=... to "
            f"use another copy. Offline alternatives: {', '.join(OFFLINE_TASKS)}."
        ) from err


def sst2_from_splits(splits, limit: int | None = None) -> TaskData:
    """Build the SST-2 task from ``{"train": rows, "validation": rows, ...}`` (hub layout).

    Rows have ``sentence`` and ``label`` (0 negative, 1 positive). GLUE hides the test labels
    (``-1``), so the test split is dropped and ``validation`` is the held-out set, as in the paper's
    GLUE dev results (Devlin et al. 2019, Sec. 4.1).
    """
    out: dict[str, list[SequenceExample]] = {}
    for split in ("train", "validation"):
        rows = splits[split]
        examples = []
        for i, row in enumerate(rows):
            if limit is not None and i >= limit:
                break
            examples.append(
                SequenceExample(row["sentence"].strip(), int(row["label"]), id=f"sst2-{split}-{i}")
            )
        out[split] = examples
    return TaskData(
        name="sst2",
        kind="sequence",
        labels=["negative", "positive"],
        train=out["train"],
        validation=out["validation"],
        test=None,
        description=KNOWN_TASKS["sst2"],
    )


def conll2003_from_splits(splits, limit: int | None = None) -> TaskData:
    """Build the CoNLL-2003 NER task from hub splits with ``tokens`` and ``ner_tags`` columns.

    Tag names come from the dataset's ``ClassLabel`` feature when it has one, else the Hugging
    Face release's order (:data:`CONLL2003_LABELS`).
    """
    labels = list(CONLL2003_LABELS)
    features = getattr(splits["train"], "features", None)
    if features is not None and "ner_tags" in features:
        names = getattr(getattr(features["ner_tags"], "feature", None), "names", None)
        if names:
            labels = list(names)
    out: dict[str, list[TokenExample]] = {}
    for split in ("train", "validation", "test"):
        if split not in splits:
            continue
        examples = []
        for i, row in enumerate(splits[split]):
            if limit is not None and i >= limit:
                break
            if not row["tokens"]:
                continue  # document separators
            examples.append(
                TokenExample(
                    tuple(row["tokens"]),
                    tuple(int(t) for t in row["ner_tags"]),
                    id=f"conll-{split}-{i}",
                )
            )
        out[split] = examples
    return TaskData(
        name="conll2003",
        kind="token",
        labels=labels,
        train=out["train"],
        validation=out["validation"],
        test=out.get("test"),
        description=KNOWN_TASKS["conll2003"],
    )


def _sst2(
    *, hub_id: str = "stanfordnlp/sst2", revision: str | None = None, limit: int | None = None
):
    return sst2_from_splits(_load_hub_splits("sst2", hub_id, revision), limit)


def _conll2003(
    *,
    hub_id: str = "eriktks/conll2003",
    # The repository is script-based, which current `datasets` no longer runs; the hub's
    # automatic Parquet conversion of it lives on this branch.
    revision: str | None = "refs/convert/parquet",
    limit: int | None = None,
):
    return conll2003_from_splits(_load_hub_splits("conll2003", hub_id, revision), limit)


_TASK_BUILDERS = {
    "wiki-topic": _wiki_topic,
    "sentiment": _sentiment,
    "wiki-mentions": _wiki_mentions,
    "sst2": _sst2,
    "conll2003": _conll2003,
}


def load_task(name: str, **options) -> TaskData:
    """Load a downstream task by name (see ``KNOWN_TASKS``).

    Options per task: ``wiki-topic``: ``min_words``, ``include_lists``,
    ``max_paragraphs_per_article``, ``split_fractions``, ``seed``; ``sentiment``: ``fold``,
    ``num_folds``, ``seed``; ``wiki-mentions``: ``max_words``, ``min_words``, ``include_lists``,
    ``split_fractions``, ``seed``; ``sst2``/``conll2003``: ``hub_id``, ``revision``, ``limit``.
    Hub tasks raise :class:`~minibert.data.corpora.HubUnavailableError` at once when offline.
    """
    builder = _TASK_BUILDERS.get(name)
    if builder is None:
        known = ", ".join(f"{k!r} ({v})" for k, v in KNOWN_TASKS.items())
        raise ValueError(f"unknown task {name!r}. Known tasks: {known}")
    try:
        return builder(**options)
    except TypeError as err:
        if "unexpected keyword argument" in str(err):
            raise TypeError(
                f"load_task({name!r}): {err}; see load_task's docstring for the "
                "options each task takes"
            ) from None
        raise


# --------------------------------------------------------------------------------------------
# Tokenization for fine-tuning


def _check_max_len(max_seq_len: int) -> None:
    if not isinstance(max_seq_len, int) or max_seq_len < 3:
        raise ValueError(f"max_seq_len must be an int >= 3 ([CLS] x [SEP]), got {max_seq_len!r}")


def _finish(encoding, labels: list, return_tensors: str | None) -> dict:
    out = {
        "input_ids": encoding["input_ids"],
        "attention_mask": encoding["attention_mask"],
        "token_type_ids": encoding["token_type_ids"],
        "labels": labels,
    }
    if return_tensors == "pt":
        import torch

        out = {key: torch.as_tensor(value, dtype=torch.long) for key, value in out.items()}
    elif return_tensors is not None:
        raise ValueError(f"return_tensors must be None or 'pt', got {return_tensors!r}")
    return out


def encode_sequence_task(
    examples: Sequence[SequenceExample],
    tokenizer,
    max_seq_len: int,
    *,
    padding: bool | str = False,
    return_tensors: str | None = None,
) -> dict:
    """Tokenize sequence examples as ``[CLS] text [SEP]`` (``[CLS] a [SEP] b [SEP]`` for pairs).

    Returns a dict with ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``labels``
    (label indices), as lists of lists (``padding=False``: one length per example) or, with
    ``return_tensors="pt"``, as padded ``(N, T)`` long tensors and ``labels`` ``(N,)``.
    Texts longer than ``max_seq_len`` tokens are truncated.
    """
    _check_max_len(max_seq_len)
    if not examples:
        raise ValueError("encode_sequence_task got no examples")
    texts = [e.text for e in examples]
    pairs = [e.text_pair for e in examples]
    has_pairs = [p is not None for p in pairs]
    if any(has_pairs) and not all(has_pairs):
        raise ValueError("either every example has a text_pair or none has")
    if return_tensors is not None and not padding:
        padding = "longest"
    encoding = tokenizer(
        texts,
        pairs if all(has_pairs) else None,
        truncation=True,
        max_length=max_seq_len,
        padding=padding,
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    return _finish(encoding, [e.label for e in examples], return_tensors)


def encode_token_task(
    examples: Sequence[TokenExample],
    tokenizer,
    max_seq_len: int,
    *,
    padding: bool | str = False,
    return_tensors: str | None = None,
) -> dict:
    """Tokenize word-tagged examples and align the tags to WordPiece pieces.

    Following Devlin et al. (2019, Sec. 5.3) the tag of a word goes on its first piece; its
    continuation pieces, ``[CLS]``, ``[SEP]`` and padding get -100 so the loss ignores them.
    Needs a *fast* tokenizer (its ``word_ids()`` maps pieces back to words). Words cut off by
    ``max_seq_len`` lose their tags (counted in the log at debug level).
    """
    _check_max_len(max_seq_len)
    if not examples:
        raise ValueError("encode_token_task got no examples")
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(
            "encode_token_task needs a fast tokenizer (word_ids() aligns tags to pieces): load it "
            "with transformers.AutoTokenizer.from_pretrained(folder) or wrap a tokenizers.Tokenizer "
            "in PreTrainedTokenizerFast(tokenizer_object=...)"
        )
    if return_tensors is not None and not padding:
        padding = "longest"
    encoding = tokenizer(
        [list(e.words) for e in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_seq_len,
        padding=padding,
        return_token_type_ids=True,
        return_attention_mask=True,
    )
    all_labels, lost = [], 0
    for i, example in enumerate(examples):
        labels, previous, seen = [], None, set()
        for word in encoding.word_ids(i):
            if word is None or word == previous:
                labels.append(IGNORE_INDEX)
            else:
                labels.append(example.tags[word])
                seen.add(word)
            previous = word
        lost += len(example.words) - len(seen)
        all_labels.append(labels)
    if lost:
        logger.debug("encode_token_task: %d words had no piece left after truncation", lost)
    return _finish(encoding, all_labels, return_tensors)


# --------------------------------------------------------------------------------------------
# Similarity benchmarks


@dataclass(frozen=True)
class SimilarityPair:
    """Two items and the mean human similarity score (indices set for document benchmarks)."""

    first: str
    second: str
    score: float
    first_index: int | None = None
    second_index: int | None = None


@dataclass
class SimilarityBenchmark:
    """Pairs with human judgments; compare a model by Spearman correlation with ``score``."""

    name: str
    kind: str  # "word" | "document"
    pairs: list[SimilarityPair]
    score_range: tuple[float, float]
    documents: list[str] | None = None
    description: str = ""


KNOWN_SIMILARITY_BENCHMARKS: dict[str, str] = {
    "wordsim353": "WordSim-353 (Finkelstein et al. 2002): 353 word pairs, relatedness 0-10",
    "simlex999": "SimLex-999 (Hill et al. 2015): 999 word pairs, similarity 0-10",
    "lee": "Lee et al. (2005): 50 news documents, pairwise human similarity 0-1",
}


def _word_pairs(name: str, filename: str) -> SimilarityBenchmark:
    path = gensim_test_data(filename)
    pairs = []
    for number, line in enumerate(_read_legacy_text(path).splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) < 3:
            raise ValueError(f"{path}:{number}: expected 'word1<TAB>word2<TAB>score', got {line!r}")
        pairs.append(SimilarityPair(fields[0].strip(), fields[1].strip(), float(fields[2])))
    return SimilarityBenchmark(
        name=name,
        kind="word",
        pairs=pairs,
        score_range=(0.0, 10.0),
        description=KNOWN_SIMILARITY_BENCHMARKS[name],
    )


def _lee() -> SimilarityBenchmark:
    """The Lee corpus: ``lee.cor`` (50 documents, one per line) and ``similarities0-1.txt``.

    The judgments file is a 50 x 50 matrix of mean human ratings scaled to 0-1, filled in the
    upper triangle (the diagonal is 1, the lower triangle 0); the 1,225 pairs i < j are used.
    """
    documents = [
        " ".join(line.split())
        for line in _read_legacy_text(gensim_test_data("lee.cor")).splitlines()
        if line.strip()
    ]
    path = gensim_test_data("similarities0-1.txt")
    matrix = [
        [float(x) for x in line.split()]
        for line in _read_legacy_text(path).splitlines()
        if line.strip()
    ]
    n = len(documents)
    if len(matrix) != n or any(len(row) != n for row in matrix):
        raise ValueError(f"{path}: expected a {n} x {n} matrix for {n} documents in lee.cor")
    pairs = [
        SimilarityPair(documents[i], documents[j], matrix[i][j], i, j)
        for i in range(n)
        for j in range(i + 1, n)
    ]
    return SimilarityBenchmark(
        name="lee",
        kind="document",
        pairs=pairs,
        score_range=(0.0, 1.0),
        documents=documents,
        description=KNOWN_SIMILARITY_BENCHMARKS["lee"],
    )


def load_similarity_benchmark(name: str) -> SimilarityBenchmark:
    """Load a similarity benchmark with its human scores: ``wordsim353``, ``simlex999``, ``lee``.

    All three ship in gensim's test data and are read in place.
    """
    if name == "wordsim353":
        return _word_pairs(name, "wordsim353.tsv")
    if name == "simlex999":
        return _word_pairs(name, "simlex999.txt")
    if name == "lee":
        return _lee()
    known = ", ".join(f"{k!r} ({v})" for k, v in KNOWN_SIMILARITY_BENCHMARKS.items())
    raise ValueError(f"unknown similarity benchmark {name!r}. Known: {known}")
