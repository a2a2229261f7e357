"""Small helpers every figure module uses: input checks, notes, token ticks, titles."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from minibert.viz.theme import current_theme


class FigureInputError(ValueError):
    """A figure was asked for something its input cannot give (the message says what to do)."""


def check_index(name: str, index: int, size: int) -> int:
    """Return ``index`` as a position in ``range(size)``, or raise an error that says the range.

    Negative indices count from the end, as in Python (``layer=-1`` is the last layer).
    """
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise FigureInputError(f"{name} must be an integer, got {index!r}")
    if not -size <= index < size:
        raise FigureInputError(
            f"{name} {index} is out of range: this model has {size} {name}s "
            f"({name} 0 to {size - 1}; -1 is the last)"
        )
    return int(index) % size


def attention_array(result: Any) -> np.ndarray:
    """The (L, nh, T, T) attention array of an AttentionResult, checked."""
    attentions = np.asarray(result.attentions)
    if attentions.ndim != 4 or attentions.shape[2] != attentions.shape[3]:
        raise FigureInputError(
            f"attentions must have shape (layers, heads, T, T), got {attentions.shape}"
        )
    if attentions.shape[2] != len(result.tokens):
        raise FigureInputError(
            f"attentions cover {attentions.shape[2]} tokens but there are "
            f"{len(result.tokens)} token labels"
        )
    return attentions


def visible_positions(result: Any, hide_special: bool) -> list[int]:
    """Token positions to draw: all, or all but [CLS]/[SEP]/[PAD] when ``hide_special``."""
    positions = list(range(len(result.tokens)))
    if hide_special:
        special = list(getattr(result, "special_mask", [False] * len(positions)))
        positions = [i for i in positions if not special[i]]
        if not positions:
            raise FigureInputError(
                "every token is a special token; nothing is left with hide_special=True"
            )
    return positions


def attention_notes(result: Any, hide_special: bool) -> list[str]:
    """The notes an attention figure must show: truncation, hidden special tokens, NaN."""
    notes = []
    if getattr(result, "truncated", False):
        before = getattr(result, "num_tokens_before_truncation", None)
        shown = len(result.tokens)
        notes.append(
            f"text truncated: {shown} of {before} tokens shown"
            if before
            else f"text truncated to {shown} tokens"
        )
    if hide_special:
        notes.append("[CLS]/[SEP] hidden (weights not renormalised)")
    return notes


def nan_note(values: np.ndarray, what: str) -> str | None:
    """A note when ``values`` hold NaN (drawn as gaps), else None."""
    count = int(np.isnan(np.asarray(values, dtype=float)).sum())
    return f"{count} {what} value(s) are NaN and left blank" if count else None


def source_label(obj: Any) -> str:
    """A short name for the model a result came from ("" when unknown)."""
    source = getattr(obj, "source", None)
    label = getattr(source, "label", "") or ""
    return str(label)


def tick_stride(count: int, length_px: float, font_px: float) -> int:
    """Label every n-th token so that labels ``font_px`` tall do not overlap on ``length_px``."""
    fits = max(1, int(length_px // (font_px * 1.25)))
    return max(1, math.ceil(count / fits))


def token_ticks(
    labels: Sequence[str], length_px: float, font_px: float
) -> tuple[list[int], list[str]]:
    """Tick positions and texts for token labels along an axis of ``length_px`` pixels.

    Axes of token figures are numeric (0..T-1) with these tick texts, never categorical:
    a sentence may hold the same word piece twice, and a categorical axis would merge them.
    """
    stride = tick_stride(len(labels), length_px, font_px)
    positions = list(range(0, len(labels), stride))
    return positions, [labels[i] for i in positions]


@functools.lru_cache(maxsize=8)
def _template_json(name: str) -> dict[str, Any]:
    return pio.templates[name].to_plotly_json()


def _title(title: str, notes: list[str], info: str = "") -> dict[str, Any]:
    """Title with a subtitle: plain information first, then warnings in red with a sign."""
    theme = current_theme()
    title_dict: dict[str, Any] = dict(text=title, font=dict(size=theme.title_size))
    parts = [info] if info else []
    if notes:
        parts.append('<span style="color:#A33">⚠ ' + " · ".join(notes) + "</span>")
    if parts:
        title_dict["subtitle"] = dict(
            text=" · ".join(parts), font=dict(size=theme.font_size, color="#444")
        )
    return title_dict


def compose(
    data: Sequence[Any],
    layout: dict[str, Any],
    title: str,
    notes: Sequence[str | None] = (),
    *,
    width: int | None = None,
    height: int | None = None,
    kind: str = "",
    info: str = "",
) -> go.Figure:
    """Build a figure in one go from trace dicts and a layout dict, without plotly's checks.

    For the figures whose payload is large (the model view, the head view's per-token slider,
    attention across checkpoints): plotly's property-by-property validation, and every later
    ``update_layout`` walking the slider steps, cost seconds; one unvalidated construction costs
    milliseconds. The tests rebuild every figure with validation on
    (``go.Figure(fig.to_plotly_json())``), so a misspelled property still fails a test.
    Otherwise as :func:`finish`.
    """
    theme = current_theme()
    shown = [n for n in notes if n]
    layout = dict(layout)
    layout.update(
        template=_template_json(theme.template),
        title=_title(title, shown, info),
        width=width,
        height=height,
        meta=dict(minibert_figure=kind, notes=shown),
    )
    if shown or info:
        margin = layout.get("margin", {})
        layout["margin"] = {**margin, "t": max(margin.get("t", 0), top_margin())}
    return go.Figure(data=list(data), layout=layout, _validate=False)


def top_margin() -> int:
    theme = current_theme()
    return theme.title_size * 2 + theme.font_size * 3 + 20


def finish(
    fig: go.Figure,
    title: str,
    notes: Sequence[str | None] = (),
    *,
    width: int | None = None,
    height: int | None = None,
    kind: str = "",
    info: str = "",
) -> go.Figure:
    """Apply the theme, the title and the notes (shown under the title, never hidden).

    ``notes`` are warnings about the data (truncated text, NaN values), in red; ``info`` is a
    plain line of context (a seed, a threshold).

    ``kind`` names the figure in ``layout.meta`` so that tests, the HTML exporter and the
    dashboard can tell figures apart.
    """
    theme = current_theme()
    shown = [n for n in notes if n]
    fig.update_layout(
        template=theme.template,
        title=_title(title, shown, info),
        width=width,
        height=height,
        meta=dict(minibert_figure=kind, notes=shown),
    )
    if shown or info:
        fig.update_layout(margin=dict(t=top_margin()))
    return fig
