"""Figures over training: metric curves of one or several runs, and the MLM's guesses for a
masked sentence at each checkpoint."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from minibert.viz._common import FigureInputError, finish
from minibert.viz.theme import OKABE_ITO, SEQUENTIAL_SCALE, current_theme

# What the x axis can be, and which metrics.jsonl field holds it.
X_FIELDS = {
    "step": ("step", "training step"),
    "tokens": ("tokens", "tokens seen"),
    "time": ("time", "training time"),
    "wall time": ("time", "training time"),
    "wall_time": ("time", "training time"),
}
# Axis titles, with units, of the metrics minibert's training loop writes.
METRIC_TITLES = {
    "loss": "loss (nats per token)",
    "mlm_loss": "MLM loss (nats per token)",
    "nsp_loss": "NSP loss (nats per pair)",
    "mlm_accuracy": "MLM accuracy (fraction)",
    "nsp_accuracy": "NSP accuracy (fraction)",
    "accuracy": "accuracy (fraction)",
    "macro_f1": "macro-F1 (fraction)",
    "mlm_perplexity": "MLM perplexity (exp of nats)",
    "lr": "learning rate (per step)",
    "grad_norm": "gradient norm (L2, before clipping)",
    "tokens_per_second": "throughput (tokens / s)",
    "epoch": "epoch (passes over the data)",
}
_SPLIT_DASH = {"train": "solid", "eval": "dash"}


def _number(value: Any) -> float | None:
    """A finite float, or None for a missing, null or NaN value."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _numeric_keys(records: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        k
        for r in records
        for k, v in r.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def _time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 3600.0, "h"
    if seconds >= 300:
        return 60.0, "min"
    return 1.0, "s"


def training_curves(
    runs: Mapping[str, Sequence[Mapping[str, Any]]] | Sequence[Mapping[str, Any]],
    y: str | Sequence[str] = "loss",
    x: str = "step",
    *,
    split: str | None = None,
    log_y: bool = False,
    log_x: bool = False,
) -> go.Figure:
    """Metric curves from ``metrics.jsonl`` records, one colour per run, one panel per metric.

    ``runs`` maps a run name to its records (``minibert.train.rundir.read_metrics`` or
    ``minibert.inspect.read_metrics_table``); a plain list is one run. ``y``: one metric name or
    several (stacked panels sharing x). ``x``: ``"step"``, ``"tokens"`` or ``"time"`` (training
    seconds, shown in s, min or h). ``split``: only that split's lines; by default every split
    that has the metric, train solid and eval dashed. Missing, null and NaN values are skipped
    and counted in a note under the title; a metric no run has is an error naming those it has.
    """
    if not isinstance(runs, Mapping):
        runs = {"run": runs}
    if x not in X_FIELDS:
        raise FigureInputError(f"x must be one of {sorted(X_FIELDS)}, got {x!r}")
    metrics = [y] if isinstance(y, str) else list(y)
    if not metrics:
        raise FigureInputError("y is empty; name at least one metric, e.g. y='loss'")
    x_field, x_title = X_FIELDS[x]
    available = set().union(*(_numeric_keys(r) for r in runs.values())) if runs else set()
    for metric in metrics:
        if metric not in available:
            known = ", ".join(sorted(available - {"step", "time", "wall_time", "tokens"}))
            raise FigureInputError(
                f"no run has a {metric!r} metric; the records have: {known or 'no metrics yet'}"
            )
    longest = max(
        (_number(r.get(x_field)) or 0.0 for records in runs.values() for r in records),
        default=0.0,
    )
    scale, unit = _time_unit(longest) if x_field == "time" else (1.0, "")
    if unit:
        x_title = f"{x_title} ({unit})"

    theme = current_theme()
    fig = make_subplots(
        rows=len(metrics), cols=1, shared_xaxes=True, vertical_spacing=0.16 / len(metrics)
    )
    notes: list[str] = []
    for run_index, (name, records) in enumerate(runs.items()):
        colour = OKABE_ITO[run_index % len(OKABE_ITO)]
        if not records:
            notes.append(f"{name}: no metrics yet")
            continue
        for row, metric in enumerate(metrics, start=1):
            with_metric = [r for r in records if metric in r]
            if not with_metric:
                notes.append(f"{name} has no {metric!r}")
                continue
            splits = sorted({str(r.get("split", "train")) for r in with_metric})
            if split is not None:
                splits = [s for s in splits if s == split]
            skipped = nonpositive = 0
            for split_name in splits:
                xs, ys = [], []
                for record in with_metric:
                    if str(record.get("split", "train")) != split_name:
                        continue
                    xv, yv = _number(record.get(x_field)), _number(record.get(metric))
                    if xv is None or yv is None:
                        skipped += 1
                        continue
                    if log_y and yv <= 0:
                        nonpositive += 1
                        continue
                    xs.append(xv / scale)
                    ys.append(yv)
                fig.add_trace(
                    go.Scatter(
                        x=xs,
                        y=ys,
                        name=f"{name} · {split_name}" if len(runs) > 1 else split_name,
                        legendgroup=name,
                        showlegend=row == 1,
                        mode="lines+markers" if split_name != "train" else "lines",
                        line=dict(
                            color=colour,
                            dash=_SPLIT_DASH.get(split_name, "dot"),
                            width=theme.line_width,
                        ),
                        marker=dict(size=theme.marker_size * 0.8),
                        hovertemplate=f"{name} · {split_name}<br>{x_title} %{{x:,}}<br>"
                        f"{metric} %{{y:.4g}}<extra></extra>",
                    ),
                    row=row,
                    col=1,
                )
            if skipped:
                notes.append(f"{name}: {skipped} missing or NaN {metric!r} value(s) skipped")
            if nonpositive:
                notes.append(
                    f"{name}: {nonpositive} {metric!r} value(s) <= 0 left off the log axis"
                )
    for row, metric in enumerate(metrics, start=1):
        fig.update_yaxes(
            title_text=METRIC_TITLES.get(metric, metric),
            type="log" if log_y else "linear",
            row=row,
            col=1,
        )
    fig.update_xaxes(type="log" if log_x else "linear")
    fig.update_xaxes(title_text=x_title, row=len(metrics), col=1)
    title = " / ".join(metrics) + " over " + x_title.split(" (")[0]
    if len(runs) > 1:
        title += f": {len(runs)} runs"
    elif runs:
        title += f": {next(iter(runs))}"
    return finish(
        fig,
        title,
        notes,
        width=900,
        height=int(200 + 320 * len(metrics) * (theme.font_size / 14) ** 0.5),
        kind="training_curves",
    )


def fill_mask_over_training(over: Any, *, top_k: int | None = None) -> go.Figure:
    """The MLM's top guesses for each [MASK] at each checkpoint: a table coloured by probability.

    Columns are checkpoints (training steps), rows are ranks 1..k, each cell the guessed word
    piece, its colour the probability; one panel per masked position. Watching the guesses go
    from frequent tokens ("the", ",") to the right word is the lesson.
    """
    checkpoints, results = list(over.checkpoints), list(over.results)
    if not results:
        raise FigureInputError("no checkpoints to show: the run has no complete checkpoint yet")
    if len(checkpoints) != len(results):
        raise FigureInputError(
            f"{len(checkpoints)} checkpoints but {len(results)} fill-mask results; they must pair up"
        )
    positions = list(results[0].mask_positions)
    if not positions:
        raise FigureInputError(
            f"the text has no [MASK] token: {results[0].text!r}; put [MASK] where a word should go"
        )
    k = min(len(g) for r in results for g in r.guesses)
    if top_k is not None:
        k = min(k, top_k)
    tokens = list(results[0].tokens)
    theme = current_theme()
    fig = make_subplots(
        rows=len(positions),
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12 / len(positions),
        subplot_titles=[
            f"[MASK] #{n + 1} (position {p}): "
            + " ".join(tokens[max(0, p - 4) : p] + ["___"] + tokens[p + 1 : p + 5])
            for n, p in enumerate(positions)
        ],
    )
    steps = [f"{c.step:,}" for c in checkpoints]
    for row, _ in enumerate(positions, start=1):
        probability = np.full((k, len(results)), np.nan)
        words = np.full((k, len(results)), "", dtype=object)
        for column, result in enumerate(results):
            for rank, guess in enumerate(result.guesses[row - 1][:k]):
                probability[rank, column] = guess.probability
                words[rank, column] = guess.token
        fig.add_trace(
            go.Heatmap(
                z=probability,
                x=list(range(len(results))),
                y=list(range(1, k + 1)),
                text=words,
                texttemplate="%{text}",
                textfont=dict(size=theme.tick_size),
                zmin=0.0,
                zmax=1.0,
                colorscale=SEQUENTIAL_SCALE,
                xgap=2,
                ygap=2,
                hovertemplate="step %{customdata}<br>rank %{y}: %{text}<br>"
                "probability %{z:.1%}<extra></extra>",
                customdata=np.broadcast_to(np.array(steps, dtype=object), (k, len(results))),
                showscale=row == 1,
                colorbar=dict(title=dict(text="probability", side="top")),
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(
            title_text="rank", autorange="reversed", tickvals=list(range(1, k + 1)), row=row, col=1
        )
    fig.update_xaxes(
        title_text="checkpoint (training step)",
        tickvals=list(range(len(results))),
        ticktext=steps,
        tickangle=-45,
        row=len(positions),
        col=1,
    )
    fig.update_annotations(font_size=theme.font_size)
    text = getattr(results[0], "text", "")
    cell_w = max(theme.tick_size * 6, 70)
    truncated = any(getattr(r, "truncated", False) for r in results)
    return finish(
        fig,
        f"Fill-mask over training: “{text}”",
        ["text truncated to the model's length"] if truncated else [],
        width=int(max(700, len(results) * cell_w + 260)),
        height=int(len(positions) * (k * theme.tick_size * 2.6 + 90) + 240),
        kind="fill_mask_over_training",
    )
