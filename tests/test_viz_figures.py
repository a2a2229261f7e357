"""minibert.viz figures: the traces, labels, sizes and notes each figure holds, on small
synthetic results shaped like minibert.inspect's (no model is run here).

The sample builders at the top are reused by tests/test_viz_browser.py and test_viz_widgets.py.
"""

from __future__ import annotations

import base64
import json
import math
import re
import struct
import zlib
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from minibert import viz
from minibert.inspect.attention import AttentionResult
from minibert.inspect.checkpoints import AttentionOverTraining, CheckpointInfo
from minibert.inspect.embeddings import EmbeddingProjection
from minibert.inspect.heads import AblationResult, AttentionComparison, HeadStats
from minibert.inspect.masking import MaskingLabResult
from minibert.inspect.predictions import FillMaskOverTraining, FillMaskResult, TokenGuess
from minibert.inspect.sources import ModelSource
from minibert.viz import FigureInputError
from minibert.viz._image import LEVELS, quantize

# --------------------------------------------------------------------------------------------
# Sample objects: inspect's own result classes, filled with small made-up numbers
# --------------------------------------------------------------------------------------------

TOKENS = ["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]", "it", "slept", "[SEP]"]
SOURCE = ModelSource(path=None, kind="memory", label="sample model")


def sample_attention(
    tokens: list[str] = TOKENS,
    layers: int = 2,
    heads: int = 3,
    *,
    seed: int = 0,
    truncated: bool = False,
) -> AttentionResult:
    """Random softmax rows, with head (0, 0) a previous-token head (an exact pattern to find)."""
    rng = np.random.default_rng(seed)
    count = len(tokens)
    scores = rng.normal(size=(layers, heads, count, count)) * 2.0
    weights = np.exp(scores)
    weights /= weights.sum(-1, keepdims=True)  # (L, nh, T, T) rows sum to 1
    previous = np.zeros((count, count))
    previous[0, 0] = 1.0
    previous[np.arange(1, count), np.arange(count - 1)] = 1.0
    weights[0, 0] = previous
    special = [t in ("[CLS]", "[SEP]") for t in tokens]
    second = tokens.index("[SEP]") + 1 if "[SEP]" in tokens else count
    return AttentionResult(
        tokens=list(tokens),
        word_ids=[None if s else i for i, s in enumerate(special)],
        words=[t for t, s in zip(tokens, special, strict=True) if not s],
        special_mask=special,
        token_type_ids=[0 if i < second else 1 for i in range(count)],
        attentions=weights.astype(np.float32),
        text="the cat sat on the mat",
        text_pair="it slept",
        source=SOURCE,
        truncated=truncated,
        num_tokens_before_truncation=count + 7 if truncated else count,
    )


def sample_over_training(steps=(10, 20, 30)) -> AttentionOverTraining:
    checkpoints = [
        CheckpointInfo(step=s, path=Path(f"/runs/x/checkpoints/step-{s:06d}"), tokens_seen=s * 100,
                       wall_time=s * 0.5)
        for s in steps
    ]  # fmt: skip
    results = [sample_attention(seed=i) for i in range(len(steps))]
    return AttentionOverTraining(checkpoints=checkpoints, results=results)


def sample_head_stats(layers=2, heads=3) -> HeadStats:
    names = ("previous-token", "next-token", "self", "delimiter", "broad", "mixed")
    classes = np.array([[names[(i * heads + j) % 6] for j in range(heads)] for i in range(layers)])
    rng = np.random.default_rng(1)
    metrics = {m: rng.random((layers, heads)) for m in ("entropy", "previous", "next", "sep")}
    return HeadStats(metrics, classes, {"previous": 0.5}, num_sentences=20, source=SOURCE)


def sample_ablation() -> AblationResult:
    scores = np.array([[0.50, 0.42, 0.55], [0.30, 0.49, 0.51]])
    rows = sorted(
        [
            (i, j, float(scores[i, j]), float(scores[i, j] - 0.5))
            for i in range(2)
            for j in range(3)
        ],
        key=lambda r: r[3],
    )
    return AblationResult(
        "masked-token accuracy", 0.5, scores, rows, ((1, 0), (0, 1)), 0.21, source=SOURCE
    )


def sample_fill_mask(words=("the", "mat", ",")) -> FillMaskResult:
    tokens = ["[CLS]", "the", "cat", "sat", "on", "the", "[MASK]", ".", "[SEP]"]
    guesses = [
        [TokenGuess(w, i, p) for i, (w, p) in enumerate(zip(words, (0.5, 0.3, 0.1), strict=True))]
    ]
    return FillMaskResult("the cat sat on the [MASK].", tokens, [6], guesses, SOURCE)


def sample_fill_mask_over_training() -> FillMaskOverTraining:
    over = sample_over_training()
    results = [
        sample_fill_mask(w)
        for w in (("the", ",", "."), ("the", "mat", ","), ("mat", "floor", "bed"))
    ]
    return FillMaskOverTraining(over.checkpoints, results)


def sample_masking_lab() -> MaskingLabResult:
    return MaskingLabResult(
        tokens=["[CLS]", "the", "cat", "sat", "down", "[SEP]"],
        inputs=["[CLS]", "the", "[MASK]", "sat", "blue", "[SEP]"],
        kind=["none", "none", "mask", "kept", "random", "none"],
        predictions=[None, None, "dog", "sat", "down", None],
        losses=[None, None, 2.5, 0.1, 0.7, None],
        correct=[None, None, False, True, True, None],
        accuracy_by_kind={"mask": 0.0, "random": 1.0, "kept": 1.0, "all": 2 / 3},
        count_by_kind={"mask": 1, "random": 1, "kept": 1, "all": 3},
        seed=0,
        source=SOURCE,
    )


def sample_projection() -> EmbeddingProjection:
    points = np.array([[0.0, 1.0], [1.0, 0.5], [np.nan, 0.0], [2.0, 2.0]])
    return EmbeddingProjection(
        ["cat", "dog", "car", "bus"], np.zeros((4, 8)), points, "pca", [0.6, 0.25]
    )


def sample_runs() -> dict:
    def run(scale, nan_at=None):
        records = []
        for step in range(1, 11):
            loss = 7.0 / (1 + scale * step)
            records.append(
                {
                    "step": step,
                    "split": "train",
                    "time": step * 40.0,
                    "tokens": step * 1000,
                    "loss": float("nan") if step == nan_at else loss,
                    "lr": 1e-3 * step / 10,
                }
            )
            if step % 5 == 0:
                records.append(
                    {
                        "step": step,
                        "split": "eval",
                        "time": step * 40.0,
                        "tokens": step * 1000,
                        "loss": loss + 0.2,
                        "mlm_accuracy": 0.1 * step,
                    }
                )
        return records  # fmt: skip

    return {"a": run(0.3), "b": run(0.5, nan_at=4)}


def every_figure() -> dict[str, go.Figure]:
    """One figure of every kind, from the samples above."""
    result = sample_attention(truncated=True)
    comparison = AttentionComparison(
        result, sample_attention(seed=3), np.random.rand(2, 3), np.random.rand(2, 3)
    )
    return {
        "attention_heatmap": viz.attention_heatmap(result, 0, 1),
        "model_view": viz.model_view(result),
        "head_view": viz.head_view(result, 1),
        "attention_over_training": viz.attention_over_training(sample_over_training(), 0, 0),
        "attention_over_training_all": viz.attention_over_training(sample_over_training()),
        "head_class_map": viz.head_class_map(sample_head_stats()),
        "ablation_chart": viz.ablation_chart(sample_ablation(), top=4),
        "attention_difference": viz.attention_difference(comparison),
        "training_curves": viz.training_curves(sample_runs(), y=["loss", "lr"], x="tokens"),
        "fill_mask_over_training": viz.fill_mask_over_training(sample_fill_mask_over_training()),
        "fill_mask_chart": viz.fill_mask_chart(sample_fill_mask()),
        "masking_lab_table": viz.masking_lab_table(sample_masking_lab()),
        "embedding_scatter": viz.embedding_scatter(
            sample_projection(), groups=["a", "a", "b", "b"]
        ),
        "confusion_matrix": viz.confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"]),
    }


def subtitle(fig: go.Figure) -> str:
    return fig.layout.title.subtitle.text or ""


def decode_png(uri: str) -> tuple[np.ndarray, np.ndarray]:
    """(palette indices (H, W), palette (N, 3)) of an 8-bit indexed PNG data URI."""
    data = base64.b64decode(uri.split(",", 1)[1])
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, chunks = 8, {}
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunks[kind] = chunks.get(kind, b"") + data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour_type) == (8, 3)
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(
        height, width + 1
    )
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:], np.frombuffer(chunks[b"PLTE"], dtype=np.uint8).reshape(-1, 3)


# --------------------------------------------------------------------------------------------
# Every figure
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def figures():
    return every_figure()


def test_every_figure_is_valid_plotly_and_names_its_kind(figures):
    for name, fig in figures.items():
        # Rebuilding with validation on catches a misspelled property in the fast figures.
        go.Figure(fig.to_plotly_json())
        kind = viz.figure_kind(fig)
        assert name.startswith(kind) and kind, (name, kind)
        assert fig.layout.title.text, name


def test_every_axis_of_every_chart_has_a_title(figures):
    for name, fig in figures.items():
        if name in ("head_view", "masking_lab_table"):
            continue  # token columns and a table: no numeric axes
        layout = fig.to_plotly_json()["layout"]
        axes = [k for k in layout if k.startswith(("xaxis", "yaxis"))]
        titled = [a for a in axes if (layout[a].get("title") or {}).get("text")]
        assert titled, f"{name}: no axis has a title"
        for axis in axes:
            # Shared axes of stacked panels carry one x title at the bottom.
            if axis.startswith("xaxis") and name in ("training_curves", "fill_mask_over_training"):
                continue
            if layout[axis].get("visible") is False:
                continue
            assert (layout[axis].get("title") or {}).get("text"), f"{name}: {axis} has no title"


def test_html_is_offline_with_plotlyjs_embedded(figures, tmp_path):
    for name, fig in figures.items():
        page = viz.to_html(fig, tmp_path / f"{name}.html").read_text(encoding="utf-8")
        # (plotly.js itself mentions cdn.plot.ly, for map tiles; what matters is what loads.)
        tags = re.findall(r"<script[^>]*>", page)
        assert tags and not [t for t in tags if "src=" in t], (name, tags)
        assert not re.search(r"require(js)?\.config|require\(\[", page), name
        assert not re.search(r"<link[^>]+href=[\"']https?:", page), name
        assert "Plotly.newPlot" in page and len(page) > 3_000_000  # plotly.js is in the page


def test_html_directory_mode_links_a_local_plotlyjs(tmp_path):
    fig = viz.confusion_matrix([[1, 0], [0, 1]], ["a", "b"])
    page = viz.to_html(fig, tmp_path / "cm.html", plotlyjs="directory")
    assert (tmp_path / "plotly.min.js").stat().st_size > 3_000_000
    text = page.read_text()
    sources = re.findall(r"<script[^>]*src=[\"']([^\"']+)", text)
    assert sources == ["plotly.min.js"] and len(text) < 100_000
    with pytest.raises(ValueError, match="never a CDN"):
        viz.to_html(fig, tmp_path / "x.html", plotlyjs="cdn")


def test_presentation_theme_has_larger_text(figures):
    previous = viz.use_theme("presentation")
    try:
        big = viz.attention_heatmap(sample_attention(), 0, 0)
        big_mv = viz.model_view(sample_attention())
    finally:
        viz.use_theme(previous)
    small = figures["attention_heatmap"]
    size = lambda fig: fig.layout.template.layout.font.size  # noqa: E731
    assert size(big) >= 20 > size(small)
    assert big.layout.title.font.size > small.layout.title.font.size
    assert big_mv.layout.width > figures["model_view"].layout.width
    assert viz.presentation_theme().layout.font.size >= 20
    with pytest.raises(ValueError, match="presentation"):
        viz.use_theme("huge")


# --------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------


def test_attention_heatmap_holds_one_head_with_token_labels():
    result = sample_attention()
    fig = viz.attention_heatmap(result, 1, 2)
    (trace,) = fig.data
    assert trace.type == "heatmap"
    np.testing.assert_allclose(np.asarray(trace.z), result.attentions[1, 2], atol=1e-4)
    # Numeric axes with token tick texts: both "the"s and both "[SEP]"s keep their own row.
    assert list(fig.layout.yaxis.ticktext) == TOKENS
    assert list(fig.layout.yaxis.tickvals) == list(range(len(TOKENS)))
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # query 0 at the top
    assert "query" in fig.layout.yaxis.title.text and "key" in fig.layout.xaxis.title.text
    assert trace.text[2][3] == "cat → sat"
    assert "layer 1 head 2" in fig.layout.title.text


def test_negative_indices_count_from_the_end():
    result = sample_attention()
    fig = viz.attention_heatmap(result, -1, -1)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), result.attentions[1, 2], atol=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda r: viz.attention_heatmap(r, 2, 0), r"layer 2 is out of range: this model has 2 layers \(layer 0 to 1"),
        (lambda r: viz.attention_heatmap(r, 0, 3), r"head 3 is out of range: this model has 3 heads"),
        (lambda r: viz.head_view(r, 5), r"layer 5 is out of range"),
        (lambda r: viz.head_view(r, 0, heads=[0, 9]), r"head 9 is out of range"),
        (lambda r: viz.attention_heatmap(r, 0.5, 0), r"layer must be an integer"),
        (lambda r: viz.attention_over_training(sample_over_training(), 0, 7), r"head 7 is out of range"),
        (lambda r: viz.attention_over_training(sample_over_training(), 0), r"give both layer and head"),
    ],
)  # fmt: skip
def test_bad_indices_raise_a_clear_error(call, message):
    with pytest.raises(FigureInputError, match=message):
        call(sample_attention())


def test_hide_special_drops_cls_and_sep_and_says_so():
    result = sample_attention()
    fig = viz.attention_heatmap(result, 0, 1, hide_special=True)
    kept = [i for i, t in enumerate(TOKENS) if t not in ("[CLS]", "[SEP]")]
    assert np.asarray(fig.data[0].z).shape == (len(kept), len(kept))
    assert "[CLS]" not in fig.layout.xaxis.ticktext
    np.testing.assert_allclose(
        np.asarray(fig.data[0].z), result.attentions[0, 1][np.ix_(kept, kept)], atol=1e-4
    )
    assert "hidden" in subtitle(fig)
    only_special = sample_attention(["[CLS]", "[SEP]"])
    with pytest.raises(FigureInputError, match="every token is a special token"):
        viz.model_view(only_special, hide_special=True)


def test_truncated_text_is_stated_under_the_title(figures):
    note = subtitle(figures["attention_heatmap"])
    assert f"text truncated: {len(TOKENS)} of {len(TOKENS) + 7} tokens" in note
    for name in ("model_view", "head_view"):
        assert "truncated" in subtitle(figures[name])
    assert "truncated" not in subtitle(viz.model_view(sample_attention()))


def test_long_texts_label_every_nth_token_so_labels_do_not_overlap():
    tokens = ["[CLS]"] + [f"w{i}" for i in range(200)] + ["[SEP]"]
    fig = viz.attention_heatmap(sample_attention(tokens, 1, 1), 0, 0)
    ticks = list(fig.layout.xaxis.tickvals)
    assert 10 < len(ticks) < len(tokens)
    assert fig.layout.xaxis.ticktext[1] == tokens[ticks[1]]


def test_model_view_is_one_image_of_every_head():
    result = sample_attention(layers=2, heads=3)
    fig = viz.model_view(result)
    image, picker, colour_bar = fig.data
    assert (image.type, picker.type, colour_bar.type) == ("image", "heatmap", "scatter")
    levels, palette = decode_png(image.source)
    assert len(palette) == LEVELS + 1 and tuple(palette[LEVELS]) == (255, 255, 255)
    # Find head (l, h)'s map in the image and compare its pixels with the quantized weights.
    centres_x, centres_y = list(fig.layout.xaxis.tickvals), list(fig.layout.yaxis.tickvals)
    assert len(centres_x) == 3 and len(centres_y) == 2
    top = float(result.attentions.max())
    count = len(TOKENS)
    pitch = round(centres_x[1] - centres_x[0])
    cell = levels.shape[1] - 2 * pitch  # three maps: width = 3 * cell + 2 * gap
    scale = cell // count
    assert cell == scale * count and scale >= 1
    for layer in range(2):
        for head in range(3):
            x0, y0 = int(head * pitch), int(layer * pitch)
            block = levels[y0 : y0 + cell : scale, x0 : x0 + cell : scale]
            np.testing.assert_array_equal(block, quantize(result.attentions[layer, head], top))
    # Hover: one text per head, naming what it does; customdata = (layer, head) for clicks.
    assert np.asarray(picker.text).shape == (2, 3)
    assert "previous token 1.00" in picker.text[0][0]  # head (0, 0) is the previous-token head
    assert "entropy 0.00 nats" in picker.text[0][0]
    assert tuple(np.asarray(picker.customdata)[1, 2]) == (1, 2)
    assert colour_bar.marker.cmax == pytest.approx(top)


def test_model_view_pools_long_texts_keeping_the_strongest_weight():
    tokens = ["[CLS]"] + [f"w{i}" for i in range(126)] + ["[SEP]"]  # 128 tokens
    result = sample_attention(tokens, 1, 1)
    result.attentions[0, 0] = 0.0
    result.attentions[0, 0, 40, 41] = 1.0  # one strong weight, alone in its 2 x 2 block
    fig = viz.model_view(result)
    levels, _ = decode_png(fig.data[0].source)
    assert levels.shape == (64, 64)  # 128 tokens -> 64 blocks of 2 x 2, one pixel each
    assert levels[20, 20] == LEVELS - 1 and (np.delete(levels.ravel(), 20 * 64 + 20) == 0).all()
    assert "2 x 2 token blocks, largest weight shown" in subtitle(fig)
    assert "token blocks" not in subtitle(viz.model_view(sample_attention()))


def test_model_view_of_72_heads_by_128_tokens_stays_small():
    tokens = ["[CLS]"] + [f"w{i % 50}" for i in range(126)] + ["[SEP]"]
    fig = viz.model_view(sample_attention(tokens, 6, 12))
    assert len(fig.data) == 3  # not 72 heatmaps
    payload = len(fig.to_json())
    # Random weights compress worse than real attention (real MiniLM: about 120 KB).
    assert payload < 2_000_000, payload


def test_head_view_draws_each_weight_above_the_threshold_once():
    result = sample_attention()
    fig = viz.head_view(result, 1, min_weight=0.1)
    lines = [t for t in fig.data if t.mode == "lines"]
    heads = {t.legendgroup for t in lines}
    assert heads == {"head 0", "head 1", "head 2"}
    drawn = 0
    for trace in lines:
        ys = np.asarray(trace.y, dtype=float).reshape(-1, 3)
        head = int(trace.legendgroup.split()[1])
        for query, key, gap in ys:
            assert math.isnan(gap)
            assert result.attentions[1, head, int(-query), int(-key)] >= 0.1
        drawn += len(ys)
    assert drawn == int((result.attentions[1] >= 0.1).sum())
    # Stronger weights are drawn more opaque.
    alpha = lambda t: float(t.line.color.rsplit(",", 1)[1].rstrip(")"))  # noqa: E731
    head0 = [t for t in lines if t.legendgroup == "head 0"]
    assert [alpha(t) for t in head0] == sorted(alpha(t) for t in head0)
    assert sum(t.showlegend for t in lines) == 3  # one legend entry per head


def test_head_view_focus_slider_shows_one_query_tokens_lines():
    result = sample_attention()
    fig = viz.head_view(result, 0, heads=[0])  # head 0 of layer 0: the previous-token head
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["all", *TOKENS]
    query = 3  # "sat" attends to "cat" (position 2) with weight 1
    update, targets = slider.steps[query + 1].args
    ys = [np.asarray(y, dtype=float) for y in update["y"]]
    drawn = [y.reshape(-1, 3)[:, :2] for y in ys[:-1] if len(y)]
    assert len(drawn) == 1 and drawn[0].tolist() == [[-3.0, -2.0]]
    assert ys[-1].tolist() == [-3.0]  # the focus marker moves to the query's row
    assert targets[-1] == len(fig.data) - 1
    hover = [t for t in fig.data if t.meta == "query-tokens"][0].hovertext[query]
    assert hover.startswith("<b>sat</b>") and "cat 1.00" in hover


def test_attention_over_training_slider_steps_through_checkpoints():
    over = sample_over_training()
    fig = viz.attention_over_training(over, 1, 2)
    (slider,) = fig.layout.sliders
    assert [s.label for s in slider.steps] == ["10", "20", "30"]
    assert slider.active == 2
    for step, result in zip(slider.steps, over.results, strict=True):
        np.testing.assert_allclose(
            np.asarray(step.args[0]["z"][0]), result.attentions[1, 2], atol=1e-4
        )
    # One colour scale for every step.
    top = max(float(r.attentions[1, 2].max()) for r in over.results)
    assert fig.data[0].zmax == pytest.approx(top, abs=1e-6)

    every = viz.attention_over_training(over)
    sources = [s.args[0]["source"][0] for s in every.layout.sliders[0].steps]
    assert len(set(sources)) == 3 and all(s.startswith("data:image/png;base64,") for s in sources)


def test_attention_over_training_rejects_empty_and_mismatched_runs():
    over = sample_over_training()
    with pytest.raises(FigureInputError, match="no complete checkpoint"):
        viz.attention_over_training(AttentionOverTraining([], []))
    over.results[1] = sample_attention(TOKENS[:-1] + ["[PAD]"])
    with pytest.raises(FigureInputError, match="step 20 tokenised the text differently"):
        viz.attention_over_training(over)


# --------------------------------------------------------------------------------------------
# Heads
# --------------------------------------------------------------------------------------------


def test_head_class_map_colours_each_class_and_explains_on_hover():
    stats = sample_head_stats()
    fig = viz.head_class_map(stats)
    heatmap = fig.data[0]
    names = list(heatmap.colorbar.ticktext)
    assert sorted(names) == sorted(set(stats.classes.flat))
    z = np.asarray(heatmap.z)
    for (layer, head), name in np.ndenumerate(stats.classes):
        assert names[z[layer, head]] == name
    assert "entropy" in heatmap.hovertemplate
    cells = fig.data[1]
    assert list(cells.text[:2]) == ["prev", "next"]
    assert fig.layout.yaxis.autorange == "reversed"
    assert "20 sentences" in fig.layout.title.text


def test_ablation_chart_shows_changes_and_the_costliest_heads():
    fig = viz.ablation_chart(sample_ablation(), top=3)
    heatmap, bars = fig.data
    np.testing.assert_allclose(
        np.asarray(heatmap.z), (sample_ablation().scores - 0.5) * 100, atol=1e-9
    )
    assert heatmap.zmid == 0
    assert list(bars.y) == ["L1 H0", "L0 H1", "L1 H1"]
    assert list(bars.x) == pytest.approx([-20.0, -8.0, -1.0])
    assert "percentage points" in fig.layout.xaxis2.title.text
    assert "L1 H0, L0 H1 off together: 21.00 (-29.00)" in subtitle(fig)
    assert "⚠" not in subtitle(fig)
    assert "baseline 50.00%" in fig.layout.title.text


def test_ablation_chart_of_a_loss_ranks_the_largest_rise_first():
    scores = np.array([[2.0, 2.5, 1.9], [3.0, 2.1, 2.0]])
    loss = AblationResult("masked-token loss", 2.0, scores, [], higher_is_better=False)
    fig = viz.ablation_chart(loss, top=2)
    assert list(fig.data[1].y) == ["L1 H0", "L0 H1"]  # +1.0, +0.5
    assert "percentage" not in fig.layout.xaxis2.title.text


def test_ablation_chart_notes_nan_scores():
    ablation = sample_ablation()
    ablation.scores = ablation.scores.copy()
    ablation.scores[0, 2] = np.nan
    fig = viz.ablation_chart(ablation)
    assert "1 score value(s) are NaN" in subtitle(fig)
    assert "L0 H2" not in list(fig.data[1].y)


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def test_training_curves_one_line_per_run_and_split():
    fig = viz.training_curves(sample_runs(), y="loss")
    names = sorted(t.name for t in fig.data)
    assert names == ["a · eval", "a · train", "b · eval", "b · train"]
    a_train = next(t for t in fig.data if t.name == "a · train")
    assert list(a_train.x) == list(range(1, 11)) and a_train.line.dash == "solid"
    assert next(t for t in fig.data if t.name == "a · eval").line.dash == "dash"
    assert fig.layout.yaxis.title.text == "loss (nats per token)"
    assert fig.layout.xaxis.title.text == "training step"


def test_training_curves_skip_nan_and_say_so():
    fig = viz.training_curves(sample_runs(), y="loss")
    b_train = next(t for t in fig.data if t.name == "b · train")
    assert 4 not in list(b_train.x) and len(b_train.x) == 9
    assert "b: 1 missing or NaN 'loss' value(s) skipped" in subtitle(fig)


def test_training_curves_x_in_time_or_tokens_and_log_scale():
    fig = viz.training_curves(sample_runs(), y="loss", x="time", split="train", log_y=True)
    assert fig.layout.xaxis.title.text == "training time (min)"  # 400 s -> minutes
    assert list(fig.data[0].x)[0] == pytest.approx(40 / 60)
    assert fig.layout.yaxis.type == "log"
    assert {t.name.split(" · ")[1] for t in fig.data} == {"train"}
    fig = viz.training_curves(sample_runs()["a"], y=["loss", "mlm_accuracy"], x="tokens")
    assert fig.layout.xaxis2.title.text == "tokens seen"
    assert fig.layout.yaxis2.title.text == "MLM accuracy (fraction)"
    assert "run has no 'mlm_accuracy'" not in subtitle(fig)


def test_training_curves_bad_input():
    with pytest.raises(
        FigureInputError, match="no run has a 'acc' metric; the records have: .*loss"
    ):
        viz.training_curves(sample_runs(), y="acc")
    with pytest.raises(FigureInputError, match="x must be one of"):
        viz.training_curves(sample_runs(), x="epochs")
    fig = viz.training_curves({"a": sample_runs()["a"], "empty": []})
    assert "empty: no metrics yet" in subtitle(fig)


def test_fill_mask_over_training_is_a_table_of_guesses_per_step():
    fig = viz.fill_mask_over_training(sample_fill_mask_over_training())
    (heatmap,) = fig.data
    words = np.asarray(heatmap.text)
    assert words.shape == (3, 3)  # rank x checkpoint
    assert list(words[0]) == ["the", "the", "mat"]
    assert list(fig.layout.xaxis.ticktext) == ["10", "20", "30"]
    assert np.asarray(heatmap.z)[1, 2] == pytest.approx(0.3)
    assert "___" in fig.layout.annotations[0].text
    no_mask = sample_fill_mask_over_training()
    for r in no_mask.results:
        r.mask_positions = []
    with pytest.raises(FigureInputError, match="no \\[MASK\\] token"):
        viz.fill_mask_over_training(no_mask)


# --------------------------------------------------------------------------------------------
# Tables and scatter
# --------------------------------------------------------------------------------------------


def test_masking_lab_table_rows_coloured_by_kind():
    fig = viz.masking_lab_table(sample_masking_lab())
    (table,) = fig.data
    columns = table.cells.values
    assert list(columns[2]) == ["[CLS]", "the", "[MASK]", "sat", "blue", "[SEP]"]
    assert list(columns[3])[2:5] == ["[MASK]", "kept as is", "random token"]
    assert list(columns[6])[2:5] == ["✗", "✓", "✓"]
    fills = table.cells.fill.color[0]
    assert fills[0] == "#FFFFFF" and len({fills[2], fills[3], fills[4]}) == 3
    assert (
        "[MASK] 0% of 1" in fig.layout.title.text
        and "all selected 67% of 3" in fig.layout.title.text
    )
    assert "seed 0, 15% of tokens selected" in subtitle(fig)


def test_embedding_scatter_groups_and_drops_nan_points_with_a_note():
    fig = viz.embedding_scatter(sample_projection(), groups=["a", "a", "b", "b"])
    assert [t.name for t in fig.data] == ["a", "b"]
    assert list(fig.data[1].text) == ["bus"]  # "car" has a NaN coordinate
    assert "1 point(s) with NaN" in subtitle(fig)
    assert fig.layout.xaxis.title.text == "PCA 1 (no unit, 60% of variance)"
    with pytest.raises(FigureInputError, match="groups has 1 entries for 4 points"):
        viz.embedding_scatter(sample_projection(), groups=["a"])


def test_confusion_matrix_counts_and_normalised_rows():
    fig = viz.confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"])
    assert np.asarray(fig.data[0].z).tolist() == [[5, 1], [2, 7]]
    assert "accuracy 80.0% of 15" in fig.layout.title.text
    normalised = viz.confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"], normalize=True)
    np.testing.assert_allclose(np.asarray(normalised.data[0].z).sum(axis=1), [1, 1])
    assert list(fig.layout.xaxis.ticktext) == ["neg", "pos"]
    with pytest.raises(FigureInputError, match="3 labels for a 2-class matrix"):
        viz.confusion_matrix([[1, 0], [0, 1]], ["a", "b", "c"])


# --------------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------------


def test_head_view_page_carries_the_hover_script_and_others_do_not(figures):
    page = viz.to_html(figures["head_view"])
    assert "minibert head view: hover a query token" in page
    assert "minibert head view" not in viz.to_html(figures["confusion_matrix"])


def test_save_image_without_kaleido_says_what_to_install(monkeypatch, tmp_path):
    import builtins

    real_import = builtins.__import__

    def no_kaleido(name, *args, **kwargs):
        if name == "kaleido":
            raise ImportError("no kaleido")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kaleido)
    with pytest.raises(viz.ImageExportError, match="pip install kaleido"):
        viz.save_image(viz.confusion_matrix([[1]], ["a"]), tmp_path / "cm.png")
    with pytest.raises(ValueError, match="image format"):
        viz.save_image(viz.confusion_matrix([[1]], ["a"]), tmp_path / "cm.txt")


def test_save_image_without_a_browser_says_so(monkeypatch, tmp_path):
    pytest.importorskip("kaleido")
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    with pytest.raises(viz.ImageExportError, match="no Chrome or Chromium"):
        viz.save_image(viz.confusion_matrix([[1]], ["a"]), tmp_path / "cm.png")


@pytest.mark.slow
def test_save_image_writes_png_and_svg_with_kaleido(tmp_path):
    pytest.importorskip("kaleido")
    from minibert.viz.export import _browser_for_kaleido

    if _browser_for_kaleido() is None:
        pytest.skip("kaleido needs Chrome or Chromium (apt-get install chromium)")
    fig = viz.confusion_matrix([[5, 1], [2, 7]], ["neg", "pos"])
    png = viz.save_image(fig, tmp_path / "cm.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = viz.save_image(fig, tmp_path / "cm.svg")
    assert "<svg" in svg.read_text()[:500]


def test_setup_notebook_picks_an_offline_renderer(monkeypatch):
    monkeypatch.setattr(pio.renderers, "default", "notebook_connected")
    from minibert.viz.export import ensure_offline_renderer

    ensure_offline_renderer()
    assert pio.renderers.default == "plotly_mimetype"
    assert viz.setup_notebook() == "plotly_mimetype"
    assert viz.setup_notebook("notebook") == "notebook"
    with pytest.raises(ValueError, match="internet"):
        viz.setup_notebook("notebook_connected")
    # What the offline renderer emits: the figure as JSON, no script and no URL.
    bundle = pio.renderers["plotly_mimetype"].to_mimebundle(
        viz.confusion_matrix([[1]], ["a"]).to_dict()
    )
    assert list(bundle) == ["application/vnd.plotly.v1+json"]
    assert "http" not in json.dumps(
        bundle["application/vnd.plotly.v1+json"]["layout"].get("template", {})
    )
