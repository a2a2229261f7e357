"""Reference functions: BERT's core computations as small pure functions.

The modules call these (``MultiHeadSelfAttention`` its eager path, the MLM heads their losses,
``MaskingCollator`` its masking), and the lessons check a student's version against them, so
what a student compares with is exactly what the model runs. Each function cites the equation
it implements; ``tests/test_functional.py`` holds each equal to the module path and to
`transformers`.

* :func:`attention_bias_from_padding` and :func:`scaled_dot_product_attention`: Vaswani et al.
  (2017), Section 3.2.1, Eq. 1;
* :func:`mask_tokens`: BERT's masked-LM corruption, Devlin et al. (2019), Section 3.1, Task #1
  (15% of the tokens, then 80% ``[MASK]`` / 10% random / 10% unchanged);
* :func:`mlm_loss`, :func:`nsp_loss`, :func:`pretraining_loss`: the two pre-training losses and
  their sum (Devlin et al. 2019, Section 3.1 and Appendix A.2);
* :func:`positions_from_labels`: where the masked-LM labels are, for the sparse MLM head.

Shape names: B batch, T sequence length (keys), M query positions or masked positions per row,
nh heads, hs head size, V vocabulary size.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from minibert.constants import IGNORE_INDEX

__all__ = [
    "IGNORE_INDEX",
    "MaskKind",
    "TokenMasking",
    "attention_bias_from_padding",
    "mask_tokens",
    "mlm_loss",
    "nsp_loss",
    "positions_from_labels",
    "pretraining_loss",
    "scaled_dot_product_attention",
]


# -- attention -------------------------------------------------------------------------------


def attention_bias_from_padding(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a (B, T) 1 = token / 0 = padding mask into an additive bias over the keys.

    The bias is added to the scores before the softmax: 0 for a real key, and for a padding key
    the most negative *finite* number of ``dtype``, so its weight after the softmax is exactly 0
    while a row with no real key at all stays finite (uniform) instead of turning into NaN
    (-inf - -inf), as in `transformers`.

    Returns:
        (B, 1, 1, T): broadcast over the heads and the queries.
    """
    keep = attention_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, T) over nh, queries
    bias = torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device)  # (B, 1, 1, T)
    return bias.masked_fill(~keep, torch.finfo(dtype).min)  # (B, 1, 1, T) 0 or -huge


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attention_bias: torch.Tensor | None = None,
    *,
    dropout_p: float = 0.0,
    training: bool = False,
    head_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention written out, Vaswani et al. (2017), Eq. 1:

        Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + bias) V

    Args:
        q: (B, nh, M, hs) queries (M = T for self-attention).
        k, v: (B, nh, T, hs) keys and values.
        attention_bias: added to the scores, e.g. (B, 1, 1, T) from
            :func:`attention_bias_from_padding`; None adds nothing.
        dropout_p: dropout on the attention weights, applied only when ``training``
            (Vaswani et al. 2017, Section 5.4; BERT's ``attention_probs_dropout_prob``).
        head_mask: (nh,) multipliers for the heads (1 keeps a head, 0 removes it), or a tensor
            that broadcasts to the weights; applied after the softmax, as in Michel et al.
            (2019), "Are Sixteen Heads Really Better than One?".

    Returns:
        (output (B, nh, M, hs), weights (B, nh, M, T)); the weights are the ones multiplied with
        ``v`` (after dropout and head mask), as `transformers` returns them.
    """
    scale = 1.0 / math.sqrt(q.shape[-1])  # 1/sqrt(d_k): keeps the score variance ~1 (3.2.1)
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, nh, M, T) query x key
    if attention_bias is not None:
        scores = scores + attention_bias  # (B, nh, M, T) padding keys pushed to -huge
    weights = scores.softmax(dim=-1)  # (B, nh, M, T) each query's row sums to 1
    weights = F.dropout(weights, dropout_p, training)  # (B, nh, M, T)
    if head_mask is not None:
        if head_mask.dim() == 1:
            head_mask = head_mask.view(1, -1, 1, 1)  # (1, nh, 1, 1)
        weights = weights * head_mask  # (B, nh, M, T) removed heads -> 0
    output = torch.matmul(weights, v)  # (B, nh, M, hs) weighted sum of the values
    return output, weights


# -- masked-LM corruption ----------------------------------------------------------------------


class MaskKind(enum.IntEnum):
    """What :func:`mask_tokens` did at a position."""

    NONE = 0  # not selected: no label, input unchanged
    MASK = 1  # selected, replaced by [MASK] (80%)
    RANDOM = 2  # selected, replaced by a random token (10%)
    KEPT = 3  # selected, left unchanged (10%)


@dataclass
class TokenMasking:
    """The result of :func:`mask_tokens`, all (B, T).

    ``input_ids``: the corrupted inputs; ``labels``: the original id at selected positions and
    -100 (``IGNORE_INDEX``) elsewhere; ``kind``: a :class:`MaskKind` value per position.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    kind: torch.Tensor

    @property
    def selected(self) -> torch.Tensor:
        """(B, T) bool: the positions the model must predict."""
        return self.kind != MaskKind.NONE


def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    *,
    vocab_size: int,
    mask_token_id: int,
    mlm_probability: float = 0.15,
    mask_replace_prob: float = 0.8,
    random_replace_prob: float = 0.1,
    word_ids: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    max_predictions: int | None = None,
    replacement_ids: torch.Tensor | None = None,
) -> TokenMasking:
    """BERT's masked-LM corruption (Devlin et al. 2019, Section 3.1, Task #1; Appendix A.1).

    1. **Select.** Of the positions where ``special_tokens_mask`` is False, a fraction
       ``mlm_probability`` is selected for prediction. With ``word_ids`` whole words are
       selected (Devlin et al.'s whole-word-masking release): consecutive selectable positions
       that share a word id form one unit, chosen or left together.
    2. **Corrupt.** Each selected unit becomes ``[MASK]`` with probability ``mask_replace_prob``
       (0.8), a random token with probability ``random_replace_prob`` (0.1) and stays itself
       otherwise (0.1); one draw per unit, so a word is corrupted in one way.
    3. **Label.** ``labels`` holds the original id where selected, -100 elsewhere.

    Two selection modes:

    * ``max_predictions=None`` (default): every unit is selected independently with probability
      ``mlm_probability`` (as `transformers`' ``DataCollatorForLanguageModeling`` and RoBERTa
      do), so the rate is exact in expectation for any length. If the whole batch comes out
      with nothing selected, one random unit is selected so a loss is defined.
    * ``max_predictions=M`` (fixed count, BERT's ``max_predictions_per_seq``): a row with ``n``
      selectable tokens gets exactly ``k = min(M, max(1, round(p * n)))`` selected tokens
      (round half up), units taken in random order while they fit into ``k`` (a word that
      would overflow is skipped, as in BERT's script; exact for single tokens).

    Args:
        input_ids: (B, T) long token ids (not modified).
        special_tokens_mask: (B, T) bool, True where a position may not be selected
            ([CLS], [SEP], padding, ...).
        vocab_size: random replacements are drawn from ``range(vocab_size)``...
        mask_token_id: the id of ``[MASK]``.
        word_ids: (B, T) long word index per position, or None (every token is its own unit).
        generator: the random stream (None: torch's global generator). The same generator state
            gives the same masks.
        max_predictions: see the selection modes above.
        replacement_ids: ...or from these ids (1-D long) when given, e.g. the non-special ids,
            so a random replacement never fakes a [SEP] (`transformers` draws from the whole
            vocabulary).

    Returns:
        :class:`TokenMasking` with ``input_ids``, ``labels`` and ``kind``, all (B, T).
    """
    if input_ids.dim() != 2 or special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"input_ids must be (B, T) and special_tokens_mask the same shape, got "
            f"{tuple(input_ids.shape)} and {tuple(special_tokens_mask.shape)}."
        )
    if not 0.0 < mlm_probability <= 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1], got {mlm_probability}.")
    if mask_replace_prob < 0 or random_replace_prob < 0:
        raise ValueError("mask_replace_prob and random_replace_prob must be >= 0.")
    if mask_replace_prob + random_replace_prob > 1.0 + 1e-9:
        raise ValueError(
            f"mask_replace_prob={mask_replace_prob} + random_replace_prob={random_replace_prob} "
            "is more than 1 (BERT: 0.8 and 0.1)."
        )
    if word_ids is not None and word_ids.shape != input_ids.shape:
        raise ValueError(f"word_ids must have shape {tuple(input_ids.shape)} like input_ids.")
    device = input_ids.device
    draw_device = generator.device if generator is not None else device

    def uniform(shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=draw_device).to(device)

    input_ids = input_ids.long()
    candidates = ~special_tokens_mask.to(torch.bool)  # (B, T) positions that may be selected
    starts, start_of = _masking_units(candidates, word_ids)  # (B, T), (B, T)

    if max_predictions is None:
        chosen = starts & (uniform(starts.shape) < mlm_probability)  # (B, T) unit starts
        if not bool(chosen.any()) and bool(starts.any()):
            pick = torch.argmax(uniform(starts.shape) * starts)  # one random unit, batch-wide
            chosen.view(-1)[pick] = True
    else:
        chosen = _fixed_count_selection(
            candidates, starts, start_of, mlm_probability, max_predictions, uniform
        )
    selected = candidates & chosen.gather(1, start_of)  # (B, T) every token of a chosen unit

    # One 80/10/10 draw per unit, shared by all its tokens.
    draw = uniform(starts.shape).gather(1, start_of)  # (B, T)
    to_mask = selected & (draw < mask_replace_prob)  # (B, T)
    to_random = selected & ~to_mask & (draw < mask_replace_prob + random_replace_prob)
    if replacement_ids is None:
        random_tokens = torch.randint(
            vocab_size, input_ids.shape, generator=generator, device=draw_device
        ).to(device)  # (B, T)
    else:
        index = torch.randint(
            len(replacement_ids), input_ids.shape, generator=generator, device=draw_device
        )  # (B, T)
        random_tokens = replacement_ids.to(device)[index.to(device)]  # (B, T)
    corrupted = torch.where(to_mask, torch.full_like(input_ids, mask_token_id), input_ids)
    corrupted = torch.where(to_random, random_tokens, corrupted)  # (B, T)
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    kind = torch.full_like(input_ids, MaskKind.NONE)  # (B, T)
    kind[selected] = MaskKind.KEPT
    kind[to_mask] = MaskKind.MASK
    kind[to_random] = MaskKind.RANDOM
    return TokenMasking(input_ids=corrupted, labels=labels, kind=kind)


def _masking_units(
    candidates: torch.Tensor, word_ids: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each masking unit starts (B, T) bool, and for every token the start of its unit.

    Without ``word_ids`` every candidate is a unit. With them a candidate continues the unit of
    the candidate just before it when the two share a word id.
    """
    batch_size, width = candidates.shape
    positions = torch.arange(width, device=candidates.device).expand(batch_size, width)  # (B, T)
    if word_ids is None:
        return candidates, positions
    same_word = torch.zeros_like(candidates)  # (B, T)
    same_word[:, 1:] = word_ids[:, 1:] == word_ids[:, :-1]
    previous_is_candidate = F.pad(candidates[:, :-1], (1, 0))  # (B, T)
    starts = candidates & ~(same_word & previous_is_candidate)  # (B, T)
    marked = torch.where(starts, positions, torch.full_like(positions, -1))  # (B, T)
    start_of = torch.cummax(marked, dim=1).values.clamp(min=0)  # (B, T) latest start so far
    start_of = torch.where(candidates, start_of, positions)
    return starts, start_of


def _fixed_count_selection(
    candidates: torch.Tensor,
    starts: torch.Tensor,
    start_of: torch.Tensor,
    mlm_probability: float,
    max_predictions: int,
    uniform: Callable[[torch.Size], torch.Tensor],
) -> torch.Tensor:
    """Unit starts chosen so that each row gets exactly its token budget (greedy fill of whole
    units in random order, skipping units that overflow; exact for single tokens)."""
    n_candidates = candidates.sum(dim=1)  # (B,)
    budget = torch.floor(n_candidates * mlm_probability + 0.5).long()
    budget = budget.clamp(min=1, max=max_predictions)
    budget = torch.where(n_candidates > 0, budget, torch.zeros_like(budget))  # (B,)
    unit_length = torch.zeros_like(start_of).scatter_add_(
        1, start_of, candidates.long()
    )  # (B, T): tokens per unit, at its start
    never = torch.full(starts.shape, 2.0, device=starts.device)  # sorts after every draw
    scores = torch.where(starts, uniform(starts.shape), never)
    order = scores.argsort(dim=1)  # (B, T): units in random order, then non-starts
    length_in_order = unit_length.gather(1, order)  # (B, T)
    taken = torch.zeros_like(starts)  # (B, T), in `order`
    remaining = budget.clone()  # (B,)
    # Each pass takes the longest prefix of still-fitting units; the unit that overflowed is
    # longer than what is left, so later passes skip it, exactly like the sequential greedy.
    # Token-level masking (all lengths 1) needs one pass.
    for _ in range(int(length_in_order.max()) + 1 if length_in_order.numel() else 0):
        fits = ~taken & (length_in_order > 0) & (length_in_order <= remaining[:, None])
        running = torch.cumsum(torch.where(fits, length_in_order, 0), dim=1)  # (B, T)
        take = fits & (running <= remaining[:, None])
        if not bool(take.any()):
            break
        taken |= take
        remaining -= (length_in_order * take).sum(dim=1)
    return torch.zeros_like(starts).scatter_(1, order, taken)  # (B, T) back to positions


def positions_from_labels(
    labels: torch.Tensor, num_positions: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's labelled positions (label != -100), in order, padded with position 0.

    Args:
        labels: (B, T) masked-LM labels.
        num_positions: M, the width of the result; default the largest count in the batch.

    Returns:
        (positions (B, M) long, real (B, M) bool: False where the entry is padding). Padding
        points at position 0 ([CLS], whose label is -100), so ``labels.gather(1, positions)``
        is -100 there and a loss ignores it.
    """
    chosen = labels != IGNORE_INDEX  # (B, T) True where a token is to be predicted
    counts = chosen.sum(dim=1)  # (B,)
    most = int(counts.max()) if counts.numel() else 0
    width = most if num_positions is None else num_positions
    if most > width:
        raise ValueError(
            f"A sequence has {most} labelled positions but num_positions={width}; raise it."
        )
    # A stable sort on "not chosen" brings each row's chosen positions to the front, in order.
    order = torch.sort((~chosen).to(torch.uint8), dim=1, stable=True).indices  # (B, T)
    if order.shape[1] < width:  # fewer positions than asked for: pad the columns
        order = F.pad(order, (0, width - order.shape[1]))
    positions = order[:, :width]  # (B, M)
    real = torch.arange(width, device=labels.device) < counts.unsqueeze(1)  # (B, M)
    return positions.masked_fill(~real, 0), real


# -- losses ----------------------------------------------------------------------------------


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Masked-LM loss: the mean cross-entropy over the positions whose label is not -100.

        L_MLM = -(1 / |S|) sum_{i in S} log softmax(logits_i)[labels_i],  S = {i : labels_i != -100}

    (Devlin et al. 2019, Section 3.1, Task #1: "the final hidden vectors corresponding to the
    mask tokens are fed into an output softmax over the vocabulary".) NaN when S is empty.

    Args:
        logits: (..., V), e.g. (B, T, V) or (B, M, V).
        labels: (...) the matching target ids, -100 where nothing is predicted.
    """
    vocab_size = logits.shape[-1]
    return F.cross_entropy(
        logits.reshape(-1, vocab_size), labels.reshape(-1), ignore_index=IGNORE_INDEX
    )  # scalar


def nsp_loss(
    seq_relationship_logits: torch.Tensor, next_sentence_label: torch.Tensor
) -> torch.Tensor:
    """Next-sentence-prediction loss: mean cross-entropy of the (B, 2) [CLS] logits against the
    (B,) labels, 0 = B follows A, 1 = B is random (Devlin et al. 2019, Section 3.1, Task #2)."""
    return F.cross_entropy(seq_relationship_logits.reshape(-1, 2), next_sentence_label.reshape(-1))


def pretraining_loss(mlm: torch.Tensor, nsp: torch.Tensor) -> torch.Tensor:
    """BERT's pre-training objective: the sum of the mean masked-LM likelihood and the mean
    next-sentence likelihood (Devlin et al. 2019, Appendix A.2), unweighted."""
    return mlm + nsp
