"""Figures of predictions and representations: the masking lab's table, an embedding scatter,
a confusion matrix, and one sentence's fill-mask guesses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from minibert.viz._common import FigureInputError, finish, nan_note, source_label
from minibert.viz.theme import OKABE_ITO, SEQUENTIAL_SCALE, current_theme

# BERT's masking decisions (Devlin et al. 2019, Section 3.1: of the 15% selected, 80% [MASK],
# 10% a random token, 10% kept), each with a light row tint and a colour-blind-safe name colour.
KIND_STYLE = {
    "none": ("#FFFFFF", "#555555", "not selected"),
    "mask": ("#D6ECFA", OKABE_ITO[4], "[MASK]"),
    "random": ("#FBE3CC", OKABE_ITO[5], "random token"),
    "kept": ("#D5F0E6", OKABE_ITO[2], "kept as is"),
}


def masking_lab_table(result: Any) -> go.Figure:
    """One row per token: what it was, what the model saw, how it was chosen (BERT's 80/10/10),
    the model's guess, its loss and whether it was right; accuracy per kind in the title."""
    columns = [result.tokens, result.inputs, result.kind, result.predictions]
    if len({len(c) for c in [*columns, result.losses, result.correct]}) != 1:
        raise FigureInputError(
            "tokens, inputs, kind, predictions, losses and correct must have one entry per token"
        )
    unknown = sorted(set(result.kind) - set(KIND_STYLE))
    if unknown:
        raise FigureInputError(f"unknown masking kind(s) {unknown}; expected {sorted(KIND_STYLE)}")
    theme = current_theme()
    count = len(result.tokens)
    fill = [KIND_STYLE[k][0] for k in result.kind]

    def show(value: Any, fmt: str = "{}") -> str:
        return "" if value is None else fmt.format(value)

    cells = [
        list(range(count)),
        list(result.tokens),
        list(result.inputs),
        [KIND_STYLE[k][2] if k != "none" else "" for k in result.kind],
        [show(p) for p in result.predictions],
        [show(loss, "{:.2f}") for loss in result.losses],
        ["" if c is None else ("✓" if c else "✗") for c in result.correct],
    ]
    header = ["#", "original", "model saw", "selected as", "top guess", "loss (nats)", "right?"]
    row_px = theme.font_size * 2
    fig = go.Figure(
        go.Table(
            columnwidth=[0.5, 1.6, 1.6, 1.6, 1.6, 1.1, 0.8],
            header=dict(
                values=[f"<b>{h}</b>" for h in header],
                fill_color="#E8E8E8",
                font=dict(size=theme.font_size),
                align="left",
                height=row_px,
            ),
            cells=dict(
                values=cells,
                fill_color=[fill] * len(cells),
                font=dict(size=theme.font_size),
                align="left",
                height=row_px,
            ),
        )
    )
    order = ("mask", "random", "kept", "all")
    parts = []
    for kind in order:
        if kind in result.accuracy_by_kind and result.count_by_kind.get(kind, 0):
            name = "all selected" if kind == "all" else KIND_STYLE[kind][2]
            accuracy = result.accuracy_by_kind[kind]
            parts.append(f"{name} {accuracy:.0%} of {result.count_by_kind[kind]}")
    label = source_label(result)
    title = "Masking lab: " + (" · ".join(parts) if parts else "no token selected")
    notes = []
    if not any(k != "none" for k in result.kind):
        notes.append("no token was selected; try another seed")
    if getattr(result, "truncated", False):
        notes.append(f"text truncated to {count} tokens")
    rate = getattr(result, "mlm_probability", None)
    info = f"seed {result.seed}" + (f", {rate:.0%} of tokens selected" if rate else "")
    info += f", {label}" if label else ""
    return finish(
        fig,
        title,
        notes,
        width=980,
        height=int(min(2400, (count + 1) * row_px + 200)),
        kind="masking_lab_table",
        info=info,
    )


def embedding_scatter(
    projection: Any,
    *,
    groups: Sequence[str] | None = None,
    show_labels: bool = True,
) -> go.Figure:
    """Points of a 2-D projection of embeddings (``minibert.inspect.project``), labelled; with
    ``groups`` (one name per point) coloured by group with a legend."""
    points = np.asarray(projection.points, dtype=float)
    labels = list(projection.labels)
    if points.ndim != 2 or points.shape[1] != 2 or len(points) != len(labels):
        raise FigureInputError(
            f"points must be (N, 2) with one label per point; got {points.shape} and {len(labels)} labels"
        )
    if groups is not None and len(groups) != len(labels):
        raise FigureInputError(f"groups has {len(groups)} entries for {len(labels)} points")
    finite = np.isfinite(points).all(axis=1)
    theme = current_theme()
    method = str(projection.method).upper()
    names = list(groups) if groups is not None else ["points"] * len(labels)
    fig = go.Figure()
    for index, group in enumerate(dict.fromkeys(names)):
        keep = [i for i, g in enumerate(names) if g == group and finite[i]]
        fig.add_trace(
            go.Scatter(
                x=points[keep, 0],
                y=points[keep, 1],
                mode="markers+text" if show_labels else "markers",
                text=[labels[i] for i in keep],
                textposition="top center",
                textfont=dict(size=theme.tick_size),
                marker=dict(size=theme.marker_size, color=OKABE_ITO[index % len(OKABE_ITO)]),
                name=group,
                showlegend=groups is not None,
                hovertemplate="%{text}<extra>" + group + "</extra>",
            )
        )
    dropped = int((~finite).sum())
    notes = [f"{dropped} point(s) with NaN coordinates left out"] if dropped else []
    explained = getattr(projection, "explained_variance", None) or []
    for axis, update in enumerate((fig.update_xaxes, fig.update_yaxes)):
        share = f", {explained[axis]:.0%} of variance" if len(explained) > axis else ""
        update(title_text=f"{method} {axis + 1} (no unit{share})", zeroline=False)
    return finish(
        fig,
        f"Embeddings in 2-D ({method}, {len(labels)} points)",
        notes,
        width=900,
        height=720,
        kind="embedding_scatter",
    )


def confusion_matrix(matrix: Any, labels: Sequence[str], *, normalize: bool = False) -> go.Figure:
    """Counts of (true label, predicted label) pairs; with ``normalize`` each true row in
    fractions (recall on the diagonal)."""
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise FigureInputError(f"the matrix must be square, got shape {counts.shape}")
    if counts.shape[0] != len(labels):
        raise FigureInputError(f"{len(labels)} labels for a {counts.shape[0]}-class matrix")
    theme = current_theme()
    total = np.nansum(counts)
    accuracy = float(np.nansum(np.diag(counts)) / total) if total else float("nan")
    rows = counts.sum(axis=1, keepdims=True)
    shown = (
        np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0) if normalize else counts
    )
    text_fmt = "%{z:.0%}" if normalize else "%{z:,.0f}"
    positions = list(range(len(labels)))
    fig = go.Figure(
        go.Heatmap(
            z=shown,
            x=positions,
            y=positions,
            colorscale=SEQUENTIAL_SCALE,
            zmin=0.0,
            texttemplate=text_fmt,
            textfont=dict(size=theme.tick_size + 2),
            customdata=counts,
            hovertemplate="true %{y}, predicted %{x}<br>%{customdata:,.0f} examples<extra></extra>",
            xgap=2,
            ygap=2,
            colorbar=dict(
                title=dict(text="fraction of row" if normalize else "examples", side="top")
            ),
        )
    )
    fig.update_xaxes(title_text="predicted label", tickvals=positions, ticktext=list(labels))
    fig.update_yaxes(
        title_text="true label", tickvals=positions, ticktext=list(labels), autorange="reversed"
    )
    side = max(360, len(labels) * theme.tick_size * 5)
    return finish(
        fig,
        f"Confusion matrix: accuracy {accuracy:.1%} of {int(total):,} examples",
        [nan_note(counts, "count")],
        width=int(side + 300),
        height=int(side + 220),
        kind="confusion_matrix",
    )


def fill_mask_chart(result: Any) -> go.Figure:
    """One sentence's top-k guesses per [MASK] as horizontal bars of probability."""
    if not result.mask_positions:
        raise FigureInputError(
            f"the text has no [MASK] token: {result.text!r}; put [MASK] where a word should go"
        )
    theme = current_theme()
    fig = go.Figure()
    for n, guesses in enumerate(result.guesses):
        fig.add_trace(
            go.Bar(
                x=[g.probability for g in guesses],
                y=[f"#{n + 1}: {g.token}" for g in guesses],
                orientation="h",
                name=f"[MASK] #{n + 1}",
                marker_color=OKABE_ITO[(4 + n) % len(OKABE_ITO)],
                hovertemplate="%{y}: %{x:.1%}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="probability", tickformat=".0%", range=[0, 1])
    fig.update_yaxes(autorange="reversed", title_text="guess (per [MASK])")
    rows = sum(len(g) for g in result.guesses)
    label = source_label(result)
    truncated = getattr(result, "truncated", False)
    return finish(
        fig,
        f"Fill-mask: “{result.text}”" + (f" ({label})" if label else ""),
        ["text truncated to the model's length"] if truncated else [],
        width=820,
        height=int(rows * theme.font_size * 2.2 + 240),
        kind="fill_mask_chart",
    )
