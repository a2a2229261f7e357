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

(The comments show self-attention, where every token asks. When ``query_states`` holds only M
rows, the query axis has M entries instead of T.)

One module, two kernels for the same numbers, chosen by ``config.attn_implementation``:

* ``"eager"``: every step written out (project, split heads, scores, mask, softmax, dropout,
  weighted sum, merge heads, output projection); the middle steps are
  :func:`minibert.functional.scaled_dot_product_attention`, the reference a lesson checks
  against. It can return the attention weights.
* ``"sdpa"`` (the default): the middle steps go to ``torch.nn.functional.
  scaled_dot_product_attention``, which fuses them and never materialises the (T x T)
  weights. As in `transformers`, a call that asks for the weights (``output_attentions=True``)
  runs eagerly. ``tests/test_attention.py`` holds the two kernels equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minibert.config import BertConfig, check_attn_implementation
from minibert.functional import attention_bias_from_padding, scaled_dot_product_attention

__all__ = ["MultiHeadSelfAttention", "attention_bias_from_padding"]


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with ``nh`` heads and an output projection (Vaswani et al. 2017, 3.2.2).

    Parameters keep the `transformers` layout: separate ``query``, ``key`` and ``value``
    projections of shape (H, H) and one ``output`` projection (HF's ``attention.output.dense``).
    The kernel is read from ``config.attn_implementation`` at every call, so changing the
    model's config (``model.set_attn_implementation("eager")``) switches a built model.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config  # shared with the model: read for the kernel at every call
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
        *,
        query_states: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Attend from every token to every token.

        Args:
            hidden_states: (B, T, H) input of the layer; keys and values come from here.
            attention_bias: (B, 1, 1, T) additive bias over the keys, from
                :func:`~minibert.functional.attention_bias_from_padding`, or None when nothing
                is padding.
            head_mask: (nh,) multipliers for the heads of this layer (1 keeps a head, 0 removes
                it), or None. Applied to the weights, as in Michel et al. (2019), "Are Sixteen
                Heads Really Better than One?".
            output_attentions: return the (B, nh, T, T) weights; runs this call eagerly.
            query_states: (B, M, H) the queries' input when it is not ``hidden_states`` (Q, K
                and V are separate inputs of Eq. 1), or None for self-attention. Only
                :mod:`minibert.sparse` uses it: rows of ``hidden_states`` whose outputs are
                wanted, attending to every token as usual.

        Returns:
            (output (B, T, H), weights (B, nh, T, T) or None); M instead of T on the query axis
            when ``query_states`` is given.
        """
        queries = hidden_states if query_states is None else query_states  # (B, T, H)
        q = self._split_heads(self.query(queries))  # (B, nh, T, hs)
        k = self._split_heads(self.key(hidden_states))  # (B, nh, T, hs)
        v = self._split_heads(self.value(hidden_states))  # (B, nh, T, hs)
        kernel = self.config.attn_implementation
        if output_attentions or kernel == "eager":
            context, weights = scaled_dot_product_attention(
                q,
                k,
                v,
                attention_bias,
                dropout_p=self.dropout_prob,
                training=self.training,
                head_mask=head_mask,
            )  # (B, nh, T, hs), (B, nh, T, T)
            if not output_attentions:
                weights = None
        else:
            check_attn_implementation(kernel)  # a value set on the config after validation
            context, weights = self._sdpa(q, k, v, attention_bias, head_mask), None
        batch, heads, seq_len, head_size = context.shape
        merged = context.transpose(1, 2).reshape(batch, seq_len, heads * head_size)  # (B, T, H)
        return self.output(merged), weights  # (B, T, H)

    def _split_heads(self, projected: torch.Tensor) -> torch.Tensor:
        batch, seq_len, _ = projected.shape
        heads = projected.view(batch, seq_len, self.num_heads, self.head_size)  # (B, T, nh, hs)
        return heads.transpose(1, 2)  # (B, nh, T, hs) each head attends on its own

    def _sdpa(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attention_bias: torch.Tensor | None,
        head_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """Eq. 1 in PyTorch's fused kernel; returns context (B, nh, T, hs)."""
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
