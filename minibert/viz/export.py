"""Getting figures out: offline HTML, PNG/SVG images, and notebook rendering without a CDN.

* :func:`to_html` writes plotly.js into the page (or next to it), never a CDN link and never
  require.js, so the file opens in a browser with no network.
* :func:`save_image` uses kaleido (``pip install kaleido``), which drives a local Chrome or
  Chromium; without either it raises :class:`ImageExportError` saying what to install.
* :func:`setup_notebook` makes notebooks render offline: plotly's ``plotly_mimetype`` renderer
  sends the figure as JSON, drawn by the plotly.js bundled in JupyterLab 4 / Notebook 7's
  ``jupyterlab-plotly`` extension and in VS Code's notebook renderer; the ``*_connected``
  renderers load plotly.js from a CDN and draw nothing offline.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

logger = logging.getLogger(__name__)

# Renderers that fetch plotly.js (or require.js) from the internet.
ONLINE_RENDERERS = ("notebook_connected", "iframe_connected", "cdn", "colab", "kaggle", "azure")

# In an HTML page, the head view highlights a query token's lines on hover by applying the
# matching step of its "focus" slider (no new data: the slider already carries it).
_HEAD_VIEW_HOVER_SCRIPT = """
// minibert head view: hover a query token to show only its lines.
var gd = document.getElementById('{plot_id}');
if (gd && gd.layout && gd.layout.sliders && gd.layout.sliders.length) {
  var steps = gd.layout.sliders[0].steps;
  var apply = function (index) {
    var step = steps[index];
    Plotly.restyle(gd, step.args[0], step.args[1]);
    Plotly.relayout(gd, {'sliders[0].active': index});
  };
  gd.on('plotly_hover', function (event) {
    var point = event.points[0];
    if (point && point.data.meta === 'query-tokens') { apply(point.pointIndex + 1); }
  });
  gd.on('plotly_unhover', function (event) {
    var point = event.points[0];
    if (point && point.data.meta === 'query-tokens') { apply(0); }
  });
}
"""


class ImageExportError(RuntimeError):
    """An image could not be written (kaleido or a browser is missing); the message says what to do."""


def figure_kind(fig: go.Figure) -> str:
    """The name a minibert figure carries in ``layout.meta`` ("" for other figures)."""
    meta = fig.layout.meta
    return meta.get("minibert_figure", "") if isinstance(meta, dict) else ""


def to_html(
    fig: go.Figure, path: str | Path | None = None, *, plotlyjs: str = "embed"
) -> str | Path:
    """Write ``fig`` as an HTML page that needs no network, or return the page as a string.

    ``plotlyjs="embed"`` (default) puts plotly.js (about 4.8 MB) into the page;
    ``"directory"`` writes ``plotly.min.js`` once next to the page and links it by a relative
    path, which keeps many pages in one folder small. A CDN is never used.
    """
    if plotlyjs not in ("embed", "directory"):
        raise ValueError(f"plotlyjs must be 'embed' or 'directory', got {plotlyjs!r} (never a CDN)")
    if plotlyjs == "directory" and path is None:
        raise ValueError("plotlyjs='directory' needs a path: plotly.min.js is written beside it")
    include = True if plotlyjs == "embed" else "directory"
    script = _HEAD_VIEW_HOVER_SCRIPT if figure_kind(fig) == "head_view" else None
    options = dict(
        include_plotlyjs=include,
        include_mathjax=False,
        post_script=script,
        full_html=True,
        config={"displaylogo": False, "responsive": False},
        validate=False,
    )
    if path is None:
        return pio.to_html(fig, **options)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pio.write_html(fig, path, **options)
    return path


def _browser_for_kaleido() -> str | None:
    found = os.environ.get("BROWSER_PATH")
    if found:
        return found
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def save_image(fig: go.Figure, path: str | Path, *, scale: float = 2.0) -> Path:
    """Write ``fig`` as PNG, SVG, PDF or JPEG (from the suffix) with kaleido.

    kaleido 1.x renders with a local Chrome or Chromium (found on PATH or via the
    ``BROWSER_PATH`` environment variable). ``scale=2`` gives sharp slides.
    """
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in ("png", "svg", "pdf", "jpg", "jpeg", "webp"):
        raise ValueError(f"cannot tell the image format from {path.name!r}; use .png or .svg")
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise ImageExportError(
            "image export needs kaleido: pip install kaleido (and a local Chrome or Chromium, "
            "e.g. apt-get install chromium). Or write HTML with minibert.viz.to_html, which "
            "needs neither."
        ) from None
    if _browser_for_kaleido() is None:
        raise ImageExportError(
            "kaleido is installed but found no Chrome or Chromium: install one (e.g. apt-get "
            "install chromium, or run kaleido.get_chrome() when online) or set BROWSER_PATH "
            "to its executable."
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pio.write_image(fig, path, format=suffix, scale=scale, validate=False)
    except Exception as error:  # kaleido reports browser failures with many exception types
        raise ImageExportError(
            f"kaleido could not render {path.name}: {error}. Check that the browser at "
            f"{_browser_for_kaleido()} starts (BROWSER_PATH picks another)."
        ) from error
    return path


def setup_notebook(renderer: str | None = None) -> str:
    """Make plotly figures render offline in this notebook; return the renderer chosen.

    The default, ``plotly_mimetype``, is drawn by the plotly.js that JupyterLab 4, Notebook 7
    (the ``jupyterlab-plotly`` extension installed with plotly) and VS Code ship, so nothing is
    fetched. Pass ``renderer="notebook"`` for front ends without that extension (it embeds
    plotly.js in the notebook once, about 4.8 MB). Online renderers are refused.
    """
    chosen = renderer or "plotly_mimetype"
    if any(name in chosen for name in ONLINE_RENDERERS):
        raise ValueError(
            f"renderer {chosen!r} loads plotly.js from the internet; pick an offline one"
        )
    pio.renderers.default = chosen
    return chosen


def ensure_offline_renderer() -> None:
    """Replace an online default renderer (e.g. ``notebook_connected``) with ``plotly_mimetype``.

    Called when :mod:`minibert.viz` is imported: a figure must not need the internet to draw.
    """
    current = pio.renderers.default or ""
    if any(name in current for name in ONLINE_RENDERERS):
        logger.info("plotly renderer %r needs the internet; using plotly_mimetype", current)
        pio.renderers.default = "plotly_mimetype"
