"""Text -> model inputs, keeping what a reader needs: pieces, words, segments, truncation.

One function, :func:`encode_text`, used by every inspection that runs a model on a text, so
they all agree on special tokens, truncation and the words each word piece belongs to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch

from minibert.config import BertConfig
from minibert.inspect.errors import InputTextError

__all__ = ["EncodedText", "encode_text", "model_max_length", "structural_token_ids"]

logger = logging.getLogger(__name__)


@dataclass
class EncodedText:
    """One text (or sentence pair) ready for the model, plus its human-readable side."""

    input_ids: torch.Tensor  # (1, T)
    token_type_ids: torch.Tensor  # (1, T)
    attention_mask: torch.Tensor  # (1, T)
    tokens: list[str]  # T word pieces, [CLS]/[SEP] included
    word_ids: list[int | None]  # which word (counted over both segments); None for specials
    words: list[str]  # the words, as spelled in the text
    special_mask: list[bool]
    truncated: bool
    num_tokens_before_truncation: int


def structural_token_ids(tokenizer: Any) -> set[int]:
    """Ids of [CLS], [SEP] and [PAD]: the tokens that frame the text rather than belong to it
    ([MASK] and [UNK] stand for words, so figures keep them)."""
    ids = (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id)
    return {token_id for token_id in ids if token_id is not None}


def model_max_length(config: BertConfig, tokenizer: Any, max_length: int | None = None) -> int:
    """The longest input: ``max_length`` if given, never more than the model's positions."""
    limit = int(config.max_position_embeddings)
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < limit:
        limit = tokenizer_limit
    if max_length is not None:
        if max_length < 3:
            raise InputTextError(f"max_length={max_length} leaves no room for a word; give >= 3")
        limit = min(limit, int(max_length))
    return limit


def _check_text(text: Any, name: str) -> str:
    if not isinstance(text, str):
        raise InputTextError(f"{name} must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputTextError(f"{name} is empty; give a sentence to look at, e.g. 'The cat sat.'")
    return text


def encode_text(
    tokenizer: Any,
    config: BertConfig,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int | None = None,
) -> EncodedText:
    """Tokenize ``text`` (and ``text_pair``) as BERT reads it, cut to the model's length.

    A text longer than the model's positions is truncated (the longer segment first, for
    pairs) and the result says so, with the token count before truncation.
    """
    text = _check_text(text, "text")
    if text_pair is not None:
        text_pair = _check_text(text_pair, "text_pair")
    limit = model_max_length(config, tokenizer, max_length)
    # verbose=False: the over-long warning is ours to give (truncated=True), not the tokenizer's
    full_length = len(tokenizer(text, text_pair, verbose=False)["input_ids"])
    encoding = tokenizer(
        text,
        text_pair,
        truncation="longest_first" if full_length > limit else False,
        max_length=limit if full_length > limit else None,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    truncated = full_length > limit
    if truncated:
        logger.info("text truncated from %d to %d tokens", full_length, limit)
    input_ids = encoding["input_ids"]  # (1, T)
    token_type_ids = encoding.get("token_type_ids")
    if token_type_ids is None:
        token_type_ids = torch.zeros_like(input_ids)
    sequence_ids = encoding.sequence_ids(0)  # 0 / 1 per piece, None for specials
    piece_words = encoding.word_ids(0)  # word index within its own segment
    offsets = encoding["offset_mapping"][0].tolist()  # (T, 2) character spans

    # Number words over both segments: segment B's words continue after segment A's.
    texts = (text, text_pair)
    word_ids: list[int | None] = []
    words: list[str] = []
    spans: dict[tuple[int, int], list[int]] = {}  # (segment, word) -> [start, end]
    order: dict[tuple[int, int], int] = {}
    for segment, word, (start, end) in zip(sequence_ids, piece_words, offsets, strict=True):
        if segment is None or word is None:
            word_ids.append(None)
            continue
        key = (segment, word)
        if key not in order:
            order[key] = len(order)
            spans[key] = [start, end]
        else:
            spans[key][0] = min(spans[key][0], start)
            spans[key][1] = max(spans[key][1], end)
        word_ids.append(order[key])
    for key in order:  # dicts keep insertion order: words in reading order
        start, end = spans[key]
        words.append(texts[key[0]][start:end])
    special_ids = structural_token_ids(tokenizer)
    ids = input_ids[0].tolist()
    return EncodedText(
        input_ids=input_ids,
        token_type_ids=token_type_ids,
        attention_mask=encoding["attention_mask"],
        tokens=tokenizer.convert_ids_to_tokens(ids),
        word_ids=word_ids,
        words=words,
        special_mask=[token_id in special_ids for token_id in ids],
        truncated=truncated,
        num_tokens_before_truncation=full_length,
    )
