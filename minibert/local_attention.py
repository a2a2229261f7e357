"""Local-attention initialisation: heads that look at their neighbours from step 0.

A freshly initialised BERT attends uniformly: every query sees every key with weight about 1/T.
Before masked-word prediction can use the words next to the mask, the model must discover that
"the token one to my left" is worth attending to, and in a few minutes of tiny pretraining it
does not: after 5 minutes the attention of a default-initialised tiny model is still
near-uniform and the masked positions are predicted about as well as by word frequency alone
(docs/recipe.md). This module starts chosen heads as *offset heads* instead: head h of layer l
attends (almost only) to position i + offset. Everything stays trainable, and the weights keep
BERT's shapes and names, so the model is still the standard architecture.

How, in three steps (d = the head size; S = the last d hidden dimensions):

1. **Positions live in S.** The learned position table starts as sinusoids (Vaswani et al.
   2017, Sec. 3.5) confined to S: P[p, S_2k] = sin(p w_k), P[p, S_2k+1] = cos(p w_k). Word and
   token-type embeddings start at zero in S, so after the embedding LayerNorm the S part of
   every token carries its position only.
2. **Shift by a rotation.** For sinusoids, moving a position by ``delta`` is a rotation of each
   (sin, cos) pair by ``-delta * w_k``: ``R_delta P[p] = P[p - delta]`` for every p.
3. **Query reads S, key reads S rotated.** With W_q = a * [0 | I] and W_k = a * [0 | R_delta]
   (for that head's d rows), q_i . k_j = a^2 P[i] . P[j - delta], which is largest when
   j = i + delta: the head attends to the token ``delta`` places away.

The frequencies w_k are spread geometrically over [0.1, 3] radians per position, not the
Transformer's [1e-4, 1]: slowly varying components make P[i] . P[j] nearly the same for all
nearby j, and LayerNorm's per-token scale then decides the argmax instead of the offset
(measured: with the Transformer's frequencies an offset head put 0.52 of its weight on the
target and 0.25 on itself; with [0.1, 3] it puts 0.99 on the target).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["local_attention_init_", "offset_rotation", "subspace_sinusoids"]

MIN_RATE = 0.1  # radians per position: the slowest sinusoid of the position subspace
MAX_RATE = 3.0  # the fastest, just under the Nyquist limit of pi


def subspace_sinusoids(num_positions: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sinusoids over ``size`` dimensions: the table (P, size) and the rates (size // 2,).

    Columns 2k and 2k+1 hold sin(p w_k) and cos(p w_k), w_k geometric from MAX_RATE down to
    MIN_RATE. ``size`` must be even (pairs of sin/cos).
    """
    if size < 2 or size % 2:
        raise ValueError(f"the position subspace needs an even size >= 2, got {size}")
    rates = torch.exp(
        torch.linspace(math.log(MAX_RATE), math.log(MIN_RATE), size // 2, dtype=torch.float64)
    )  # (size/2,)
    angles = torch.arange(num_positions, dtype=torch.float64)[:, None] * rates  # (P, size/2)
    table = torch.empty(num_positions, size, dtype=torch.float64)  # (P, size)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles)
    return table, rates


def offset_rotation(rates: torch.Tensor, offset: int) -> torch.Tensor:
    """The block-diagonal rotation R (2K, 2K) with R @ P[p] = P[p - offset] for every p.

    Each (sin, cos) pair turns by -offset * w_k: sin(x + a) = sin x cos a + cos x sin a and
    cos(x + a) = cos x cos a - sin x sin a, with a = -offset * w_k.
    """
    size = 2 * rates.numel()
    rotation = torch.zeros(size, size, dtype=torch.float64)  # (2K, 2K)
    angle = -offset * rates  # (K,)
    cos, sin = torch.cos(angle), torch.sin(angle)
    even, odd = torch.arange(0, size, 2), torch.arange(1, size, 2)
    rotation[even, even], rotation[even, odd] = cos, sin
    rotation[odd, even], rotation[odd, odd] = -sin, cos
    return rotation


def local_attention_init_(
    model: nn.Module, offsets: Sequence[int], *, scale: float = 1.5, std: float | None = None
) -> nn.Module:
    """Start the first ``len(offsets)`` heads (layer by layer) as offset heads (see the module
    docstring); the other heads keep their random start.

    Args:
        model: a minibert model (a ``BertModel`` or a head class holding one as ``.bert``).
        offsets: one relative offset per head, in order layer 0 head 0, layer 0 head 1, ...,
            e.g. ``(-1, 1)``: layer 0's two heads look at the previous and the next token.
        scale: ``a`` in W_q = a [0 | I]; sharper attention as it grows (1.0: about 0.6 of each
            head's weight on its target at step 0; 1.5: about 0.99).
        std: standard deviation of the position subspace (default: the model's
            ``initializer_range``, the same per-dimension size as the word embeddings).

    Returns:
        ``model``, changed in place.
    """
    bert = getattr(model, "bert", model)
    config = bert.config
    head_size = config.hidden_size // config.num_attention_heads
    layers = bert.layers
    if not offsets:
        return model
    if len(offsets) > len(layers) * config.num_attention_heads:
        raise ValueError(
            f"{len(offsets)} offsets for a model with {len(layers)} layers x "
            f"{config.num_attention_heads} heads; give at most one offset per head"
        )
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    std = config.initializer_range if std is None else std
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    subspace = slice(config.hidden_size - head_size, config.hidden_size)  # S
    embeddings = bert.embeddings
    table, rates = subspace_sinusoids(config.max_position_embeddings, head_size)  # (P, d)
    table = table / table.std() * std
    eye = torch.eye(head_size, dtype=torch.float64)  # (d, d)
    with torch.no_grad():
        embeddings.position.weight.zero_()
        embeddings.position.weight[:, subspace] = table.to(embeddings.position.weight.dtype)
        embeddings.word.weight[:, subspace] = 0.0
        embeddings.token_type.weight[:, subspace] = 0.0
        for index, offset in enumerate(offsets):
            attention = layers[index // config.num_attention_heads].attention
            head = index % config.num_attention_heads
            rows = slice(head * head_size, (head + 1) * head_size)
            rotation = offset_rotation(rates, int(offset))  # (d, d)
            for linear, block in ((attention.query, eye), (attention.key, rotation)):
                linear.weight[rows] = 0.0
                linear.weight[rows, subspace] = (scale * block).to(linear.weight.dtype)
                linear.bias[rows] = 0.0
    return model
