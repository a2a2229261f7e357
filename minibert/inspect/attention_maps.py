"""Attention weights of every layer and head for one text, with the tokens they refer to.

The weights are softmax(Q K^T / sqrt(d_k)) of Vaswani et al. (2017), Eq. 1, per head, as the
model computes them (minibert's eager attention path, the one ``output_attentions=True``
takes): row i is how query token i spreads its attention over the key tokens, and sums to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minibert.inspect.errors import HeadIndexError
from minibert.inspect.sources import (
    LoadedModel,
    ModelSource,
    attention_weights,
    load_model,
)
from minibert.inspect.tokens import EncodedText, encode_text

__all__ = ["AttentionResult", "attention", "attention_from_encoded", "check_head"]


@dataclass
class AttentionResult:
    """Attention of one text through one model.

    ``attentions`` is (L, nh, T, T) float32: layer, head, query (row), key (column).
    """

    tokens: list[str]
    word_ids: list[int | None]
    words: list[str]
    special_mask: list[bool]
    token_type_ids: list[int]
    attentions: np.ndarray
    text: str
    text_pair: str | None
    source: ModelSource
    truncated: bool
    num_tokens_before_truncation: int

    @property
    def num_layers(self) -> int:
        return int(self.attentions.shape[0])

    @property
    def num_heads(self) -> int:
        return int(self.attentions.shape[1])

    @property
    def seq_len(self) -> int:
        return int(self.attentions.shape[2])

    def head(self, layer: int, head: int) -> np.ndarray:
        """The (T, T) weights of one head, with a clear error for an index out of range."""
        check_head(layer, head, self.num_layers, self.num_heads)
        return self.attentions[layer, head]


def check_head(layer: int | None, head: int | None, num_layers: int, num_heads: int) -> None:
    """Raise :class:`HeadIndexError` unless ``layer`` and ``head`` (when given) exist."""
    if layer is not None and not 0 <= int(layer) < num_layers:
        raise HeadIndexError(
            f"layer {layer} does not exist: this model has {num_layers} layers, "
            f"numbered 0 to {num_layers - 1}"
        )
    if head is not None and not 0 <= int(head) < num_heads:
        raise HeadIndexError(
            f"head {head} does not exist: this model has {num_heads} heads per layer, "
            f"numbered 0 to {num_heads - 1}"
        )


def run_attention(loaded: LoadedModel, encoded: EncodedText) -> np.ndarray:
    """The model's attention weights on ``encoded``: (L, nh, T, T) float32 numpy.

    Only the encoder runs (no vocabulary logits), under ``inference_mode``.
    """
    weights = attention_weights(loaded.model, encoded)[0]  # (L, nh, T, T): the one text
    return weights.to(torch.float32).numpy()


def attention_from_encoded(
    loaded: LoadedModel, encoded: EncodedText, text: str, text_pair: str | None
) -> AttentionResult:
    """:func:`attention` for text that is already encoded (the same tokens across models)."""
    return AttentionResult(
        tokens=encoded.tokens,
        word_ids=encoded.word_ids,
        words=encoded.words,
        special_mask=encoded.special_mask,
        token_type_ids=encoded.token_type_ids[0].tolist(),
        attentions=run_attention(loaded, encoded),
        text=text,
        text_pair=text_pair,
        source=loaded.source,
        truncated=encoded.truncated,
        num_tokens_before_truncation=encoded.num_tokens_before_truncation,
    )


def attention(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int | None = None,
) -> AttentionResult:
    """Every layer's and head's attention weights for ``text`` (and ``text_pair``).

    ``model_source`` is anything :func:`minibert.inspect.load_model` takes. Text longer than
    the model's positions (or ``max_length``) is truncated and the result says so
    (``truncated``, ``num_tokens_before_truncation``).

    Raises:
        InputTextError: empty text. ModelSourceError: a source that does not load.
    """
    loaded = load_model(model_source)
    encoded = encode_text(loaded.tokenizer, loaded.config, text, text_pair, max_length=max_length)
    return attention_from_encoded(loaded, encoded, text, text_pair)
