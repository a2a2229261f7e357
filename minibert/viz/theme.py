"""Looks shared by every figure: a readable default, a projector theme, colour-blind-safe colours.

Two themes, both registered as plotly templates:

* ``"default"``: 14 px text, for notebooks and the dashboard;
* ``"presentation"``: 22 px text, thicker lines, bigger markers, for a lecture-room projector
  (text must stay readable from the back row at 1280 x 720).

Colours are chosen for colour-vision deficiency: the attention scale is viridis (perceptually
uniform, readable in greyscale and by deuteranopes; van der Walt & Smith 2015), the diverging
scale is ColorBrewer's PuOr, and categories use Okabe & Ito's eight colours (2008) or CARTO's
"Safe" palette when more are needed.

Figures read the current theme when they are built: call :func:`use_theme` first.
"""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
import plotly.io as pio

# Okabe & Ito (2008), "Color Universal Design": distinguishable under the common deficiencies.
OKABE_ITO = (
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#000000",  # black
)
# CARTO "Safe" (11 colours, colour-blind safe) plus Okabe-Ito's vermillion: one per head of a
# 12-head model (BERT-base, MiniLM). Heads beyond 12 reuse colours; the legend names them.
HEAD_COLOURS = (
    "#88CCEE",
    "#CC6677",
    "#DDCC77",
    "#117733",
    "#332288",
    "#AA4499",
    "#44AA99",
    "#999933",
    "#882255",
    "#661100",
    "#6699CC",
    "#D55E00",
)
ATTENTION_SCALE = "Viridis"  # sequential, 0 = dark purple, 1 = yellow
DIVERGING_SCALE = "PuOr"  # orange = below the baseline, purple = above
SEQUENTIAL_SCALE = "Cividis"  # counts and probabilities that are not attention


@dataclass(frozen=True)
class Theme:
    """Sizes, in CSS pixels, that figures use for text and marks."""

    name: str
    font_size: int  # body text: hover labels, legends, annotations
    title_size: int
    tick_size: int  # axis tick labels (token labels use this too)
    line_width: float
    marker_size: int
    cell_px: int  # the smallest side, in pixels, of one head's map in the model view
    template: str  # the plotly template name


THEMES = {
    "default": Theme("default", 14, 18, 12, 2.0, 8, 56, "minibert"),
    "presentation": Theme("presentation", 22, 28, 18, 3.5, 13, 88, "minibert_presentation"),
}
_current = "default"


def _template(theme: Theme) -> go.layout.Template:
    """Build the plotly template for ``theme`` on top of plotly's white template."""
    base = pio.templates["plotly_white"]
    template = go.layout.Template(base)
    template.layout.update(
        font=dict(size=theme.font_size, family="Arial, Helvetica, sans-serif", color="#222"),
        title=dict(font=dict(size=theme.title_size), x=0.02, xanchor="left"),
        colorway=list(OKABE_ITO),
        colorscale=dict(sequential=ATTENTION_SCALE, diverging=DIVERGING_SCALE),
        xaxis=dict(
            tickfont=dict(size=theme.tick_size),
            title=dict(font=dict(size=theme.font_size)),
            showline=True,
            linecolor="#444",
            ticks="outside",
        ),
        yaxis=dict(
            tickfont=dict(size=theme.tick_size),
            title=dict(font=dict(size=theme.font_size)),
            showline=True,
            linecolor="#444",
            ticks="outside",
        ),
        legend=dict(font=dict(size=theme.font_size)),
        hoverlabel=dict(font=dict(size=theme.font_size)),
        margin=dict(l=80, r=40, t=90, b=70),
    )
    template.data.scatter = [go.Scatter(line=dict(width=theme.line_width))]
    return template


for _theme in THEMES.values():
    pio.templates[_theme.template] = _template(_theme)


def presentation_theme() -> go.layout.Template:
    """The projector template (large text, thick lines), e.g. ``fig.update_layout(template=...)``."""
    return pio.templates[THEMES["presentation"].template]


def use_theme(name: str) -> str:
    """Make ``name`` ("default" or "presentation") the theme of figures built from now on.

    Also sets plotly's default template, so other plotly figures in the notebook match.
    Returns the previous theme's name, so a caller can switch back.
    """
    global _current
    if name not in THEMES:
        raise ValueError(f"unknown theme {name!r}; choose one of {sorted(THEMES)}")
    previous, _current = _current, name
    pio.templates.default = THEMES[name].template
    return previous


def current_theme() -> Theme:
    """The theme figures are built with now."""
    return THEMES[_current]
