"""Multi-head self-attention, the one module every BERT layer uses.

Vaswani et al. (2017), Section 3.2: scaled dot-product attention (Eq. 1)

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

run in ``nh`` heads side by side on learned projections of the same input, concatenated and
projected back (Section 3.2.2). BERT uses it unchanged and bidirectionally (Devlin et al. 2019,
Section 3): every token may attend to every non-padding token.

Shape names used in the comments of this module:

    B   batch size
    T   sequence length in tokens
    H   hidden size (= nh * hs)
    nh  number of attention heads
    hs  head size, H // nh (d_k in the paper)

(The comments show the usual case where every token asks. When only M positions need an output,
``query_states`` holds just those and the query axis has M entries instead of T.)

One module, two paths to the same numbers:

* the eager path writes every step out (project, split heads, scores, mask, softmax, dropout,
  weighted sum, merge heads, output projection) and can return the attention weights;
* the fast path hands the middle steps to ``torch.nn.functional.scaled_dot_product_attention``,
  which fuses them and never materialises the (T x T) weights. It is used whenever the weights
  are not asked for. ``tests/test_attention.py`` holds the two paths equal.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from minibert.config import BertConfig


def padding_mask_to_additive(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Turn a (B, T) 1 = token / 0 = padding mask into an additive bias over the keys.

    Padding keys get the most negative finite number of ``dtype``, so that after the softmax
    their weight is exactly 0 while a row with no real key at all still stays finite (uniform)
    instead of turning into NaN, as `transformers` does.
    """
    keep = attention_mask.to(torch.bool)[:, None, None, :]  # (B, 1, 1, T) over nh, queries
    bias = torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device)  # (B, 1, 1, T)
    return bias.masked_fill(~keep, torch.finfo(dtype).min)  # (B, 1, 1, T) 0 or -huge


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with ``nh`` heads and an output projection (Vaswani et al. 2017, 3.2.2).

    Parameters keep the `transformers` layout: separate ``query``, ``key`` and ``value``
    projections of shape (H, H) and one ``output`` projection (HF's ``attention.output.dense``).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_size = config.hidden_size // config.num_attention_heads
        self.dropout_prob = config.attention_probs_dropout_prob
        hidden = config.hidden_size
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.output = nn.Linear(hidden, hidden)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_bias: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        query_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from every token to every token.

        Args:
            hidden_states: (B, T, H) input of the layer; keys and values come from here.
            attention_bias: (B, 1, 1, T) additive bias over the keys, from
                :func:`padding_mask_to_additive`, or None when nothing is padding.
            head_mask: (nh,) multipliers for the heads of this layer (1 keeps a head, 0 removes
                it), or None. Applied to the weights, as in Michel et al. (2019), "Are Sixteen
                Heads Really Better than One?".
            output_attentions: return the (B, nh, T, T) weights; takes the eager path.
            query_states: (B, M, H) rows of ``hidden_states`` whose outputs are wanted, or None
                for all of them. They attend to every token as usual; outputs elsewhere are
                simply not computed (used for the last layer in pre-training, where only the
                masked positions feed the loss).

        Returns:
            (output (B, T, H), weights (B, nh, T, T) or None); M instead of T on the query axis
            when ``query_states`` is given.
        """
        queries = hidden_states if query_states is None else query_states  # (B, T, H)
        q = self._split_heads(self.query(queries))  # (B, nh, T, hs)
        k = self._split_heads(self.key(hidden_states))  # (B, nh, T, hs)
        v = self._split_heads(self.value(hidden_states))  # (B, nh, T, hs)
        if output_attentions:
            context, weights = self._eager(q, k, v, attention_bias, head_mask)  # (B, nh, T, hs)
        else:
            context, weights = self._sdpa(q, k, v, attention_bias, head_mask), None
        batch, _, seq_len, _ = context.shape
        merged = context.transpose(1, 2).reshape(batch, seq_len, -1)  # (B, T, H) heads side by side
        return self.output(merged), weights  # (B, T, H)

    def _split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = projected.shape
        heads = projected.view(batch, seq_len, self.num_heads, self.head_size)  # (B, T, nh, hs)
        return heads.transpose(1, 2)  # (B, nh, T, hs) each head attends on its own

    def _eager(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attention_bias: torch.Tensor | None,
        head_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1 step by step; returns (context (B, nh, T, hs), weights (B, nh, T, T))."""
        scale = 1.0 / math.sqrt(self.head_size)  # keeps score variance ~1 (Vaswani 3.2.1)
        scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, nh, T, T) query x key
        if attention_bias is not None:
            scores = scores + attention_bias  # (B, nh, T, T) padding keys pushed to -huge
        weights = scores.softmax(dim=-1)  # (B, nh, T, T) each query's row sums to 1
        weights = F.dropout(weights, self.dropout_prob, self.training)  # (B, nh, T, T)
        if head_mask is not None:
            weights = weights * head_mask.view(1, -1, 1, 1)  # (B, nh, T, T) ablated heads -> 0
        context = torch.matmul(weights, v)  # (B, nh, T, hs) weighted sum of values
        return context, weights

    def _sdpa(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attention_bias: torch.Tensor | None,
        head_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The same computation in one fused kernel; returns context (B, nh, T, hs)."""
        if attention_bias is not None and attention_bias.dtype != q.dtype:
            # Under autocast q is bf16/fp16 while the bias was built in fp32; the kernel wants
            # one dtype, and the fp32 minimum would overflow to -inf in fp16.
            attention_bias = attention_bias.clamp(min=torch.finfo(q.dtype).min).to(q.dtype)
        context = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attention_bias,  # (B, 1, 1, T) broadcast like the eager path
            dropout_p=self.dropout_prob if self.training else 0.0,
        )  # (B, nh, T, hs)
        if head_mask is not None:
            # Scaling a head's weights by m scales its weighted sum by m: same result as eager.
            context = context * head_mask.view(1, -1, 1, 1)  # (B, nh, T, hs)
        return context
