"""A pre-training speed-up: the last encoder layer computed only where the loss reads it.

In masked-LM pre-training only the M masked positions (about 15% of T) feed the loss, plus
[CLS] for next-sentence prediction. Every earlier layer is needed everywhere, because each of its
outputs is a key and a value for the next layer, but the *last* layer's outputs elsewhere are
never read. :func:`layer_at_positions` computes that layer for M rows instead of T: the queries
are the M rows, the keys and values still every token, so each of those rows is exactly what
the full layer gives there (tests/test_model.py holds them equal, and
tests/test_hf_equivalence.py the loss and gradients to `transformers`).

It is one explicit switch, off by default so the default forward reads as the paper:
``BertForMaskedLM/BertForPreTraining.forward(..., masked_positions=..., sparse_last_layer=True)``
(which passes ``output_positions`` to :meth:`minibert.model.BertModel.forward`). The trainer
turns it on. What it buys on top of computing vocabulary logits only at the masked positions
(``python bench/bench_model.py --compare-last-layer``: batch 32 x 128, 19 masked per row,
vocabulary 8192, fp32, AdamW step, median of interleaved steps in one process, 1 thread on a
loaded 2-core machine): tiny steps 1.35x faster in wall time (1.45x in CPU time), mini 1.17x
(1.16x); docs/architecture.md, "Sparse MLM", has the figures.

Shapes: B batch, T sequence length, M positions asked for, H hidden size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # model.py imports this module
    from minibert.model import BertLayer


def gather_positions(hidden_states: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rows ``positions`` (B, M) of each sequence in ``hidden_states`` (B, T, H) -> (B, M, H)."""
    index = positions.unsqueeze(-1).expand(-1, -1, hidden_states.shape[-1])  # (B, M, H)
    return hidden_states.gather(1, index)  # (B, M, H)


def layer_at_positions(
    layer: BertLayer,
    hidden_states: torch.Tensor,
    positions: torch.Tensor,
    attention_bias: torch.Tensor | None = None,
    head_mask: torch.Tensor | None = None,
    output_attentions: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``layer(hidden_states)`` at rows ``positions`` only: (B, T, H) -> (B, M, H).

    The same two sub-layers as :meth:`BertLayer.forward`; the only difference is that the
    residual stream is the M gathered rows (``queries``), which also ask the attention's
    questions, while the keys and values come from all T tokens.

    Returns:
        (output (B, M, H), attention weights (B, nh, M, T) or None).
    """
    queries = gather_positions(hidden_states, positions)  # (B, M, H)
    attended, weights = layer.attention(
        hidden_states, attention_bias, head_mask, output_attentions, query_states=queries
    )  # (B, M, H), (B, nh, M, T) or None
    queries = layer.attention_norm(queries + layer.dropout(attended))  # (B, M, H)
    transformed = layer.ffn(queries)  # (B, M, H)
    return layer.ffn_norm(queries + layer.dropout(transformed)), weights  # (B, M, H)
