"""Attention figures: one head, every head (model view), token-to-token lines (head view), and
the same across training checkpoints.

All take an ``AttentionResult`` from :func:`minibert.inspect.attention` (``attentions`` of shape
(L, nh, T, T), rows = queries, columns = keys: row i says how token i spreads its attention over
all tokens, and sums to 1; Vaswani et al. 2017, Eq. 1). The three views follow Vig (2019),
"A Multiscale Visualization of Attention in the Transformer Model" (bertviz), drawn with plotly
so that they work offline in notebooks, in the dashboard and in exported HTML.

Axes of token figures are numeric positions with token tick labels, never categorical: a text
may hold the same word piece twice, and a categorical axis would merge them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from minibert.viz._common import (
    FigureInputError,
    attention_array,
    attention_notes,
    check_index,
    compose,
    source_label,
    token_ticks,
    top_margin,
    visible_positions,
)
from minibert.viz._image import (
    grid_of_maps,
    indexed_png,
    max_pool,
    palette,
    png_data_uri,
    quantize,
)
from minibert.viz.theme import ATTENTION_SCALE, HEAD_COLOURS, current_theme

# --------------------------------------------------------------------------------------------
# One head
# --------------------------------------------------------------------------------------------


def _heatmap_side_px(count: int) -> int:
    """Plot-area side for a T x T heatmap: big enough for labels, small enough for a screen."""
    theme = current_theme()
    return int(min(900, max(360, count * theme.tick_size * 1.3)))


def _head_heatmap_trace(matrix: np.ndarray, labels: list[str], zmax: float) -> dict:
    """One (t, t) attention map as a heatmap with hover text "query -> key: weight"."""
    hover = [[f"{q} → {k}" for k in labels] for q in labels]
    return dict(
        type="heatmap",
        z=np.round(matrix.astype(np.float64), 4),
        x=np.arange(len(labels)),
        y=np.arange(len(labels)),
        text=hover,
        hovertemplate="%{text}<br>weight %{z:.3f}<extra></extra>",
        colorscale=ATTENTION_SCALE,
        zmin=0.0,
        zmax=zmax,
        colorbar=dict(title=dict(text="attention<br>weight", side="top")),
    )


def _token_axes(labels: list[str], side_px: int) -> dict:
    """Layout axes for a query x key map: token tick labels, query 0 at the top, square cells."""
    theme = current_theme()
    ticks, texts = token_ticks(labels, side_px, theme.tick_size)
    xaxis = dict(
        title=dict(text="key: the token attended to"),
        tickvals=ticks,
        ticktext=texts,
        tickangle=-60,
        range=[-0.5, len(labels) - 0.5],
        showgrid=False,
        constrain="domain",
    )
    yaxis = dict(
        title=dict(text="query: the token attending"),
        tickvals=ticks,
        ticktext=texts,
        range=[len(labels) - 0.5, -0.5],  # query 0 at the top, as a matrix is read
        showgrid=False,
        scaleanchor="x",
        constrain="domain",
    )
    return dict(xaxis=xaxis, yaxis=yaxis)


def attention_heatmap(
    result: Any,
    layer: int,
    head: int,
    *,
    hide_special: bool = False,
    zmax: float | None = None,
) -> go.Figure:
    """One head's attention as a query x key heatmap with token labels.

    ``hide_special`` drops the rows and columns of [CLS]/[SEP]/[PAD], which often take most of
    the weight (Clark et al. 2019, "What Does BERT Look At?", Section 3) and so wash out the
    colour scale; the remaining weights are not renormalised. ``zmax`` fixes the top of the
    colour scale (default: the largest weight shown).
    """
    attentions = attention_array(result)
    num_layers, num_heads = attentions.shape[:2]
    layer = check_index("layer", layer, num_layers)
    head = check_index("head", head, num_heads)
    positions = visible_positions(result, hide_special)
    matrix = attentions[layer, head][np.ix_(positions, positions)]  # (t, t)
    labels = [result.tokens[i] for i in positions]
    top = float(zmax) if zmax is not None else float(np.nanmax(matrix, initial=0.0)) or 1.0
    side = _heatmap_side_px(len(labels))
    theme = current_theme()
    label = source_label(result)
    title = f"Attention, layer {layer} head {head}" + (f": {label}" if label else "")
    return compose(
        [_head_heatmap_trace(matrix, labels, top)],
        _token_axes(labels, side),
        title,
        attention_notes(result, hide_special),
        width=side + 260,
        height=side + 150 + theme.tick_size * 6,
        kind="attention_heatmap",
    )


# --------------------------------------------------------------------------------------------
# Every head: the model view
# --------------------------------------------------------------------------------------------


@dataclass
class _Grid:
    """Where each head's map sits in the model-view image, in image pixels."""

    layers: int
    heads: int
    cell: int  # side of one map
    gap: int  # background between maps

    @property
    def pitch(self) -> int:
        return self.cell + self.gap

    @property
    def width(self) -> int:
        return self.heads * self.pitch - self.gap

    @property
    def height(self) -> int:
        return self.layers * self.pitch - self.gap

    def centres(self, count: int) -> list[float]:
        return [i * self.pitch + (self.cell - 1) / 2 for i in range(count)]


def _head_summaries(
    attentions: np.ndarray, tokens: list[str], special: list[bool]
) -> list[list[str]]:
    """A hover text per head saying, in numbers, what that head mostly does.

    Mean weight on the previous token, on itself, on [CLS]/[SEP], the key with the largest mean
    weight, and the mean row entropy (nats): the features Clark et al. (2019) sort heads by.
    """
    tokens_n = attentions.shape[-1]
    weights = np.asarray(attentions, dtype=np.float32)  # float32 is plenty for 2 decimals
    previous = (
        np.diagonal(weights, offset=-1, axis1=2, axis2=3).mean(-1)
        if tokens_n > 1
        else np.zeros(weights.shape[:2])
    )  # (L, nh)
    itself = np.diagonal(weights, axis1=2, axis2=3).mean(-1)  # (L, nh)
    special_idx = [i for i, s in enumerate(special) if s]
    on_special = weights[..., special_idx].sum(-1).mean(-1)  # (L, nh)
    log_weights = np.log(np.clip(weights, 1e-12, None))
    entropy = np.maximum(-(weights * log_weights).sum(-1).mean(-1), 0.0)  # (L, nh) nats
    top_key = weights.mean(axis=2).argmax(-1)  # (L, nh) key with the largest mean weight
    texts = []
    for layer in range(weights.shape[0]):
        row = []
        for head in range(weights.shape[1]):
            key = int(top_key[layer, head])
            row.append(
                f"<b>layer {layer}, head {head}</b><br>"
                f"most attended key: {tokens[key]} (#{key})<br>"
                f"previous token {previous[layer, head]:.2f} · self {itself[layer, head]:.2f}"
                f" · [CLS]/[SEP] {on_special[layer, head]:.2f}<br>"
                f"entropy {entropy[layer, head]:.2f} nats"
            )
        texts.append(row)
    return texts


# The largest side, in image pixels, of one head's map. A model view is looked at as a whole
# (12 maps across a screen leaves each about 80 px), so longer texts are max-pooled down to it:
# 72 heads of 128 tokens at full size make a 180 KB PNG, pooled 2 x 2 a 50 KB one (measured
# on a 128-token MiniLM text), which keeps the page, plotly.js included, under 5 MB.
MAX_CELL_PX = 100


def _grid_image(maps: np.ndarray, zmax: float) -> tuple[str, _Grid, int]:
    """The (L, nh, t, t) maps as one PNG data URI, where each map sits, and the pooling."""
    theme = current_theme()
    layers, heads, t, _ = maps.shape
    pool = max(1, math.ceil(t / MAX_CELL_PX))
    maps = max_pool(maps, pool)  # (L, nh, t / pool, t / pool)
    t = maps.shape[-1]
    scale = max(1, math.ceil(theme.cell_px / max(t, 1)))
    cell = t * scale
    grid = _Grid(layers, heads, cell, max(3, cell // 10))
    image = grid_of_maps(quantize(maps, zmax), scale, grid.gap)
    return png_data_uri(indexed_png(image, palette(ATTENTION_SCALE))), grid, pool


def _model_view_traces(uri: str, grid: _Grid, hover: list[list[str]], zmax: float) -> list:
    """The image, an invisible one-cell-per-head layer for hover/click, and a colour bar."""
    heads = np.arange(grid.heads)
    layers = np.arange(grid.layers)
    image = dict(
        type="image", source=uri, x0=0, y0=0, dx=1, dy=1, hoverinfo="skip", name="attention"
    )
    picker = dict(
        type="heatmap",
        z=np.zeros((grid.layers, grid.heads)),
        x=np.asarray(grid.centres(grid.heads)),
        y=np.asarray(grid.centres(grid.layers)),
        text=hover,
        customdata=np.stack(np.meshgrid(layers, heads, indexing="ij"), axis=-1),  # (L, nh, 2)
        hovertemplate="%{text}<extra></extra>",
        opacity=0.0,
        showscale=False,
        name="heads",
    )
    colour_bar = dict(
        type="scatter",
        x=[None],
        y=[None],
        mode="markers",
        marker=dict(
            colorscale=ATTENTION_SCALE,
            cmin=0.0,
            cmax=zmax,
            color=[0.0],
            showscale=True,
            colorbar=dict(title=dict(text="attention<br>weight", side="top")),
        ),
        hoverinfo="skip",
        showlegend=False,
    )
    return [image, picker, colour_bar]


def _model_view_layout(grid: _Grid) -> tuple[dict, int, int]:
    """Axes in image pixels, ticks naming heads and layers; and the figure's size."""
    theme = current_theme()
    xaxis = dict(
        title=dict(text="head"),
        tickvals=grid.centres(grid.heads),
        ticktext=[str(h) for h in range(grid.heads)],
        range=[-0.5, grid.width - 0.5],
        showgrid=False,
        zeroline=False,
        side="top",
        ticks="",
    )
    yaxis = dict(
        title=dict(text="layer"),
        tickvals=grid.centres(grid.layers),
        ticktext=[str(layer) for layer in range(grid.layers)],
        range=[grid.height - 0.5, -0.5],
        showgrid=False,
        zeroline=False,
        scaleanchor="x",
        ticks="",
    )
    # Draw the image at most 1 image pixel per screen pixel, at least cell_px per map.
    plot_width = min(grid.width, max(900, grid.heads * theme.cell_px))
    plot_height = plot_width * grid.height / grid.width
    # Head numbers and their axis title sit above the maps, under the title and subtitle.
    top = top_margin() + theme.tick_size * 2 + theme.font_size * 2
    size = int(plot_width + 220), int(plot_height + 60 + top)
    return dict(xaxis=xaxis, yaxis=yaxis, margin=dict(t=top)), *size


def _model_view_info(pool: int) -> str:
    info = "rows: queries, columns: keys; hover a map for what the head does"
    if pool > 1:
        info += f" · {pool} x {pool} token blocks, largest weight shown"
    return info


def model_view(result: Any, *, hide_special: bool = False, zmax: float | None = None) -> go.Figure:
    """Every layer x head as a grid of small attention maps (rows = layers, columns = heads).

    Drawn as one image (see :mod:`minibert.viz._image`) so that 72 heads of 128 tokens build and
    draw fast; hovering a map says what that head mostly does (previous token, self, [CLS]/[SEP],
    entropy), and ``customdata`` holds (layer, head) for click handlers. Within each map, rows
    are queries and columns keys, as in :func:`attention_heatmap`, which shows one head with
    token labels. One colour scale for all heads, from 0 to ``zmax`` (default: the largest
    weight shown).
    """
    attentions = attention_array(result)
    positions = visible_positions(result, hide_special)
    maps = attentions[:, :, positions][:, :, :, positions]  # (L, nh, t, t)
    top = float(zmax) if zmax is not None else float(np.nanmax(maps, initial=0.0)) or 1.0
    uri, grid, pool = _grid_image(maps, top)
    hover = _head_summaries(attentions, list(result.tokens), list(result.special_mask))
    layout, width, height = _model_view_layout(grid)
    label = source_label(result)
    title = f"Model view: {grid.layers} layers x {grid.heads} heads" + (
        f", {label}" if label else ""
    )
    notes = attention_notes(result, hide_special)
    traces = _model_view_traces(uri, grid, hover, top)
    return compose(
        traces,
        layout,
        title,
        notes,
        width=width,
        height=height,
        kind="model_view",
        info=_model_view_info(pool),
    )


# --------------------------------------------------------------------------------------------
# Token-to-token lines: the head view
# --------------------------------------------------------------------------------------------

# Lines are grouped by weight into a few bins, one trace per (head, bin): plotly gives a trace
# one colour, and opacity carries the weight (as in bertviz). Five bins are hard to tell apart
# from a continuous opacity and keep the trace count at 5 per head.
_WEIGHT_EDGES = (0.1, 0.2, 0.4, 0.7)
_BIN_OPACITY = (0.18, 0.3, 0.5, 0.72, 0.95)


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha:.2f})"


def _segments(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of line segments from query row -q to key row -k, NaN-separated.

    float32: row numbers are small integers, exact in float32, and the page carries half the
    bytes of float64.
    """
    count = len(pairs)
    xs = np.tile(np.array([0.0, 1.0, np.nan], dtype=np.float32), count)
    ys = np.empty(count * 3, dtype=np.float32)
    ys[0::3] = -pairs[:, 0]
    ys[1::3] = -pairs[:, 1]
    ys[2::3] = np.nan
    return xs, ys


def head_view(
    result: Any,
    layer: int,
    *,
    heads: list[int] | None = None,
    hide_special: bool = False,
    min_weight: float = 0.05,
) -> go.Figure:
    """Token-to-token lines for one layer, one colour per head (Vig 2019's head view).

    Queries on the left, keys on the right; a line's opacity grows with its weight and lines
    below ``min_weight`` are left out. Hover a token on the left to read its strongest keys;
    the "focus" slider shows one query token's lines only; in a page written by
    :func:`minibert.viz.to_html`, hovering a left token does the same. Click a head in the
    legend to hide or show it.
    """
    attentions = attention_array(result)
    num_layers, num_heads = attentions.shape[:2]
    layer = check_index("layer", layer, num_layers)
    chosen = (
        list(range(num_heads))
        if heads is None
        else [check_index("head", h, num_heads) for h in heads]
    )
    if not chosen:
        raise FigureInputError("heads is empty; pass None for every head or a list of indices")
    if not 0.0 <= min_weight < 1.0:
        raise FigureInputError(f"min_weight must be in [0, 1), got {min_weight}")
    positions = visible_positions(result, hide_special)
    labels = [result.tokens[i] for i in positions]
    count = len(positions)
    weights = attentions[layer][np.ix_(chosen, positions, positions)]  # (h, t, t)
    theme = current_theme()
    edges = (min_weight, *[e for e in _WEIGHT_EDGES if e > min_weight], math.inf)
    opacities = _BIN_OPACITY[len(_BIN_OPACITY) - (len(edges) - 1) :]

    # Every (head, bin) gets a trace even when empty, so that slider steps address fixed indices.
    traces: list[dict] = []
    per_trace_pairs = []
    for slot, head in enumerate(chosen):
        colour = HEAD_COLOURS[head % len(HEAD_COLOURS)]
        for b in range(len(edges) - 1):
            inside = (weights[slot] >= edges[b]) & (weights[slot] < edges[b + 1])
            pairs = np.argwhere(inside)  # (n, 2) query, key
            per_trace_pairs.append(pairs)
            xs, ys = _segments(pairs)
            traces.append(
                dict(
                    type="scatter",
                    x=xs,
                    y=ys,
                    mode="lines",
                    line=dict(color=_rgba(colour, opacities[b]), width=theme.line_width),
                    name=f"head {head}",
                    legendgroup=f"head {head}",
                    showlegend=b == len(edges) - 2,
                    hoverinfo="skip",
                )
            )
    line_traces = list(range(len(traces)))

    mean = weights.mean(axis=0)  # (t, t) over the shown heads, for hover texts

    def strongest(vector: np.ndarray) -> str:
        order = np.argsort(-vector)[:5]
        return "<br>".join(f"{labels[j]} {vector[j]:.2f}" for j in order)

    left_hover = [
        f"<b>{labels[i]}</b> attends to (mean of shown heads):<br>{strongest(mean[i])}"
        for i in range(count)
    ]
    right_hover = [
        f"<b>{labels[j]}</b> is attended by:<br>{strongest(mean[:, j])}" for j in range(count)
    ]
    rows = -np.arange(count, dtype=float)
    for x, side, hover, meta in (
        (0.0, "middle left", left_hover, "query-tokens"),
        (1.0, "middle right", right_hover, "key-tokens"),
    ):
        traces.append(
            dict(
                type="scatter",
                x=np.full(count, x),
                y=rows,
                mode="text",
                text=labels,
                textposition=side,
                textfont=dict(size=theme.tick_size + 1),
                hovertext=hover,
                hovertemplate="%{hovertext}<extra></extra>",
                showlegend=False,
                meta=meta,
            )
        )
    focus_trace = len(traces)
    traces.append(
        dict(
            type="scatter",
            x=[0.0],
            y=[None],
            mode="markers",
            showlegend=False,
            hoverinfo="skip",
            marker=dict(symbol="circle", size=theme.marker_size, color="#222"),
        )
    )

    # Slider: "all" then one step per query token, each replacing the line traces' data.
    # np.argwhere lists pairs in row-major order, so each trace's segments are sorted by query
    # and one query's lines are a slice of the arrays already built.
    # Only y changes: plotly draws min(len(x), len(y)) points of a trace, and every segment's
    # x is the same (0, 1, gap), so a shorter y draws just the focused query's segments.
    targets = [*line_traces, focus_trace]
    segments = [_segments(pairs) for pairs in per_trace_pairs]
    bounds = [np.searchsorted(pairs[:, 0], np.arange(count + 1)) * 3 for pairs in per_trace_pairs]
    steps = [
        dict(
            label="all",
            method="restyle",
            args=[{"y": [*(y for _, y in segments), [None]]}, targets],
        )
    ]
    for query in range(count):
        ys = [y[b[query] : b[query + 1]] for (_, y), b in zip(segments, bounds, strict=True)]
        steps.append(
            dict(
                label=labels[query],
                method="restyle",
                args=[{"y": [*ys, [-float(query)]]}, targets],
            )
        )
    # Tall enough for the tokens, and for the legend's one line per head.
    plot_height = max(300, count * theme.tick_size * 1.7, len(chosen) * theme.font_size * 1.6 + 80)
    layout = dict(
        sliders=[
            dict(
                active=0,
                steps=steps,
                currentvalue=dict(prefix="focus on query token: "),
                pad=dict(t=10),
                y=0,
                yanchor="top",
            )
        ],
        legend=dict(title=dict(text="head<br>(click to hide)")),
        hovermode="closest",
        xaxis=dict(visible=False, range=[-0.9, 1.9], fixedrange=True),
        yaxis=dict(visible=False, range=[-count + 0.4, 0.8], fixedrange=True),
        annotations=[
            dict(
                x=x,
                y=0.8,
                text=text,
                showarrow=False,
                xanchor=anchor,
                yanchor="bottom",
                xref="x",
                yref="y",
            )
            for x, text, anchor in (
                (0, "<b>query</b> (attending)", "right"),
                (1, "<b>key</b> (attended to)", "left"),
            )
        ],
    )
    label = source_label(result)
    title = f"Head view, layer {layer}" + (f": {label}" if label else "")
    notes = attention_notes(result, hide_special)
    return compose(
        traces,
        layout,
        title,
        notes,
        width=780,
        height=int(plot_height + 260),
        kind="head_view",
        info=f"lines for weights of {min_weight:g} or more; hover a query token for its top keys",
    )


# --------------------------------------------------------------------------------------------
# Across checkpoints
# --------------------------------------------------------------------------------------------


def _check_over_training(over: Any) -> tuple[list, list]:
    checkpoints, results = list(over.checkpoints), list(over.results)
    if not results:
        raise FigureInputError("no checkpoints to show: the run has no complete checkpoint yet")
    if len(checkpoints) != len(results):
        raise FigureInputError(
            f"{len(checkpoints)} checkpoints but {len(results)} attention results; they must pair up"
        )
    tokens = list(results[0].tokens)
    for checkpoint, result in zip(checkpoints, results, strict=True):
        if list(result.tokens) != tokens:
            raise FigureInputError(
                f"checkpoint at step {checkpoint.step} tokenised the text differently; "
                "attention across checkpoints needs the same tokens in each"
            )
    return checkpoints, results


def attention_over_training(
    over: Any,
    layer: int | None = None,
    head: int | None = None,
    *,
    hide_special: bool = False,
) -> go.Figure:
    """The same text's attention at each checkpoint of a run, with a slider over steps.

    With ``layer`` and ``head``: that head as a heatmap with token labels. Without: the model
    view (every head) per step. One colour scale for every step (0 to the largest weight over
    all steps), so a colour means the same weight whichever step is shown.
    """
    checkpoints, results = _check_over_training(over)
    first = results[0]
    stacked = np.stack([attention_array(r) for r in results])  # (S, L, nh, T, T)
    positions = visible_positions(first, hide_special)
    stacked = stacked[..., positions, :][..., positions]  # (S, L, nh, t, t)
    one_head = layer is not None or head is not None
    if one_head:
        if layer is None or head is None:
            raise FigureInputError(
                "give both layer and head for one head, or neither for every head"
            )
        layer = check_index("layer", layer, stacked.shape[1])
        head = check_index("head", head, stacked.shape[2])
        stacked = stacked[:, layer : layer + 1, head : head + 1]
    top = float(np.nanmax(stacked, initial=0.0)) or 1.0
    step_names = [f"{c.step:,}" for c in checkpoints]
    labels = [first.tokens[i] for i in positions]

    pool, slider_pad = 1, 0
    if one_head:
        traces = [_head_heatmap_trace(stacked[-1, 0, 0], labels, top)]
        side = _heatmap_side_px(len(labels))
        layout = _token_axes(labels, side)
        updates = [{"z": [np.round(s[0, 0].astype(np.float64), 4)]} for s in stacked]
        targets = [0]
        theme = current_theme()
        # The slider sits under the rotated token labels and the axis title.
        slider_pad = theme.tick_size * 7 + theme.font_size * 2
        width, height = side + 260, side + 200 + slider_pad + theme.tick_size * 6
        title = f"Layer {layer} head {head} across {len(results)} checkpoints"
    else:
        hovers, uris, grid = [], [], None
        for s, result in zip(stacked, results, strict=True):
            uri, grid, pool = _grid_image(s, top)
            uris.append(uri)
            tokens, special = list(result.tokens), list(result.special_mask)
            hovers.append(_head_summaries(attention_array(result), tokens, special))
        traces = _model_view_traces(uris[-1], grid, hovers[-1], top)
        layout, width, height = _model_view_layout(grid)
        height += 80
        # Trace 0 is the image (its picture changes), trace 1 the hover layer (its texts).
        updates = [
            {"source": [uri, None], "text": [None, hover]}
            for uri, hover in zip(uris, hovers, strict=True)
        ]
        targets = [0, 1]
        title = f"Every head across {len(results)} checkpoints"
    steps = [
        dict(label=name, method="restyle", args=[update, targets])
        for name, update in zip(step_names, updates, strict=True)
    ]
    layout["sliders"] = [
        dict(
            active=len(steps) - 1,
            steps=steps,
            currentvalue=dict(prefix="training step "),
            pad=dict(t=slider_pad if one_head else 20),
        )
    ]
    label = source_label(first)
    run_name = getattr(getattr(first, "source", None), "run", None)
    if run_name is not None:
        title += f", {run_name.name}"
    elif label:
        title += f", {label}"
    notes = attention_notes(first, hide_special)
    return compose(
        traces,
        layout,
        title,
        notes,
        width=width,
        height=height,
        kind="attention_over_training",
        info="" if one_head else _model_view_info(pool),
    )
