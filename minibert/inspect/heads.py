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
offset heads of :mod:`minibert.local_attention` put about 0.99 on their target at step 0.

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
from minibert.inspect.sources import LoadedModel, ModelSource, encoder_of, evaluating, load_model

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
    encoder = encoder_of(loaded.model)
    with evaluating(loaded.model):
        for batch in token_batches(
            tokenizer, config, texts, batch_size=batch_size, max_length=max_length
        ):
            out = encoder(
                batch.input_ids,
                attention_mask=batch.attention_mask,
                token_type_ids=batch.token_type_ids,
                output_attentions=True,
            )
            weights = torch.stack(out.attentions, dim=1).double()  # (B, L, nh, T, T)
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
