"""Held-out sentences and batches: the text that head statistics and ablations average over.

The default sentences come from gensim's ``lee.cor``: the 50 news documents of the Lee et al.
(2005) document-similarity study. Neither offline training corpus contains them (``lee-news``
is the 300 *background* documents, ``lee_background.cor``; ``wiki-sample`` is Wikipedia), so
every model here sees them for the first time, and any tokenizer can read them (they are raw
text, not another tokenizer's ids). A few dozen sentences keep a look under a second or two.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minibert.config import BertConfig
from minibert.inspect.errors import InputTextError
from minibert.inspect.tokens import model_max_length, structural_token_ids

__all__ = ["HELDOUT_FILE", "TokenBatch", "heldout_sentences", "token_batches"]

HELDOUT_FILE = "lee.cor"
DEFAULT_SENTENCES = 32  # enough for stable per-head averages (each sentence has ~25 tokens)
MIN_WORDS, MAX_WORDS = 6, 60  # skip headings and run-on fragments


@functools.lru_cache(maxsize=4)
def _all_heldout_sentences() -> tuple[str, ...]:
    from minibert.data.tasks import load_similarity_benchmark
    from minibert.data.text import split_sentences

    documents = load_similarity_benchmark("lee").documents or []  # lee.cor, one per line
    sentences = []
    for document in documents:
        for sentence in split_sentences(document):
            if MIN_WORDS <= len(sentence.split()) <= MAX_WORDS:
                sentences.append(sentence)
    return tuple(sentences)


def heldout_sentences(count: int | None = DEFAULT_SENTENCES) -> list[str]:
    """The first ``count`` held-out sentences (all of them, about 300, for ``None``)."""
    sentences = _all_heldout_sentences()
    return list(sentences if count is None else sentences[:count])


def check_texts(texts: Sequence[str] | None, count: int | None = DEFAULT_SENTENCES) -> list[str]:
    """``texts`` checked (a list of non-empty strings), or the default held-out sentences."""
    if texts is None:
        return heldout_sentences(count)
    if isinstance(texts, str):
        raise InputTextError("texts must be a list of sentences, not one string; wrap it: [text]")
    texts = list(texts)
    if not texts:
        raise InputTextError("texts is empty; give some sentences, or None for the default set")
    for index, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise InputTextError(f"texts[{index}] is empty or not a string: {text!r}")
    return texts


@dataclass
class TokenBatch:
    """Padded model inputs for a few sentences, and which entries are real tokens."""

    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T) 1 = real token, 0 = padding
    token_type_ids: torch.Tensor  # (B, T)
    special: torch.Tensor  # (B, T) bool: [CLS], [SEP], [PAD]


def token_batches(
    tokenizer: Any,
    config: BertConfig,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    max_length: int | None = 128,
) -> Iterator[TokenBatch]:
    """The texts as padded batches, each text cut to ``max_length`` (and the model's length)."""
    limit = model_max_length(config, tokenizer, max_length)
    special_ids = torch.tensor(sorted(structural_token_ids(tokenizer)))
    for start in range(0, len(texts), batch_size):
        encoded = tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=limit,
            return_tensors="pt",
        )
        input_ids = encoded["input_ids"]
        token_type_ids = encoded.get("token_type_ids")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        yield TokenBatch(
            input_ids=input_ids,
            attention_mask=encoded["attention_mask"],
            token_type_ids=token_type_ids,
            special=torch.isin(input_ids, special_ids),
        )
