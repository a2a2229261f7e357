"""Lesson 02, attention: the exercises (scaled dot-product attention, the padding mask, splitting
a hidden vector into heads), their named mistakes, and the helpers the notebook uses to measure
softmax saturation and to run MiniLM's attention by hand.

Scaled dot-product attention, Vaswani et al. (2017), Section 3.2.1, Eq. 1:

    Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k)) V

with BERT's padding mask added to the scores before the softmax (an additive bias that is 0 for
a real key and very negative for a padding key), and multi-head attention (Section 3.2.2): the
hidden vector is split into ``nh`` slices of ``hs = H / nh`` numbers, each head attends on its
own slice, and the results are concatenated and projected back.

The references the checks compare with are :func:`minibert.functional.scaled_dot_product_attention`
and :func:`minibert.functional.attention_bias_from_padding`, the functions the model runs.

Shapes: B batch, nh heads, T keys (= queries in self-attention), d_k (= hs) head size, H hidden.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from minibert.functional import attention_bias_from_padding, scaled_dot_product_attention
from minibert.lessons.checking import Mistake, Report, exercise

# --------------------------------------------------------------------------------------------
# Exercise 1: scaled dot-product attention
# --------------------------------------------------------------------------------------------


def solution_attention(q, k, v):
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T, T) query x key
    weights = scores.softmax(dim=-1)  # (..., T, T) each query's row sums to 1 over the keys
    output = weights @ v  # (..., T, d_k) weighted average of the values
    return output, weights


def _reference_attention(q, k, v):
    return scaled_dot_product_attention(q, k, v)


def _attention_softmax_wrong_axis(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = scores.softmax(dim=-2)  # over the queries: columns sum to 1, rows do not
    return weights @ v, weights


def _attention_no_scaling(q, k, v):
    weights = (q @ k.transpose(-2, -1)).softmax(dim=-1)
    return weights @ v, weights


def _attention_scaled_by_d_k(q, k, v):
    weights = (q @ k.transpose(-2, -1) / q.shape[-1]).softmax(dim=-1)
    return weights @ v, weights


def _attention_wrong_transpose(q, k, v):
    scores = (
        q.transpose(-2, -1) @ k / math.sqrt(q.shape[-1])
    )  # (..., d_k, d_k): features x features
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def _attention_naive_exp(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    e = scores.exp()  # overflows to inf for a score above ~88 (float32)
    weights = e / e.sum(dim=-1, keepdim=True)
    return weights @ v, weights


def _random(report: Report, *shape: int, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=report.generator) * scale


def _check_pair(report: Report, got: Any, output_shape: tuple, weights_shape: tuple, case: str):
    """Shapes first: (output, weights) with the shapes the docstring promises."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        report.fail(
            f"return two tensors, (output, weights); got {type(got).__name__}. The weights are "
            "what the softmax gives, the output is weights @ v.",
            case=case,
        )
    report.shape("output", got[0], output_shape, case=case)
    report.shape("weights", got[1], weights_shape, case=case)


def _rows_and_columns(report: Report, weights: torch.Tensor, case: str) -> None:
    """Name the wrong softmax axis from a property, whatever else the answer does."""
    if not torch.isfinite(weights).all():
        return
    rows = weights.sum(-1)
    cols = weights.sum(-2)
    rows_ok = torch.allclose(rows, torch.ones_like(rows), atol=1e-4)
    cols_ok = torch.allclose(cols, torch.ones_like(cols), atol=1e-4)
    if cols_ok and not rows_ok:
        report.fail(
            f"each *column* of your weights sums to 1 (column sums {_few(cols)}), but each row "
            f"should: row sums {_few(rows)}.",
            mistake="softmax over the wrong axis",
            case=case,
        )


def _few(values: torch.Tensor) -> str:
    flat = values.flatten()[:4].tolist()
    return "[" + ", ".join(f"{x:.3f}" for x in flat) + (", ...]" if values.numel() > 4 else "]")


@exercise(
    "attention",
    solution=solution_attention,
    reference=_reference_attention,
    mistakes={
        "softmax over the wrong axis": Mistake(
            _attention_softmax_wrong_axis,
            why="scores[..., i, j] is query i against key j. Each query spreads its attention "
            "over the keys, so the softmax runs along the last axis (dim=-1): every *row* sums "
            "to 1.",
        ),
        "no sqrt(d_k) scaling": Mistake(
            _attention_no_scaling,
            why="a dot product of two d_k-dimensional vectors has a standard deviation of about "
            "sqrt(d_k); without dividing by sqrt(d_k) the softmax saturates (one weight near 1) "
            "and its gradients vanish. Section 2 measures this.",
        ),
        "scaling by d_k instead of sqrt(d_k)": Mistake(
            _attention_scaled_by_d_k,
            why="divide by math.sqrt(d_k), not d_k: dividing by d_k shrinks the scores' spread "
            "to about 1/sqrt(d_k), so every row comes out nearly uniform.",
        ),
        "transposing the wrong axes": Mistake(
            _attention_wrong_transpose,
            why="the scores compare every query with every key: Q K^T, i.e. q @ k.transpose(-2, "
            "-1), giving (..., T, T). Transposing q instead (q^T k) compares feature dimensions "
            "with each other and gives (..., d_k, d_k).",
        ),
        "softmax without subtracting the maximum (overflow)": Mistake(
            _attention_naive_exp,
            why="exp of a score above about 88 is inf in float32, and inf / inf is NaN. Use "
            "scores.softmax(dim=-1) (or subtract each row's maximum before exp): the result is "
            "the same and never overflows.",
        ),
    },
)
def check_attention(fn: Callable[..., Any], report: Report) -> None:
    """Shapes first, then random queries/keys/values of a few sizes (3-D and 4-D, T = d_k and
    T != d_k), a single key, and scores large enough to overflow exp."""
    cases = [
        ((2, 3, 4, 4), 1.0, "batch of 2, 3 heads, T = d_k = 4"),
        ((2, 5, 16), 1.0, "3-D input, T = 5, d_k = 16"),
        ((1, 2, 6, 8), 1.0, "T = 6 queries and keys, d_k = 8"),
        ((3, 1, 8), 1.0, "a single key (every weight must be 1)"),
        ((1, 1, 4, 4), 30.0, "large scores (exp overflows unless handled)"),
    ]
    for shape, scale, case in cases:
        q = _random(report, *shape, scale=scale)
        k = _random(report, *shape, scale=scale)
        v = _random(report, *shape)
        got = report.call(q, k, v)
        *lead, t, d = shape
        _check_pair(report, got, shape, (*lead, t, t), case)
        _rows_and_columns(report, got[1], case)
        report.expect(q, k, v, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 2: the padding mask
# --------------------------------------------------------------------------------------------


def solution_masked_attention(q, k, v, attention_mask):
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (B, nh, T, T)
    # Additive bias over the *keys*: 0 for a token, the most negative finite float for padding,
    # so exp(...) is exactly 0 there, yet a row with no token at all stays finite (not NaN).
    bias = torch.zeros(attention_mask.shape, dtype=scores.dtype)  # (B, T)
    bias = bias.masked_fill(attention_mask == 0, torch.finfo(scores.dtype).min)  # (B, T)
    scores = scores + bias[:, None, None, :]  # (B, 1, 1, T) broadcast over heads and queries
    weights = scores.softmax(dim=-1)  # (B, nh, T, T) padding keys get weight 0
    return weights @ v, weights


def _reference_masked_attention(q, k, v, attention_mask):
    return scaled_dot_product_attention(
        q, k, v, attention_bias_from_padding(attention_mask, q.dtype)
    )


def _scores(q, k):
    return q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])


def _mask_ignored(q, k, v, attention_mask):
    weights = _scores(q, k).softmax(dim=-1)
    return weights @ v, weights


def _mask_added_after_softmax(q, k, v, attention_mask):
    bias = (1.0 - attention_mask.float()) * torch.finfo(q.dtype).min  # (B, T)
    weights = _scores(q, k).softmax(dim=-1) + bias[:, None, None, :]
    return weights @ v, weights


def _mask_zeroed_after_softmax(q, k, v, attention_mask):
    weights = _scores(q, k).softmax(dim=-1) * attention_mask[:, None, None, :].float()
    return weights @ v, weights


def _mask_multiplied(q, k, v, attention_mask):
    scores = _scores(q, k) * attention_mask[:, None, None, :].float()  # padding score -> 0
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


def _mask_swapped(q, k, v, attention_mask):
    bias = attention_mask.float() * torch.finfo(q.dtype).min  # masks the *real* tokens
    weights = (_scores(q, k) + bias[:, None, None, :]).softmax(dim=-1)
    return weights @ v, weights


def _mask_over_queries(q, k, v, attention_mask):
    bias = (1.0 - attention_mask.float()) * torch.finfo(q.dtype).min
    weights = (_scores(q, k) + bias[:, None, :, None]).softmax(dim=-1)  # (B, 1, T, 1): rows
    return weights @ v, weights


def _mask_minus_inf(q, k, v, attention_mask):
    scores = _scores(q, k).masked_fill(attention_mask[:, None, None, :] == 0, float("-inf"))
    weights = scores.softmax(dim=-1)  # a row of only -inf: exp gives 0/0 = NaN
    return weights @ v, weights


MASKED_ATTENTION_MISTAKES = {
    "mask ignored": Mistake(
        _mask_ignored,
        why="the padding keys still get weight, so a sentence's vectors change with the "
        "amount of padding in its batch. Add the bias (0 for tokens, very negative for "
        "padding) to the scores before the softmax.",
    ),
    "mask added after the softmax": Mistake(
        _mask_added_after_softmax,
        why="the bias must go into the scores *before* the softmax: exp(score - huge) is 0 and "
        "the remaining weights are renormalised. Added to the weights it gives huge negative "
        "weights.",
    ),
    "padding zeroed after the softmax (rows no longer sum to 1)": Mistake(
        _mask_zeroed_after_softmax,
        why="multiplying the weights by the mask after the softmax removes the padding's share "
        "without renormalising: each row sums to less than 1. Mask the scores before the "
        "softmax instead.",
    ),
    "mask multiplied instead of added": Mistake(
        _mask_multiplied,
        why="scores * mask sets a padding key's score to 0, not to minus infinity, and "
        "exp(0) = 1 still gives it weight. The mask enters as an additive bias: scores + "
        "(0 or a very negative number).",
    ),
    "mask with the wrong sign / 0 and 1 swapped": Mistake(
        _mask_swapped,
        why="attention_mask is 1 for a real token and 0 for padding; the very negative bias goes "
        "where the mask is 0. Yours sends the attention to the padding instead of away from it.",
    ),
    "mask over the queries instead of the keys": Mistake(
        _mask_over_queries,
        why="a padding token must not be *looked at*: the bias runs along the keys (the last "
        "axis), shape (B, 1, 1, T). Shaped (B, 1, T, 1) it masks whole rows (queries) instead.",
    ),
    "-inf instead of a finite minimum (NaN on an all-padding row)": Mistake(
        _mask_minus_inf,
        why="with -inf, a row whose keys are all padding becomes softmax(-inf, ..., -inf) = "
        "0/0 = NaN, and the NaN spreads through the next layers. Use torch.finfo(dtype).min "
        "(or -1e9): its weights are still exactly 0 next to a real key, and such a row stays "
        "finite.",
    ),
}


def _padding_properties(report: Report, got: Any, mask: torch.Tensor, case: str) -> None:
    """Name mask mistakes from what the weights look like, whatever constant was used."""
    weights = got[1].detach().double()  # (B, nh, T, T)
    keys_real = mask.bool()[:, None, None, :]  # (B, 1, 1, T)
    has_both = (mask.sum(-1) > 0) & (mask.sum(-1) < mask.shape[-1])  # (B,)
    if not has_both.any():
        return
    w = weights[has_both]
    real = keys_real[has_both].expand_as(w)
    if not torch.isfinite(w).all():
        return  # compare() explains NaN / inf
    if (w < -1e-3).any():
        report.fail(
            f"some weights are negative (smallest {w.min().item():.3g}); weights come out of a "
            "softmax and lie in [0, 1].",
            mistake="mask added after the softmax",
            case=case,
        )
    on_padding = (w * ~real).sum(-1)  # (b, nh, T) each query's weight on padding keys
    if on_padding.mean() > 0.9:
        report.fail(
            f"on average {on_padding.mean().item():.0%} of each query's attention goes to "
            "padding keys (attention_mask == 0); it should be 0%.",
            mistake="mask with the wrong sign / 0 and 1 swapped",
            case=case,
        )
    rows = w.sum(-1)
    if (on_padding.abs() < 1e-6).all() and not torch.allclose(
        rows, torch.ones_like(rows), atol=1e-4
    ):
        report.fail(
            f"no weight on padding keys, good, but the rows no longer sum to 1 (row sums "
            f"{_few(rows)}).",
            mistake="padding zeroed after the softmax (rows no longer sum to 1)",
            case=case,
        )


@exercise(
    "masked_attention",
    solution=solution_masked_attention,
    reference=_reference_masked_attention,
    mistakes=MASKED_ATTENTION_MISTAKES,
)
def check_masked_attention(fn: Callable[..., Any], report: Report) -> None:
    """Shapes first; then batches with padding of different lengths, no padding at all, and a
    sequence that is all padding (an edge case that must stay finite)."""
    cases = [
        ([[1, 1, 1, 0], [1, 1, 0, 0]], 2, 4, "two sequences padded to 4 tokens"),
        ([[1, 1, 1, 1, 1, 0]], 3, 8, "one padding token at the end, 3 heads"),
        ([[1, 1, 1], [1, 1, 1]], 2, 4, "no padding at all"),
        ([[1, 0, 0, 0, 0]], 1, 4, "only the first token is real"),
        ([[1, 1, 0], [0, 0, 0]], 2, 4, "a sequence that is all padding (must not give NaN)"),
    ]
    for rows, heads, d_k, case in cases:
        mask = torch.tensor(rows)  # (B, T) long, 1 = token, 0 = padding
        batch, seq = mask.shape
        q = _random(report, batch, heads, seq, d_k)
        k = _random(report, batch, heads, seq, d_k)
        v = _random(report, batch, heads, seq, d_k)
        got = report.call(q, k, v, mask)
        _check_pair(report, got, (batch, heads, seq, d_k), (batch, heads, seq, seq), case)
        _padding_properties(report, got, mask, case)
        report.expect(q, k, v, mask, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 3: splitting the hidden vector into heads
# --------------------------------------------------------------------------------------------


def solution_split_heads(x, num_heads):
    batch, seq_len, hidden = x.shape
    head_size = hidden // num_heads
    x = x.view(batch, seq_len, num_heads, head_size)  # (B, T, nh, hs): consecutive slices
    return x.transpose(1, 2)  # (B, nh, T, hs): each head is a sequence of its own


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """The inverse of splitting: (B, nh, T, hs) -> (B, T, nh * hs), heads side by side
    (the Concat of Vaswani et al. 2017, Section 3.2.2)."""
    batch, heads, seq_len, head_size = x.shape
    return x.transpose(1, 2).reshape(batch, seq_len, heads * head_size)  # (B, T, H)


def _split_without_transpose(x, num_heads):
    batch, seq_len, hidden = x.shape
    return x.reshape(batch, num_heads, seq_len, hidden // num_heads)  # right shape, mixed rows


def _split_interleaved(x, num_heads):
    batch, seq_len, hidden = x.shape
    x = x.view(batch, seq_len, hidden // num_heads, num_heads)  # head = every nh-th column
    return x.permute(0, 3, 1, 2)


def _split_no_transpose_shape(x, num_heads):
    batch, seq_len, hidden = x.shape
    return x.view(batch, seq_len, num_heads, hidden // num_heads)  # (B, T, nh, hs)


@exercise(
    "split_heads",
    solution=solution_split_heads,
    mistakes={
        "reshape without the transpose": Mistake(
            _split_without_transpose,
            why="x.reshape(B, nh, T, hs) has the right shape but reads the numbers in memory "
            "order, so a 'head' gets pieces of several tokens. View as (B, T, nh, hs) first "
            "(each token's vector cut into nh slices), then transpose(1, 2).",
        ),
        "heads taken from interleaved columns": Mistake(
            _split_interleaved,
            why="head h owns the consecutive columns h*hs ... (h+1)*hs - 1 of the hidden "
            "vector (that is how the trained query/key/value weights are laid out); "
            "view(B, T, hs, nh) gives head h every nh-th column instead.",
        ),
        "transpose forgotten: (B, T, nh, hs)": Mistake(
            _split_no_transpose_shape,
            why="after view(B, T, nh, hs) the heads axis must come before the tokens: "
            ".transpose(1, 2) gives (B, nh, T, hs), so that q @ k.transpose(-2, -1) compares "
            "tokens within each head.",
        ),
    },
    atol=0.0,
    rtol=0.0,
)
def check_split_heads(fn: Callable[..., Any], report: Report) -> None:
    """Shapes first, then numbered inputs (each number says which token and column it came
    from) for several head counts, and one head (nothing to split)."""
    for batch, seq, hidden, heads in [(2, 3, 8, 2), (1, 5, 12, 3), (2, 4, 6, 6), (1, 2, 4, 1)]:
        x = torch.arange(batch * seq * hidden, dtype=torch.float32).view(batch, seq, hidden)
        case = f"(B, T, H) = {(batch, seq, hidden)}, {heads} heads"
        got = report.expect(x, heads, case=case)
        report.equal("merge_heads(your split)", merge_heads(got), x, case=case)


# --------------------------------------------------------------------------------------------
# Section 2: why divide by sqrt(d_k), measured
# --------------------------------------------------------------------------------------------


def softmax_jacobian_norm(weights: torch.Tensor) -> torch.Tensor:
    """Frobenius norm of d softmax / d scores for each row of ``weights`` (..., T).

    J = diag(p) - p p^T, so ||J||_F^2 = sum p_i^2 - 2 sum p_i^3 + (sum p_i^2)^2: near 0 when
    the softmax is saturated (one weight ~1), which is why saturated attention stops learning.
    """
    p2 = weights.pow(2).sum(-1)
    p3 = weights.pow(3).sum(-1)
    return (p2 - 2 * p3 + p2.pow(2)).clamp(min=0).sqrt()


def saturation_measurements(
    d_ks: Sequence[int], *, seq_len: int = 16, samples: int = 512, seed: int = 0
) -> list[dict[str, float]]:
    """For each head size d_k: random unit-variance queries and keys (what LayerNorm'd inputs and
    initialised projections give), the spread of their scores, and how saturated the softmax is
    with and without the 1/sqrt(d_k) scaling.

    Each row: ``d_k``, ``score_std`` (of q . k), ``max_weight`` / ``max_weight_scaled`` (mean
    largest weight in a row; 1/T is uniform, 1 is saturated), ``grad`` / ``grad_scaled`` (mean
    softmax Jacobian norm, :func:`softmax_jacobian_norm`).
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for d_k in d_ks:
        q = torch.randn(samples, seq_len, d_k, generator=generator)  # (S, T, d_k)
        k = torch.randn(samples, seq_len, d_k, generator=generator)
        scores = q @ k.transpose(-2, -1)  # (S, T, T)
        raw = scores.softmax(-1)
        scaled = (scores / math.sqrt(d_k)).softmax(-1)
        rows.append(
            {
                "d_k": d_k,
                "score_std": scores.std().item(),
                "score_std_scaled": (scores / math.sqrt(d_k)).std().item(),
                "max_weight": raw.amax(-1).mean().item(),
                "max_weight_scaled": scaled.amax(-1).mean().item(),
                "grad": softmax_jacobian_norm(raw).mean().item(),
                "grad_scaled": softmax_jacobian_norm(scaled).mean().item(),
            }
        )
    return rows


def saturation_figure(rows: Sequence[dict[str, float]], seq_len: int = 16):
    """Two panels against d_k (log): the largest weight of a row and the softmax's gradient,
    without and with the 1/sqrt(d_k) scaling."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    d_ks = [r["d_k"] for r in rows]
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            "largest weight in a row (1 = saturated)",
            "softmax gradient ||d weights / d scores||",
        ),
    )
    for col, (raw, scaled) in enumerate(
        [("max_weight", "max_weight_scaled"), ("grad", "grad_scaled")], start=1
    ):
        for key, name, colour in [
            (raw, "softmax(QK^T)", "#d62728"),
            (scaled, "softmax(QK^T / sqrt(d_k))", "#1f77b4"),
        ]:
            fig.add_trace(
                go.Scatter(
                    x=d_ks,
                    y=[r[key] for r in rows],
                    mode="lines+markers",
                    name=name,
                    line={"color": colour},
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.add_hline(
        y=1 / seq_len,
        line_dash="dot",
        annotation_text=f"uniform (1/T, T = {seq_len})",
        row=1,
        col=1,
    )
    fig.update_xaxes(type="log", title_text="head size d_k")
    fig.update_yaxes(range=[0, 1.05], row=1, col=1)
    fig.update_layout(
        height=420, margin={"t": 60, "b": 40}, legend={"orientation": "h", "y": -0.25}
    )
    return fig


def softmax_slider_figure(d_ks: Sequence[int], *, seq_len: int = 12, seed: int = 0):
    """One query's weights over ``seq_len`` keys, unscaled and scaled, with a slider over d_k
    (plotly's own slider: it works in an exported HTML page too)."""
    import plotly.graph_objects as go

    generator = torch.Generator().manual_seed(seed)
    keys = [f"key {j}" for j in range(seq_len)]
    frames = []
    for d_k in d_ks:
        q = torch.randn(d_k, generator=generator)
        k = torch.randn(seq_len, d_k, generator=generator)
        scores = k @ q  # (T,)
        frames.append(
            (
                d_k,
                scores.softmax(-1).tolist(),
                (scores / math.sqrt(d_k)).softmax(-1).tolist(),
            )
        )
    fig = go.Figure()
    for i, (_d_k, raw, scaled) in enumerate(frames):
        visible = i == 0
        fig.add_trace(
            go.Bar(x=keys, y=raw, name="softmax(q·k)", marker_color="#d62728", visible=visible)
        )
        fig.add_trace(
            go.Bar(
                x=keys,
                y=scaled,
                name="softmax(q·k / sqrt(d_k))",
                marker_color="#1f77b4",
                visible=visible,
            )
        )
    steps = []
    for i, (d_k, _, _) in enumerate(frames):
        visible = [j // 2 == i for j in range(2 * len(frames))]
        steps.append({"method": "update", "args": [{"visible": visible}], "label": str(d_k)})
    fig.update_layout(
        barmode="group",
        title="One query's attention over 12 keys: drag d_k",
        yaxis={"range": [0, 1], "title": "weight"},
        sliders=[
            {"active": 0, "currentvalue": {"prefix": "d_k = "}, "steps": steps, "pad": {"t": 40}}
        ],
        height=440,
        margin={"t": 60, "b": 40},
    )
    return fig


# --------------------------------------------------------------------------------------------
# Section 4-5: MiniLM's attention, by hand
# --------------------------------------------------------------------------------------------


def encode(loaded: Any, texts: str | Sequence[str]) -> dict[str, torch.Tensor]:
    """Token ids, attention mask and segment ids for one text or a padded batch of texts."""
    batch = [texts] if isinstance(texts, str) else list(texts)
    encoded = loaded.tokenizer(batch, padding=True, return_tensors="pt")
    return {name: encoded[name] for name in ("input_ids", "attention_mask", "token_type_ids")}


@torch.no_grad()
def layer_inputs(loaded: Any, inputs: dict[str, torch.Tensor], layer: int) -> dict[str, Any]:
    """What layer ``layer`` of the model receives and computes on ``inputs``: ``hidden`` (B, T, H)
    its input, ``weights`` (B, nh, T, T) its attention as the model computes it, ``output``
    (B, T, H) its attention sub-layer's output (after the output projection), ``module`` the
    attention module (its ``query``/``key``/``value``/``output`` projections)."""
    from minibert.functional import attention_bias_from_padding

    model = getattr(loaded.model, "bert", loaded.model)
    out = model(**inputs, output_hidden_states=True, output_attentions=True)
    module = model.layers[layer].attention
    hidden = out.hidden_states[layer]
    mask = inputs["attention_mask"]
    bias = None if bool(mask.all()) else attention_bias_from_padding(mask, hidden.dtype)
    output, _ = module(hidden, bias)
    return {
        "hidden": hidden,
        "weights": out.attentions[layer],
        "output": output,
        "module": module,
    }


@torch.no_grad()
def attention_by_hand(
    module: Any,
    hidden: torch.Tensor,
    attention_fn: Callable[..., Any],
    split_fn: Callable[..., Any],
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multi-head self-attention with the student's pieces and the module's trained weights:

        MultiHead(X) = Concat(head_1, ..., head_nh) W^O,  head_i = Attention(X W_i^Q, X W_i^K, X W_i^V)

    ``attention_fn(q, k, v)`` (or ``(q, k, v, attention_mask)`` when a mask is given) and
    ``split_fn(x, nh)``. Returns (output (B, T, H), weights (B, nh, T, T)).
    """
    heads = module.num_heads
    q = split_fn(module.query(hidden), heads)  # (B, nh, T, hs)
    k = split_fn(module.key(hidden), heads)  # (B, nh, T, hs)
    v = split_fn(module.value(hidden), heads)  # (B, nh, T, hs)
    if attention_mask is None:
        context, weights = attention_fn(q, k, v)  # (B, nh, T, hs), (B, nh, T, T)
    else:
        context, weights = attention_fn(q, k, v, attention_mask)
    return module.output(merge_heads(context)), weights  # (B, T, H)


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference between two tensors of the same shape."""
    return (a.detach().double() - b.detach().double()).abs().max().item()
