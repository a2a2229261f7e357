"""Figures about heads as a whole: what each head does, what switching it off costs, what
fine-tuning changed (from :mod:`minibert.inspect.heads`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minibert.viz._common import FigureInputError, finish, nan_note, source_label
from minibert.viz.theme import DIVERGING_SCALE, OKABE_ITO, SEQUENTIAL_SCALE, current_theme

# The classes of minibert.inspect.heads.HEAD_CLASSES, in that order, each with a colour from
# Okabe & Ito light enough for black cell text, and the short name printed in the cell.
CLASS_STYLE = {
    "previous-token": (OKABE_ITO[0], "prev"),
    "next-token": (OKABE_ITO[1], "next"),
    "self": (OKABE_ITO[3], "self"),
    "delimiter": (OKABE_ITO[2], "delim"),
    "broad": (OKABE_ITO[6], "broad"),
    "mixed": ("#BBBBBB", "mixed"),
}
_EXTRA_COLOURS = ("#88CCEE", "#DDCC77", "#44AA99", "#CC6677")


def _grid_axes(fig: go.Figure, layers: int, heads: int, **where: int) -> None:
    """Head numbers across, layer numbers down (layer 0 at the top); ``where``: row=, col=."""
    fig.update_xaxes(
        title_text="head",
        tickvals=list(range(heads)),
        showgrid=False,
        **where,
    )
    fig.update_yaxes(
        title_text="layer",
        tickvals=list(range(layers)),
        autorange="reversed",  # layer 0 at the top, like the model view
        showgrid=False,
        **where,
    )


def head_class_map(stats: Any) -> go.Figure:
    """Layers x heads, each cell coloured by the head's class (previous token, [SEP], broad...).

    Hover a cell for the numbers the class was decided from (``stats.metrics``); the thresholds
    are in ``stats.thresholds`` and in :func:`minibert.inspect.head_statistics`' docstring.
    """
    classes = np.asarray(stats.classes).astype(str)
    if classes.ndim != 2:
        raise FigureInputError(f"stats.classes must be (layers, heads), got shape {classes.shape}")
    layers, heads = classes.shape
    names = [name for name in CLASS_STYLE if name in set(classes.flat)]
    names += sorted(set(classes.flat) - set(names))  # classes this version does not know
    colours = [
        CLASS_STYLE[n][0] if n in CLASS_STYLE else _EXTRA_COLOURS[i % len(_EXTRA_COLOURS)]
        for i, n in enumerate(names)
    ]
    index = {name: i for i, name in enumerate(names)}
    z = np.vectorize(index.__getitem__)(classes)
    count = len(names)
    # A stepped colour scale: value i gets colour i exactly.
    scale = []
    for i, colour in enumerate(colours):
        scale += [(i / count, colour), ((i + 1) / count, colour)]
    short = np.vectorize(lambda n: CLASS_STYLE.get(n, (None, n))[1])(classes)

    metric_names = sorted(stats.metrics)
    values = np.stack([np.asarray(stats.metrics[m], dtype=float) for m in metric_names], axis=-1)
    hover = "<br>".join(
        ["<b>layer %{y}, head %{x}</b>: %{text}"]
        + [f"{m}: %{{customdata[{i}]:.2f}}" for i, m in enumerate(metric_names)]
    )
    theme = current_theme()
    fig = go.Figure(
        go.Heatmap(
            z=z,
            zmin=-0.5,
            zmax=count - 0.5,
            colorscale=scale,
            text=classes,
            customdata=values,
            hovertemplate=hover + "<extra></extra>",
            xgap=2,
            ygap=2,
            colorbar=dict(
                title=dict(text="head class", side="top"),
                tickvals=list(range(count)),
                ticktext=names,
            ),
        )
    )
    # Short class names printed in the cells, when cells are big enough to hold them;
    # otherwise colour and hover carry the class.
    if heads <= 16:
        fig.add_trace(
            go.Scatter(
                x=np.tile(np.arange(heads), layers),
                y=np.repeat(np.arange(layers), heads),
                mode="text",
                text=short.ravel(),
                textfont=dict(size=theme.tick_size, color="#000"),
                hoverinfo="skip",
                showlegend=False,
            )
        )
    _grid_axes(fig, layers, heads)
    label = source_label(stats)
    title = f"What each head does, over {stats.num_sentences} sentences" + (
        f": {label}" if label else ""
    )
    cell = max(theme.cell_px, theme.tick_size * 4)
    return finish(
        fig,
        title,
        [nan_note(values, "metric")],
        width=int(heads * cell + 380),
        height=int(layers * cell * 0.8 + 220),
        kind="head_class_map",
    )


def _as_percent(values: np.ndarray, baseline: float) -> bool:
    """Metrics that live in [0, 1] (accuracy, F1) are shown in percent."""
    finite = np.concatenate([values[np.isfinite(values)], [baseline]])
    return bool(finite.size) and float(finite.min()) >= 0.0 and float(finite.max()) <= 1.0


def ablation_chart(result: Any, *, top: int = 10) -> go.Figure:
    """What switching off each head costs: a layers x heads map of the change in the metric,
    and the ``top`` heads whose removal hurts most as bars (Michel et al. 2019, "Are Sixteen
    Heads Really Better than One?", Section 3: one head masked at a time).

    Metrics in [0, 1] (accuracy, F1) are shown in percent; for a loss
    (``higher_is_better=False``) the costliest heads are those whose removal raises it most.
    """
    scores = np.asarray(result.scores, dtype=float)
    if scores.ndim != 2:
        raise FigureInputError(f"result.scores must be (layers, heads), got shape {scores.shape}")
    if top < 1:
        raise FigureInputError(f"top must be at least 1, got {top}")
    baseline = float(result.baseline)
    # For a loss, removing a head hurts when the score goes up.
    higher_is_better = bool(getattr(result, "higher_is_better", True))
    percent = higher_is_better and _as_percent(scores, baseline)
    factor = 100.0 if percent else 1.0
    unit = " (percentage points)" if percent else ""
    delta = (scores - baseline) * factor  # (L, nh)
    layers, heads = delta.shape
    limit = float(np.nanmax(np.abs(delta), initial=0.0)) or 1.0

    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.16,
        subplot_titles=("every head, one at a time", f"the {top} costliest heads"),
    )
    fig.add_trace(
        go.Heatmap(
            z=delta,
            zmid=0.0,
            zmin=-limit,
            zmax=limit,
            colorscale=DIVERGING_SCALE,
            customdata=scores * factor,
            hovertemplate="layer %{y}, head %{x}<br>score %{customdata:.2f}<br>"
            "change %{z:+.2f}<extra></extra>",
            # Numbers in the cells when there is room for them (up to BERT-base's 12 x 12).
            texttemplate="%{z:+.1f}" if layers * heads <= 144 else None,
            xgap=1,
            ygap=1,
            # A horizontal colour bar under the map keeps clear of the bar chart's labels.
            colorbar=dict(
                title=dict(text=f"change{unit}", side="top"),
                orientation="h",
                x=0.31,
                xanchor="center",
                y=-0.32,
                len=0.5,
                thickness=14,
            ),
        ),
        row=1,
        col=1,
    )
    _grid_axes(fig, layers, heads, row=1, col=1)
    harm = -delta if higher_is_better else delta  # larger = removing the head hurts more
    order = [i for i in np.argsort(-harm, axis=None, kind="stable") if np.isfinite(harm.flat[i])]
    order = order[:top]
    names = [f"L{i // heads} H{i % heads}" for i in order]
    fig.add_trace(
        go.Bar(
            x=[delta.flat[i] for i in order],
            y=names,
            orientation="h",
            marker_color=OKABE_ITO[5],
            hovertemplate="%{y}: %{x:+.2f}<extra></extra>",
            showlegend=False,
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(autorange="reversed", title_text="head switched off", row=1, col=2)
    fig.update_xaxes(title_text=f"change in {result.metric_name}{unit}", row=1, col=2)

    notes = [nan_note(scores, "score")]
    info = ""
    chosen = tuple(getattr(result, "chosen", ()) or ())
    chosen_score = getattr(result, "chosen_score", None)
    if chosen and chosen_score is not None:
        heads_text = ", ".join(f"L{layer} H{head}" for layer, head in chosen)
        info = (
            f"{heads_text} off together: {chosen_score * factor:.2f} "
            f"({(chosen_score - baseline) * factor:+.2f})"
        )
    label = source_label(result)
    title = (
        f"Switching heads off: {result.metric_name}, baseline {baseline * factor:.2f}"
        + ("%" if percent else "")
        + (f" ({label})" if label else "")
    )
    theme = current_theme()
    fig.update_annotations(font_size=theme.font_size)
    return finish(
        fig,
        title,
        notes,
        width=int(max(1000, heads * theme.cell_px * 0.8 + 760)),
        height=int(max(560, layers * theme.cell_px * 0.75 + 360)),
        kind="ablation_chart",
        info=info,
    ).update_layout(margin=dict(b=170, r=60))


def attention_difference(comparison: Any) -> go.Figure:
    """Layers x heads: how much each head's attention differs between two models on one text
    (e.g. before and after fine-tuning; Kovaleva et al. 2019, "Revealing the Dark Secrets of
    BERT", Section 5)."""
    difference = np.asarray(comparison.difference, dtype=float)
    if difference.ndim != 2:
        raise FigureInputError(
            f"comparison.difference must be (layers, heads), got shape {difference.shape}"
        )
    layers, heads = difference.shape
    measure = getattr(comparison, "measure", "mean |a - b|")
    fig = go.Figure(
        go.Heatmap(
            z=difference,
            zmin=0.0,
            colorscale=SEQUENTIAL_SCALE,
            hovertemplate="layer %{y}, head %{x}<br>difference %{z:.3f}<extra></extra>",
            xgap=1,
            ygap=1,
            colorbar=dict(title=dict(text=f"difference<br>({measure})", side="top")),
        )
    )
    _grid_axes(fig, layers, heads)
    a, b = source_label(comparison.a) or "a", source_label(comparison.b) or "b"
    theme = current_theme()
    return finish(
        fig,
        f"Attention changed per head: {a} vs {b}",
        [nan_note(difference, "difference")],
        width=int(heads * theme.cell_px * 0.8 + 320),
        height=int(layers * theme.cell_px * 0.75 + 220),
        kind="attention_difference",
    )
