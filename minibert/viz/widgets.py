"""ipywidgets explorers for notebooks: type a sentence, pick a layer, head or checkpoint.

Each explorer keeps its state in plain attributes and does its work in :meth:`update`, an
ordinary method the widgets call and tests call directly (no browser, no kernel)::

    explorer = AttentionExplorer("minilm", "The cat sat on the mat.")
    explorer              # shows the controls and the figure in a notebook
    explorer.update(layer=3, head=7, view="one head")
    explorer.figure       # the plotly figure now shown

Bad input (an unknown model, an empty sentence, a layer out of range) is shown as a message
above the figure, never as a traceback; ``explorer.error`` holds it. The numbers come from
:mod:`minibert.inspect`; ``compute=`` replaces that call (tests pass a function returning
sample results).

Needs ``ipywidgets`` (``pip install 'minibert[notebooks]'``).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from minibert.viz import attention as attention_figures
from minibert.viz import tables
from minibert.viz._common import FigureInputError

logger = logging.getLogger(__name__)


def _widgets():
    try:
        import ipywidgets
    except ImportError:
        raise ImportError(
            "the explorers need ipywidgets: pip install 'minibert[notebooks]'"
        ) from None
    return ipywidgets


def _user_errors() -> tuple[type[Exception], ...]:
    """Errors that mean "fix the input", shown as a message rather than raised."""
    errors: list[type[Exception]] = [FigureInputError, ValueError, FileNotFoundError]
    try:
        from minibert.inspect.errors import InspectError

        errors.append(InspectError)
    except ImportError:  # inspect is optional for figure-only use
        pass
    return tuple(errors)


class _Explorer:
    """Shared plumbing: a message line, an output area, update() that never raises on bad input."""

    def __init__(self) -> None:
        self.figure: go.Figure | None = None
        self.error: str | None = None
        self._controls: list[Any] = []
        self._message = None
        self._output = None
        self._box = None

    # -- the part tests call ---------------------------------------------------------------
    def update(self, **changes: Any) -> go.Figure | None:
        """Apply ``changes`` (attribute name -> value), redraw, and return the new figure.

        On bad input the figure is cleared and :attr:`error` says what to fix.
        """
        unknown = set(changes) - set(self._settable)
        if unknown:
            raise TypeError(f"unknown setting(s) {sorted(unknown)}; use {sorted(self._settable)}")
        for name, value in changes.items():
            setattr(self, name, value)
        try:
            self.figure = self._draw(changed=set(changes))
            self.error = None
        except _user_errors() as error:
            self.figure, self.error = None, str(error)
        self._sync_widgets()
        self._show()
        return self.figure

    _settable: tuple[str, ...] = ()

    def _draw(self, changed: set[str]) -> go.Figure:
        raise NotImplementedError

    def _sync_widgets(self) -> None:
        """Make the controls show the state (e.g. a slider's range after a new sentence)."""

    # -- the part a notebook shows ---------------------------------------------------------
    @property
    def widget(self):
        """The ipywidgets box: controls, a message line and the figure."""
        if self._box is None:
            ipywidgets = _widgets()
            self._controls = self._make_controls(ipywidgets)
            self._message = ipywidgets.HTML()
            self._output = ipywidgets.Output()
            self._box = ipywidgets.VBox(
                [ipywidgets.HBox(self._controls[:3]), ipywidgets.HBox(self._controls[3:])]
                + [self._message, self._output]
            )
            self._sync_widgets()
            self._show()
        return self._box

    def _make_controls(self, ipywidgets) -> list[Any]:
        raise NotImplementedError

    def _bind(self, control: Any, name: str) -> Any:
        """Call update(name=value) when ``control`` changes (the only widget callback)."""

        def changed(change: dict) -> None:
            if getattr(self, name) != change["new"]:
                self.update(**{name: change["new"]})

        control.observe(changed, names="value")
        return control

    def _show(self) -> None:
        if self._message is not None:
            self._message.value = (
                f'<span style="color:#A33">⚠ {html.escape(self.error)}</span>' if self.error else ""
            )
        if self._output is not None:
            from IPython.display import clear_output, display

            with self._output:
                clear_output(wait=True)
                if self.figure is not None:
                    display(self.figure)

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def _show_index(slider: Any, value: int) -> None:
    """Put ``value`` on ``slider`` when it is in range (an out-of-range one stays an error
    message; the slider is not the place to clamp it)."""
    if slider.min <= value <= slider.max and slider.value != value:
        slider.value = value


def _default_attention(source: Any, text: str, text_pair: str | None) -> Any:
    from minibert.inspect.attention_maps import attention

    return attention(source, text, text_pair)


class AttentionExplorer(_Explorer):
    """A sentence (and optional second sentence) through a model: one head, every head, or lines.

    ``view``: ``"one head"`` (:func:`~minibert.viz.attention_heatmap`), ``"every head"``
    (:func:`~minibert.viz.model_view`) or ``"lines"`` (:func:`~minibert.viz.head_view`).
    """

    VIEWS = ("one head", "every head", "lines")
    _settable = ("text", "text_pair", "view", "layer", "head", "hide_special")

    def __init__(
        self,
        model_source: Any,
        text: str = "The cat sat on the mat because it was tired.",
        text_pair: str | None = None,
        *,
        view: str = "one head",
        layer: int = 0,
        head: int = 0,
        hide_special: bool = False,
        compute: Callable[[Any, str, str | None], Any] | None = None,
    ) -> None:
        super().__init__()
        self.model_source = model_source
        self.text, self.text_pair = text, text_pair
        self.view, self.layer, self.head, self.hide_special = view, layer, head, hide_special
        self.compute = compute or _default_attention
        self.result: Any = None
        self._computed_for: tuple[str, str | None] | None = None
        self.update()

    def _draw(self, changed: set[str]) -> go.Figure:
        if self.view not in self.VIEWS:
            raise FigureInputError(f"view must be one of {self.VIEWS}, got {self.view!r}")
        if not self.text or not self.text.strip():
            raise FigureInputError("type a sentence first")
        pair = self.text_pair or None
        if self._computed_for != (self.text, pair):
            self.result = None
            self.result = self.compute(self.model_source, self.text, pair)
            self._computed_for = (self.text, pair)
        if self.view == "every head":
            return attention_figures.model_view(self.result, hide_special=self.hide_special)
        if self.view == "lines":
            return attention_figures.head_view(
                self.result, self.layer, hide_special=self.hide_special
            )
        return attention_figures.attention_heatmap(
            self.result, self.layer, self.head, hide_special=self.hide_special
        )

    def _make_controls(self, ipywidgets) -> list[Any]:
        return [
            self._bind(ipywidgets.Text(value=self.text, description="sentence", continuous_update=False), "text"),
            self._bind(ipywidgets.Text(value=self.text_pair or "", description="second", continuous_update=False), "text_pair"),
            self._bind(ipywidgets.Checkbox(value=self.hide_special, description="hide [CLS]/[SEP]"), "hide_special"),
            self._bind(ipywidgets.ToggleButtons(options=self.VIEWS, value=self.view, description="view"), "view"),
            self._bind(ipywidgets.IntSlider(value=self.layer, min=0, max=0, description="layer"), "layer"),
            self._bind(ipywidgets.IntSlider(value=self.head, min=0, max=0, description="head"), "head"),
        ]  # fmt: skip

    def _sync_widgets(self) -> None:
        if not self._controls or self.result is None:
            return
        layers, heads = self.result.attentions.shape[:2]
        layer_slider, head_slider = self._controls[4], self._controls[5]
        layer_slider.max, head_slider.max = layers - 1, heads - 1
        # A slider made before the model was known clamped its value to max=0: show the state.
        _show_index(layer_slider, self.layer)
        _show_index(head_slider, self.head)
        head_slider.disabled = self.view != "one head"
        layer_slider.disabled = self.view == "every head"


def _default_over_training(run_dir: Any, text: str, text_pair: str | None) -> Any:
    from minibert.inspect.checkpoints import attention_over_training

    return attention_over_training(run_dir, text, text_pair)


class CheckpointExplorer(_Explorer):
    """One text through every checkpoint of a run; a slider picks the checkpoint.

    Attention of all checkpoints is computed once (and cached on disk by inspect); moving the
    slider only redraws. ``view``: ``"one head"`` or ``"every head"``.
    """

    VIEWS = ("one head", "every head")
    _settable = ("text", "checkpoint", "view", "layer", "head", "hide_special")

    def __init__(
        self,
        run_dir: str | Path,
        text: str = "The cat sat on the mat because it was tired.",
        *,
        view: str = "one head",
        layer: int = 0,
        head: int = 0,
        hide_special: bool = False,
        compute: Callable[[Any, str, str | None], Any] | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.text, self.view = text, view
        self.layer, self.head, self.hide_special = layer, head, hide_special
        self.checkpoint = -1  # index into the run's checkpoints; -1 = the last
        self.compute = compute or _default_over_training
        self.over: Any = None
        self._computed_for: str | None = None
        self.update()

    @property
    def steps(self) -> list[int]:
        return [c.step for c in self.over.checkpoints] if self.over is not None else []

    def _draw(self, changed: set[str]) -> go.Figure:
        if self.view not in self.VIEWS:
            raise FigureInputError(f"view must be one of {self.VIEWS}, got {self.view!r}")
        if not self.text or not self.text.strip():
            raise FigureInputError("type a sentence first")
        if self._computed_for != self.text:
            self.over = None
            self.over = self.compute(self.run_dir, self.text, None)
            self._computed_for = self.text
        if not self.over.results:
            raise FigureInputError(f"{self.run_dir} has no complete checkpoint yet")
        count = len(self.over.results)
        if not -count <= self.checkpoint < count:
            raise FigureInputError(
                f"checkpoint {self.checkpoint} is out of range: the run has {count} checkpoints"
            )
        index = self.checkpoint = self.checkpoint % count
        result = self.over.results[index]
        step = self.over.checkpoints[index].step
        if self.view == "every head":
            fig = attention_figures.model_view(result, hide_special=self.hide_special)
        else:
            fig = attention_figures.attention_heatmap(
                result, self.layer, self.head, hide_special=self.hide_special
            )
        fig.update_layout(title_text=f"{fig.layout.title.text}, step {step:,}")
        return fig

    def _make_controls(self, ipywidgets) -> list[Any]:
        return [
            self._bind(ipywidgets.Text(value=self.text, description="sentence", continuous_update=False), "text"),
            self._bind(ipywidgets.ToggleButtons(options=self.VIEWS, value=self.view, description="view"), "view"),
            self._bind(ipywidgets.Checkbox(value=self.hide_special, description="hide [CLS]/[SEP]"), "hide_special"),
            self._bind(ipywidgets.IntSlider(value=0, min=0, max=0, description="checkpoint", continuous_update=False), "checkpoint"),
            self._bind(ipywidgets.IntSlider(value=self.layer, min=0, max=0, description="layer"), "layer"),
            self._bind(ipywidgets.IntSlider(value=self.head, min=0, max=0, description="head"), "head"),
        ]  # fmt: skip

    def _sync_widgets(self) -> None:
        if not self._controls or not self.over or not self.over.results:
            return
        count = len(self.over.results)
        slider = self._controls[3]
        slider.max = count - 1
        if -count <= self.checkpoint < count:  # an out-of-range request stays an error
            slider.value = self.checkpoint % count
            slider.description = f"step {self.over.checkpoints[self.checkpoint % count].step:,}"
        layers, heads = self.over.results[0].attentions.shape[:2]
        self._controls[4].max, self._controls[5].max = layers - 1, heads - 1
        _show_index(self._controls[4], self.layer)
        _show_index(self._controls[5], self.head)
        self._controls[4].disabled = self._controls[5].disabled = self.view == "every head"


def _default_fill_mask(source: Any, text: str, top_k: int) -> Any:
    from minibert.inspect.predictions import fill_mask

    return fill_mask(source, text, top_k=top_k)


class FillMaskExplorer(_Explorer):
    """Type a sentence with ``[MASK]`` in it; see the model's top guesses for each mask."""

    _settable = ("text", "top_k")

    def __init__(
        self,
        model_source: Any,
        text: str = "The cat sat on the [MASK].",
        *,
        top_k: int = 5,
        compute: Callable[[Any, str, int], Any] | None = None,
    ) -> None:
        super().__init__()
        self.model_source, self.text, self.top_k = model_source, text, top_k
        self.compute = compute or _default_fill_mask
        self.result: Any = None
        self.update()

    def _draw(self, changed: set[str]) -> go.Figure:
        if "[MASK]" not in self.text:
            raise FigureInputError("put [MASK] where the model should guess a word")
        self.result = None
        self.result = self.compute(self.model_source, self.text, self.top_k)
        return tables.fill_mask_chart(self.result)

    def _make_controls(self, ipywidgets) -> list[Any]:
        return [
            self._bind(ipywidgets.Text(value=self.text, description="sentence", continuous_update=False), "text"),
            self._bind(ipywidgets.IntSlider(value=self.top_k, min=1, max=20, description="top k", continuous_update=False), "top_k"),
        ]  # fmt: skip


def _default_masking_lab(source: Any, text: str, seed: int, mlm_probability: float) -> Any:
    from minibert.inspect.masking import masking_lab

    return masking_lab(source, text, seed=seed, mlm_probability=mlm_probability)


class MaskingLabExplorer(_Explorer):
    """BERT's masking on a sentence you type: change the seed or the rate, see what the model
    saw and guessed."""

    _settable = ("text", "seed", "mlm_probability")

    def __init__(
        self,
        model_source: Any,
        text: str = "The quick brown fox jumps over the lazy dog near the river bank.",
        *,
        seed: int = 0,
        mlm_probability: float = 0.15,
        compute: Callable[[Any, str, int, float], Any] | None = None,
    ) -> None:
        super().__init__()
        self.model_source, self.text = model_source, text
        self.seed, self.mlm_probability = seed, mlm_probability
        self.compute = compute or _default_masking_lab
        self.result: Any = None
        self.update()

    def _draw(self, changed: set[str]) -> go.Figure:
        if not 0.0 < self.mlm_probability <= 1.0:
            raise FigureInputError(
                f"the masking rate must be in (0, 1], got {self.mlm_probability}"
            )
        self.result = None
        self.result = self.compute(self.model_source, self.text, self.seed, self.mlm_probability)
        return tables.masking_lab_table(self.result)

    def _make_controls(self, ipywidgets) -> list[Any]:
        return [
            self._bind(ipywidgets.Text(value=self.text, description="sentence", continuous_update=False), "text"),
            self._bind(ipywidgets.IntText(value=self.seed, description="seed"), "seed"),
            self._bind(ipywidgets.FloatSlider(value=self.mlm_probability, min=0.05, max=0.5, step=0.05, description="rate", continuous_update=False), "mlm_probability"),
        ]  # fmt: skip


__all__ = [
    "AttentionExplorer",
    "CheckpointExplorer",
    "FillMaskExplorer",
    "MaskingLabExplorer",
]
