"""What each attention head does: statistics, a classification, ablation, and comparisons.

**Statistics** follow Clark et al. (2019), "What Does BERT Look At?", Sec. 3-4: for every
(layer, head), averaged over every query token of a set of held-out sentences:

==================  =========================================================================
``entropy``         -sum_j a_ij log a_ij, in nats (0: all weight on one key; log T: uniform)
``normalized_entropy``  entropy / log(number of keys): 1.0 is uniform attention, any length
``distance``        sum_j a_ij |i - j|: how far, in tokens, the head looks on average
``cls``, ``sep``    weight on [CLS], on [SEP] (Clark et al. Sec. 3.2: heads that park there)
``punctuation``     weight on tokens made only of punctuation ("." "," "##-" ...)
``self``            a_ii, weight on the query token itself
``previous``        a_i,i-1 (queries that have a previous token)
``next``            a_i,i+1 (queries that have a next token)
==================  =========================================================================

**Classes** (:data:`HEAD_CLASSES`), decided in this order with :data:`CLASS_THRESHOLDS`:

1. ``previous-token`` / ``next-token`` / ``self``: that one position holds at least
   ``positional`` (0.5) of the weight on average; the largest wins if several do;
2. ``delimiter``: [CLS] + [SEP] + punctuation hold at least ``delimiter`` (0.5);
3. ``broad``: normalized entropy at least ``broad`` (0.8): spread over most of the sentence;
4. ``mixed``: none of the above (often content-dependent, e.g. syntactic heads).

0.5 means "more than everything else together" for one position; Clark et al. report
previous/next-token heads above 0.5 and delimiter heads above 0.5 in BERT-base, and the
offset heads of :func:`minibert.init.local_attention_init_` put about 0.99 on their target at step 0.

**Ablation** switches heads off with ``head_mask`` (Michel et al. 2019, "Are Sixteen Heads
Really Better than One?", Sec. 3) and measures the metric without them.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minibert.inspect.heldout import check_texts, token_batches
from minibert.inspect.sources import (
    LoadedModel,
    ModelSource,
    attention_weights,
    evaluating,
    load_model,
    model_inputs,
)

__all__ = [
    "CLASS_THRESHOLDS",
    "HEAD_CLASSES",
    "HEAD_METRICS",
    "HeadStats",
    "classify_heads",
    "head_statistics",
]

logger = logging.getLogger(__name__)

HEAD_CLASSES = ("previous-token", "next-token", "self", "delimiter", "broad", "mixed")
HEAD_METRICS = (
    "entropy",
    "normalized_entropy",
    "distance",
    "cls",
    "sep",
    "punctuation",
    "self",
    "previous",
    "next",
)
CLASS_THRESHOLDS: dict[str, float] = {
    "positional": 0.5,  # previous / next / self: at least this much weight on that one token
    "delimiter": 0.5,  # [CLS] + [SEP] + punctuation together
    "broad": 0.8,  # normalized entropy (1.0 = uniform over the sentence)
}


@dataclass
class HeadStats:
    """Per-head statistics (each (L, nh)) and classes; see the module docstring."""

    metrics: dict[str, np.ndarray]
    classes: np.ndarray  # (L, nh) of str, one of HEAD_CLASSES
    thresholds: dict[str, float]
    num_sentences: int
    source: ModelSource
    num_tokens: int = 0  # query tokens averaged over
    texts: list[str] = field(default_factory=list)

    def heads_of_class(self, name: str) -> list[tuple[int, int]]:
        """(layer, head) of every head in class ``name``."""
        return [tuple(map(int, index)) for index in np.argwhere(self.classes == name)]

    def table(self) -> list[dict[str, Any]]:
        """One row per head: layer, head, class and every metric (for a DataFrame)."""
        layers, heads = self.classes.shape
        rows = []
        for layer in range(layers):
            for head in range(heads):
                row: dict[str, Any] = {"layer": layer, "head": head}
                row["class"] = str(self.classes[layer, head])
                row.update({k: float(v[layer, head]) for k, v in self.metrics.items()})
                rows.append(row)
        return rows


def _is_punctuation(token: str) -> bool:
    token = token.removeprefix("##")
    return bool(token) and all(unicodedata.category(ch).startswith("P") for ch in token)


def classify_heads(
    metrics: dict[str, np.ndarray], thresholds: dict[str, float] | None = None
) -> np.ndarray:
    """The class of each head from its statistics (rules in the module docstring)."""
    limits = {**CLASS_THRESHOLDS, **(thresholds or {})}
    positional = np.stack([metrics["previous"], metrics["next"], metrics["self"]])  # (3, L, nh)
    names = np.array(["previous-token", "next-token", "self"])
    delimiter = metrics["cls"] + metrics["sep"] + metrics["punctuation"]
    classes = np.full(metrics["entropy"].shape, "mixed", dtype=object)
    classes[metrics["normalized_entropy"] >= limits["broad"]] = "broad"
    classes[delimiter >= limits["delimiter"]] = "delimiter"
    best = positional.argmax(axis=0)  # (L, nh)
    strong = positional.max(axis=0) >= limits["positional"]
    classes[strong] = names[best[strong]]
    return classes.astype(str)


def head_statistics(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    texts: Sequence[str] | None = None,
    *,
    num_sentences: int = 32,
    max_length: int = 128,
    batch_size: int = 16,
    thresholds: dict[str, float] | None = None,
) -> HeadStats:
    """Statistics and a class for every (layer, head), over ``texts`` (default: the first
    ``num_sentences`` held-out sentences of :mod:`minibert.inspect.heldout`)."""
    loaded = load_model(model_source)
    texts = check_texts(texts, num_sentences)
    config = loaded.config
    shape = (config.num_hidden_layers, config.num_attention_heads)
    sums = {name: torch.zeros(shape, dtype=torch.float64) for name in HEAD_METRICS}
    counts = {name: 0 for name in HEAD_METRICS}
    tokenizer = loaded.tokenizer
    cls_id, sep_id = tokenizer.cls_token_id, tokenizer.sep_token_id
    vocab_punctuation: dict[int, bool] = {}
    for batch in token_batches(
        tokenizer, config, texts, batch_size=batch_size, max_length=max_length
    ):
        weights = attention_weights(loaded.model, batch).double()  # (B, L, nh, T, T)
        _accumulate(weights, batch, cls_id, sep_id, tokenizer, vocab_punctuation, sums, counts)
    metrics = {name: (sums[name] / max(counts[name], 1)).numpy() for name in HEAD_METRICS}
    limits = {**CLASS_THRESHOLDS, **(thresholds or {})}
    return HeadStats(
        metrics=metrics,
        classes=classify_heads(metrics, limits),
        thresholds=limits,
        num_sentences=len(texts),
        source=loaded.source,
        num_tokens=counts["entropy"],
        texts=texts,
    )


def _accumulate(weights, batch, cls_id, sep_id, tokenizer, punctuation_cache, sums, counts):
    """Add one batch's per-query statistics to ``sums`` (per head) and ``counts`` (queries)."""
    real = batch.attention_mask.bool()  # (B, T)
    ids = batch.input_ids
    length = real.sum(dim=1).double()  # (B,)
    for token_id in ids[real].unique().tolist():
        if token_id not in punctuation_cache:
            token = tokenizer.convert_ids_to_tokens(token_id)
            punctuation_cache[token_id] = _is_punctuation(token)
    is_punct = torch.tensor(
        [[punctuation_cache.get(t, False) for t in row] for row in ids.tolist()]
    )  # (B, T)
    keys = {
        "cls": (ids == cls_id) & real,
        "sep": (ids == sep_id) & real,
        "punctuation": is_punct & real & ~batch.special,
    }
    query = real[:, None, None, :].double()  # (B, 1, 1, T) real query rows
    num_queries = int(real.sum())

    def add(name: str, per_query: torch.Tensor, mask: torch.Tensor, count: int) -> None:
        sums[name] += (per_query * mask).sum(dim=(0, 3))  # (L, nh)
        counts[name] += count

    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(-1)  # (B, L, nh, T)
    add("entropy", entropy, query, num_queries)
    log_len = length.clamp_min(2).log()[:, None, None, None]  # (B, 1, 1, 1)
    add("normalized_entropy", entropy / log_len, query, num_queries)
    positions = torch.arange(ids.shape[1], dtype=torch.float64)
    gap = (positions[:, None] - positions[None, :]).abs()  # (T, T) |i - j|
    add("distance", (weights * gap).sum(-1), query, num_queries)
    for name, key_mask in keys.items():
        on_keys = (weights * key_mask[:, None, None, None, :].double()).sum(-1)  # (B, L, nh, T)
        add(name, on_keys, query, num_queries)
    add("self", torch.diagonal(weights, 0, -2, -1), query, num_queries)
    # diagonal offset -1: a[i+1, i] = query i+1 on its previous token; offset +1: a[i, i+1].
    # Both need positions i and i+1 real, i.e. position i+1 real (padding only trails).
    pair = real[:, None, None, 1:].double()  # (B, 1, 1, T-1)
    num_pairs = int(real[:, 1:].sum())
    add("previous", torch.diagonal(weights, -1, -2, -1), pair, num_pairs)
    add("next", torch.diagonal(weights, 1, -2, -1), pair, num_pairs)


# --------------------------------------------------------------------------------------------
# Ablation: switch heads off and measure
# --------------------------------------------------------------------------------------------


@dataclass
class AblationResult:
    """The metric with each head switched off, and with a chosen set off together.

    ``rows`` is (layer, head, score, score - baseline), most harmful removal first (the
    largest drop, or for a loss the largest rise).
    """

    metric_name: str  # "masked-token accuracy", "accuracy", "macro-F1", "word accuracy"
    baseline: float
    scores: np.ndarray  # (L, nh): the metric with that one head off (NaN where not measured)
    rows: list[tuple[int, int, float, float]]
    chosen: tuple[tuple[int, int], ...] = ()
    chosen_score: float | None = None
    num_examples: int = 0  # predictions the metric averages over
    source: ModelSource | None = None
    higher_is_better: bool = True  # False for "masked-token loss"


MASKED_LM_METRICS = ("masked-token accuracy", "masked-token loss")


class _Evaluator:
    """A metric of the model on fixed inputs, as a function of the head mask (L, nh)."""

    name: str
    count: int
    higher_is_better: bool = True

    def __call__(self, head_mask: torch.Tensor | None) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


class _MaskedTokenMetric(_Evaluator):
    """Accuracy (or mean cross-entropy) at the positions BERT's masking selects, with fixed
    masks (one seed)."""

    def __init__(
        self, loaded: LoadedModel, texts: list[str], seed: int, batch_size: int, metric: str
    ):
        self.name = metric
        self.higher_is_better = metric == "masked-token accuracy"
        from minibert.functional import positions_from_labels
        from minibert.inspect.masking import apply_bert_masking

        self.loaded = loaded
        self.batches = []
        self.count = 0
        for index, batch in enumerate(
            token_batches(loaded.tokenizer, loaded.config, texts, batch_size=batch_size)
        ):
            masked, labels, _ = apply_bert_masking(
                loaded.tokenizer,
                batch.input_ids,
                seed=seed + index,
                attention_mask=batch.attention_mask,
            )
            positions, _ = positions_from_labels(labels)  # (B, M), padded with 0
            targets = labels.gather(1, positions)  # (B, M), -100 on padding
            self.count += int((targets != -100).sum())
            self.batches.append((masked, batch, positions, targets))

    def __call__(self, head_mask: torch.Tensor | None) -> float:
        from minibert.inspect.predictions import masked_lm_logits

        correct, loss = 0, 0.0
        for masked, batch, positions, targets in self.batches:
            logits = masked_lm_logits(
                self.loaded,
                masked,
                positions,
                attention_mask=batch.attention_mask,
                token_type_ids=batch.token_type_ids,
                head_mask=head_mask,
            )  # (B, M, V)
            real = targets != -100
            correct += int(((logits.argmax(-1) == targets) & real).sum())
            loss += float(
                torch.nn.functional.cross_entropy(
                    logits.float().transpose(1, 2), targets, ignore_index=-100, reduction="sum"
                )
            )
        if self.higher_is_better:
            return correct / max(self.count, 1)
        return loss / max(self.count, 1)


class _ClassificationMetric(_Evaluator):
    """Accuracy or macro-F1 of a sequence classifier on labelled texts (or text pairs)."""

    def __init__(
        self,
        loaded: LoadedModel,
        examples: list[tuple[str, str | None, int]],
        metric: str,
        batch_size: int,
    ):
        from minibert.inspect.tokens import model_max_length

        self.loaded = loaded
        self.name = metric
        self.gold = [label for _, _, label in examples]
        self.count = len(examples)
        limit = model_max_length(loaded.config, loaded.tokenizer, _run_max_length(loaded))
        self.batches = []
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            pairs = [pair for _, pair, _ in chunk]
            encoded = loaded.tokenizer(
                [text for text, _, _ in chunk],
                pairs if any(p is not None for p in pairs) else None,
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            )
            self.batches.append(encoded)

    def __call__(self, head_mask: torch.Tensor | None) -> float:
        from minibert.train.metrics import accuracy, macro_f1

        predicted: list[int] = []
        with evaluating(self.loaded.model):
            for encoded in self.batches:
                out = self.loaded.model(
                    **model_inputs(
                        self.loaded.model,
                        input_ids=encoded["input_ids"],
                        attention_mask=encoded["attention_mask"],
                        token_type_ids=encoded.get("token_type_ids"),
                        head_mask=head_mask,
                    )
                )
                predicted += out.logits.argmax(-1).tolist()
        if self.name == "macro-F1":
            return macro_f1(self.gold, predicted, self.loaded.config.num_labels)
        return accuracy(self.gold, predicted)


class _WordTagAccuracy(_Evaluator):
    """Word-level tag accuracy of a token classifier (each word read at its first piece)."""

    name = "word accuracy"

    def __init__(
        self, loaded: LoadedModel, examples: list[tuple[list[str], list[int]]], batch_size
    ):
        from minibert.inspect.tokens import model_max_length

        self.loaded = loaded
        limit = model_max_length(loaded.config, loaded.tokenizer, _run_max_length(loaded))
        self.batches = []
        self.count = 0
        for start in range(0, len(examples), batch_size):
            chunk = examples[start : start + batch_size]
            encoded = loaded.tokenizer(
                [words for words, _ in chunk],
                is_split_into_words=True,
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            )
            labels = torch.full(encoded["input_ids"].shape, -100)  # (B, T)
            for row, (_, tags) in enumerate(chunk):
                previous = None
                for position, word in enumerate(encoded.word_ids(row)):
                    if word is not None and word != previous:
                        labels[row, position] = tags[word]
                    previous = word
            self.count += int((labels != -100).sum())
            self.batches.append((encoded, labels))

    def __call__(self, head_mask: torch.Tensor | None) -> float:
        correct = 0
        with evaluating(self.loaded.model):
            for encoded, labels in self.batches:
                out = self.loaded.model(
                    **model_inputs(
                        self.loaded.model,
                        input_ids=encoded["input_ids"],
                        attention_mask=encoded["attention_mask"],
                        token_type_ids=encoded.get("token_type_ids"),
                        head_mask=head_mask,
                    )
                )
                guess = out.logits.argmax(-1).cpu()  # (B, T)
                correct += int(((guess == labels) & (labels != -100)).sum())
        return correct / max(self.count, 1)


def _run_max_length(loaded: LoadedModel) -> int | None:
    """The ``task.max_seq_len`` a fine-tuning run was trained and scored with, if recorded."""
    import json

    run = loaded.source.run
    if run is None or not (run / "run.json").is_file():
        return None
    try:
        info = json.loads((run / "run.json").read_text(encoding="utf-8"))
        return int(info["config"]["task"]["max_seq_len"])
    except (KeyError, TypeError, ValueError):
        return None


def _finetune_examples(loaded: LoadedModel, split: str, limit: int) -> list[dict[str, Any]]:
    """Labelled examples of a fine-tuning run, from its predictions.jsonl (``split``)."""
    from minibert.inspect.errors import UnsupportedModelError

    run = loaded.source.run
    path = run / "predictions.jsonl" if run is not None else None
    if path is None or not path.is_file():
        raise UnsupportedModelError(
            f"{loaded.source.label} is a classifier, but no labelled data was given and it is "
            "not a finished fine-tuning run (runs/<name>/predictions.jsonl); pass texts= and "
            "labels= to ablate_heads"
        )
    import json

    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("split") == split:
                records.append(record)
    if not records:
        raise UnsupportedModelError(f"{path} has no {split!r} examples to measure on")
    return records[:limit]


def _evaluator(loaded, texts, labels, metric, num_sentences, seed, max_examples, batch_size):
    from minibert.heads import (
        BertForSequenceClassification,
        BertForTokenClassification,
        _BertWithMaskedLM,
    )
    from minibert.inspect.errors import InputTextError, UnsupportedModelError

    model = loaded.model
    label2id = {str(k): int(v) for k, v in (loaded.config.label2id or {}).items()}
    if isinstance(model, BertForSequenceClassification):
        if metric not in (None, "accuracy", "macro-F1"):
            raise InputTextError(f"metric {metric!r}: a classifier offers 'accuracy' or 'macro-F1'")
        if texts is None:
            records = _finetune_examples(loaded, "validation", max_examples)
            examples = [(r["text"], r.get("text_pair"), label2id[r["label"]]) for r in records]
        else:
            texts = check_texts(texts)
            if labels is None or len(labels) != len(texts):
                raise InputTextError("give one label per text (labels=[...]) to score a classifier")
            ids = [label2id[x] if isinstance(x, str) else int(x) for x in labels]
            examples = [(text, None, label) for text, label in zip(texts, ids, strict=True)]
        return _ClassificationMetric(loaded, examples, metric or "accuracy", batch_size)
    if isinstance(model, BertForTokenClassification):
        if texts is not None:
            raise InputTextError("ablating a tagger uses its run's validation words and tags")
        records = _finetune_examples(loaded, "validation", max_examples)
        examples = [(r["words"], [label2id[t] for t in r["tags"]]) for r in records]
        return _WordTagAccuracy(loaded, examples, batch_size)
    if isinstance(model, _BertWithMaskedLM):
        if metric not in (None, *MASKED_LM_METRICS):
            raise InputTextError(
                f"metric {metric!r}: a masked LM offers {' or '.join(map(repr, MASKED_LM_METRICS))}"
            )
        texts = check_texts(texts, num_sentences)
        return _MaskedTokenMetric(
            loaded, texts, seed, batch_size, metric or "masked-token accuracy"
        )
    raise UnsupportedModelError(
        f"{loaded.source.label} is a bare encoder ({type(model).__name__}) with nothing to "
        "score; ablate a pretraining run (masked-token accuracy) or a fine-tuned one"
    )


def _head_mask(config, off: Sequence[tuple[int, int]]) -> torch.Tensor:
    """(L, nh) ones with zeros at the heads in ``off`` (checked by the caller)."""
    mask = torch.ones(config.num_hidden_layers, config.num_attention_heads)  # (L, nh)
    for layer, head in off:
        mask[layer, head] = 0.0
    return mask


def ablate_heads(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    *,
    chosen: Sequence[tuple[int, int]] = (),
    each: bool = True,
    texts: Sequence[str] | None = None,
    labels: Sequence[int | str] | None = None,
    metric: str | None = None,
    num_sentences: int = 64,
    seed: int = 0,
    max_examples: int = 256,
    batch_size: int = 32,
) -> AblationResult:
    """Switch heads off through ``head_mask`` and measure what the model loses.

    The metric follows the model: masked-token accuracy for a masked LM (held-out sentences,
    BERT's masking with a fixed ``seed``, so every ablation sees the same masks; or
    ``metric="masked-token loss"``, which moves even when an under-trained model's guesses,
    often the most frequent token everywhere, do not); accuracy
    (or ``metric="macro-F1"``) for a sequence classifier, on ``texts``/``labels`` or on its
    fine-tuning run's validation examples (predictions.jsonl); word accuracy for a tagger.

    Args:
        chosen: heads (layer, head) switched off together, scored as ``chosen_score``.
        each: also score every head switched off alone (L x nh forward passes of the data).

    Raises:
        HeadIndexError: a chosen head outside the model. UnsupportedModelError: a bare encoder.
    """
    from minibert.inspect.attention_maps import check_head

    loaded = load_model(model_source)
    config = loaded.config
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    chosen = tuple((int(layer), int(head)) for layer, head in chosen)
    for layer, head in chosen:
        check_head(layer, head, layers, heads)
    evaluate = _evaluator(
        loaded, texts, labels, metric, num_sentences, seed, max_examples, batch_size
    )
    baseline = evaluate(None)
    scores = np.full((layers, heads), np.nan)
    if each:
        for layer in range(layers):
            for head in range(heads):
                scores[layer, head] = evaluate(_head_mask(config, [(layer, head)]))
    rows = sorted(
        (
            (layer, head, float(scores[layer, head]), float(scores[layer, head] - baseline))
            for layer in range(layers)
            for head in range(heads)
            if not np.isnan(scores[layer, head])
        ),
        key=lambda row: (row[3] if evaluate.higher_is_better else -row[3], row[0], row[1]),
    )
    chosen_score = evaluate(_head_mask(config, chosen)) if chosen else None
    return AblationResult(
        metric_name=evaluate.name,
        baseline=baseline,
        scores=scores,
        rows=rows,
        chosen=chosen,
        chosen_score=chosen_score,
        num_examples=evaluate.count,
        source=loaded.source,
        higher_is_better=evaluate.higher_is_better,
    )


# --------------------------------------------------------------------------------------------
# Comparing two models on the same text
# --------------------------------------------------------------------------------------------


@dataclass
class AttentionComparison:
    """Two models' attention on the same tokens, and how far apart each head is.

    ``difference`` (L, nh) is the total variation distance between the two heads' attention
    rows, averaged over the query tokens: 0.5 * sum_j |a_ij - b_ij|, i.e. the fraction of
    attention weight that moved (0 = identical, 1 = no overlap). ``max_difference`` is the
    largest such row distance per head.
    """

    a: Any  # AttentionResult
    b: Any  # AttentionResult
    difference: np.ndarray
    max_difference: np.ndarray
    measure: str = "total variation"

    def most_changed(self, count: int = 5) -> list[tuple[int, int, float]]:
        """The ``count`` heads that changed most: (layer, head, difference)."""
        order = np.argsort(-self.difference, axis=None)[:count]
        layers, heads = np.unravel_index(order, self.difference.shape)
        return [
            (int(layer), int(head), float(self.difference[layer, head]))
            for layer, head in zip(layers, heads, strict=True)
        ]


def compare_attention(
    source_a: str | Path | torch.nn.Module | LoadedModel,
    source_b: str | Path | torch.nn.Module | LoadedModel,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int | None = None,
) -> AttentionComparison:
    """How each head's attention differs between two models on the same text (e.g. a
    pretrained model and its fine-tuned copy, or full fine-tuning and LoRA).

    Raises:
        InspectError: the models tokenize the text differently or differ in shape (compare
        models that share a tokenizer and an architecture).
    """
    from minibert.inspect.attention_maps import attention
    from minibert.inspect.errors import InspectError

    a = attention(source_a, text, text_pair, max_length=max_length)
    b = attention(source_b, text, text_pair, max_length=max_length)
    if a.tokens != b.tokens:
        raise InspectError(
            f"{a.source.label} and {b.source.label} split the text into different tokens "
            f"({len(a.tokens)} vs {len(b.tokens)}); compare models that share a tokenizer"
        )
    if a.attentions.shape != b.attentions.shape:
        raise InspectError(
            f"{a.source.label} has {a.num_layers} layers x {a.num_heads} heads and "
            f"{b.source.label} {b.num_layers} x {b.num_heads}; compare models of one shape"
        )
    rows = 0.5 * np.abs(a.attentions - b.attentions).sum(-1)  # (L, nh, T): per query row
    return AttentionComparison(a=a, b=b, difference=rows.mean(-1), max_difference=rows.max(-1))
