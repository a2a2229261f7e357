"""Figures of what :mod:`minibert.inspect` measures: plotly, offline, readable on a projector.

Every function takes one of inspect's result objects and returns a ``plotly.graph_objects.Figure``
(show it in a notebook, ``st.plotly_chart`` it in Streamlit, or write it with :func:`to_html`).
Nothing here needs the internet: exported pages embed plotly.js, and importing this package
swaps an online notebook renderer for the offline ``plotly_mimetype`` (see :mod:`.export`).

Attention (:mod:`.attention`): :func:`attention_heatmap`, :func:`model_view`, :func:`head_view`,
:func:`attention_over_training`. Heads (:mod:`.heads`): :func:`head_class_map`,
:func:`ablation_chart`, :func:`attention_difference`. Training (:mod:`.training`):
:func:`training_curves`, :func:`fill_mask_over_training`. Predictions and vectors
(:mod:`.tables`): :func:`masking_lab_table`, :func:`fill_mask_chart`,
:func:`embedding_scatter`, :func:`confusion_matrix`. Looks (:mod:`.theme`): :func:`use_theme`,
:func:`presentation_theme`. Output (:mod:`.export`): :func:`to_html`, :func:`save_image`,
:func:`setup_notebook`. Notebook explorers: :mod:`minibert.viz.widgets` (needs ipywidgets).

Bad input (a layer that does not exist, an empty run) raises :class:`FigureInputError` with
what to do; data problems a figure can live with (NaN metrics, a truncated text, hidden
[CLS]/[SEP]) are stated under the figure's title.
"""

from minibert.viz._common import FigureInputError
from minibert.viz.attention import (
    attention_heatmap,
    attention_over_training,
    head_view,
    model_view,
)
from minibert.viz.export import (
    ImageExportError,
    ensure_offline_renderer,
    figure_kind,
    save_image,
    setup_notebook,
    to_html,
)
from minibert.viz.heads import ablation_chart, attention_difference, head_class_map
from minibert.viz.tables import (
    confusion_matrix,
    embedding_scatter,
    fill_mask_chart,
    masking_lab_table,
)
from minibert.viz.theme import current_theme, presentation_theme, use_theme
from minibert.viz.training import fill_mask_over_training, training_curves

ensure_offline_renderer()

__all__ = [
    "FigureInputError",
    "ImageExportError",
    "ablation_chart",
    "attention_difference",
    "attention_heatmap",
    "attention_over_training",
    "confusion_matrix",
    "current_theme",
    "embedding_scatter",
    "figure_kind",
    "fill_mask_chart",
    "fill_mask_over_training",
    "head_class_map",
    "head_view",
    "masking_lab_table",
    "model_view",
    "presentation_theme",
    "save_image",
    "setup_notebook",
    "to_html",
    "training_curves",
    "use_theme",
]
