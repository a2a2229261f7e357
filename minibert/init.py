"""How a model's weights start: BERT's initialisation and the training recipe's starting values.

None of these change the architecture: the tensors keep BERT's shapes and names, a model
initialised here is still the standard BERT that `transformers` loads, and training may move
every value. They differ only in where training starts. In order of the recipe
(:class:`minibert.train.settings.InitConfig` and docs/recipe.md hold the measurements):

* :func:`bert_init_`: BERT's own start, Normal(0, std) weights, zero biases, unit LayerNorm
  (the *init std* is ``BertConfig.initializer_range``; the recipe uses 0.05 instead of 0.02);
* :func:`sinusoidal_position_init_`: the learned position table starts as the Transformer's
  sinusoids (Vaswani et al. 2017, Sec. 3.5);
* :func:`identity_query_key_init_`: query and key weights start near the identity;
* :func:`local_attention_init_`: chosen heads start as *offset heads* (previous token, next
  token), with their own position table (below);
* :func:`unigram_log_prior`: the MLM output bias starts at log p(token);
* :func:`recipe_init_` applies the recipe's choice of these to a fresh pre-training model.

Offset heads
------------
Local-attention initialisation: heads that look at their neighbours from step 0.

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
from typing import Any

import torch
from torch import nn

from minibert.attention import MultiHeadSelfAttention

__all__ = [
    "bert_init_",
    "identity_query_key_init_",
    "local_attention_init_",
    "offset_rotation",
    "recipe_init_",
    "sinusoidal_position_init_",
    "subspace_sinusoids",
    "unigram_log_prior",
]


def bert_init_(module: nn.Module, std: float) -> None:
    """BERT's initialisation of one module, as the BERT reference code and `transformers` do it:
    linear and embedding weights ~ Normal(0, ``std``) (``initializer_range``), biases 0, the
    padding embedding row 0, LayerNorm weight 1 and bias 0. Use with ``model.apply``."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def sinusoidal_position_init_(embedding: nn.Embedding, std: float = 0.02) -> nn.Embedding:
    """Fill a learned position embedding with the sinusoids of Vaswani et al. (2017), Sec. 3.5.

    PE(pos, 2i) = sin(pos / 10000^(2i/H)), PE(pos, 2i+1) = cos(pos / 10000^(2i/H)), rescaled so
    the table's standard deviation is ``std`` (BERT's other embeddings start at
    ``initializer_range`` = 0.02, so the sum stays balanced). Only the starting values change:
    the table stays a trainable ``nn.Embedding`` with the same shape and key, so the model is
    still the standard BERT (transformers loads it). Why: with random positions, attention has
    no notion of "my neighbour" to start from, and a short pretraining spends its first
    minutes on the unigram plateau; the sinusoids give dot products that depend on relative
    offset from step 0 (measured in docs/recipe.md).
    """
    if std <= 0:
        raise ValueError(f"std must be positive, got {std}")
    num_positions, hidden = embedding.weight.shape  # (P, H)
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    rates = 10000.0 ** (-torch.arange(0, hidden, 2, dtype=torch.float64) / hidden)  # (ceil(H/2),)
    angles = positions * rates  # (P, ceil(H/2))
    table = torch.zeros(num_positions, hidden, dtype=torch.float64)  # (P, H)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : hidden // 2])
    table = table / table.std() * std
    with torch.no_grad():
        embedding.weight.copy_(table.to(embedding.weight.dtype))
    return embedding


def identity_query_key_init_(model: nn.Module, scale: float = 1.0) -> nn.Module:
    """Add ``scale`` times the identity to every attention layer's query and key weights.

    Then q_i . k_j starts as (about) ``scale**2 * x_i . x_j``: each token attends most to the
    tokens whose representations resemble its own, and with sinusoidal positions (Vaswani et
    al. 2017, Sec. 3.5) that includes its neighbours, since p_i . p_j falls with |i - j|.
    BERT's Normal(0, 0.02) init instead starts every attention map uniform with tiny
    gradients, and a few minutes of tiny pretraining never leave it (measured: docs/recipe.md).
    Only the starting values change; the layout and the architecture stay BERT's.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, MultiHeadSelfAttention):
                for linear in (module.query, module.key):
                    size = min(linear.weight.shape)
                    linear.weight[:size, :size] += scale * torch.eye(size)
    return model


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


def unigram_log_prior(
    examples: Sequence[Any], vocab_size: int, never_targets: Sequence[int] = ()
) -> torch.Tensor:
    """log p(token) over the examples' input ids, add-one smoothed: (V,) float32.

    Used as the MLM output bias at initialisation (``init.mlm_bias_init="unigram"``): a model
    whose hidden states carry no information yet then predicts the unigram distribution,
    the best context-free guess, instead of a uniform one. ``never_targets`` (the special
    tokens the collator never selects) keep only the smoothing count.
    """
    counts = torch.ones(vocab_size, dtype=torch.float64)  # (V,) add-one smoothing
    for example in examples:
        ids = torch.as_tensor(example.input_ids, dtype=torch.long)  # (T,)
        counts += torch.bincount(ids, minlength=vocab_size)[:vocab_size].double()
    for token_id in never_targets:
        counts[token_id] = 1.0
    return (counts / counts.sum()).log().float()


def recipe_init_(
    model: nn.Module, settings: Any, *, unigram_prior: torch.Tensor | None = None
) -> nn.Module:
    """Apply the training recipe's starting values to a freshly built MLM model, in place.

    Args:
        model: a ``BertForMaskedLM`` or ``BertForPreTraining`` just built (so already at
            :func:`bert_init_`).
        settings: the run's :class:`minibert.train.settings.InitConfig` (``position_init``,
            ``position_init_std``, ``attention_identity_init``, ``local_attention_offsets``,
            ``local_attention_scale``, ``mlm_bias_init``).
        unigram_prior: (V,) the MLM output bias when ``settings.mlm_bias_init == "unigram"``
            (from :func:`unigram_log_prior` over the training examples).
    """
    # Offset heads bring their own position table, so they replace the sinusoidal one.
    if settings.position_init == "sinusoidal" and not settings.local_attention_offsets:
        sinusoidal_position_init_(model.bert.embeddings.position, std=settings.position_init_std)
    if settings.attention_identity_init > 0:
        identity_query_key_init_(model, scale=settings.attention_identity_init)
    if settings.local_attention_offsets:
        local_attention_init_(
            model, settings.local_attention_offsets, scale=settings.local_attention_scale
        )
    if settings.mlm_bias_init == "unigram":
        if unigram_prior is None:
            raise ValueError("mlm_bias_init='unigram' needs unigram_prior (unigram_log_prior).")
        with torch.no_grad():
            model.mlm.bias.copy_(unigram_prior)
    return model
