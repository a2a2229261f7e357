"""minibert.viz pages in a real browser, offline: headless Chromium opens the HTML that
``viz.to_html`` writes, with every non-local request blocked (tests/browser_support.py), and
each figure must draw something, with no console error and no request leaving the machine.

Screenshots of every figure kind go to test-artifacts/viz/ for a person to look at.
"""

from __future__ import annotations

import time

import browser_support
import pytest
from test_viz_figures import every_figure, sample_attention

from minibert import viz

# Marks plotly draws for data, per trace type: heatmaps and images are <image> elements, lines
# are path.js-line, bars path inside .point, text traces .textpoint, tables .cell-text.
DRAWN = (
    ".heatmaplayer image, .imagelayer image, "
    ".scatterlayer path.js-line, .barlayer .point path, .scatterlayer .textpoint, "
    ".scatterlayer .point, .table .cell-text"
)
offline_browser = browser_support.offline_browser  # fixtures
offline_page = browser_support.offline_page
LOAD_TIMEOUT_MS = 60_000  # plotly.js is 4.8 MB of script; a loaded 2-core CI box parses slowly


def _open(offline_page, path) -> float:
    """Open ``path``, wait until plotly has drawn, return the seconds it took."""
    start = time.perf_counter()
    offline_page.page.goto(path.as_uri(), wait_until="load")
    offline_page.page.wait_for_selector(".main-svg", timeout=LOAD_TIMEOUT_MS)
    return time.perf_counter() - start


def _drawn(page) -> int:
    """How many data marks plotly drew (an <image> counts only when it holds a picture)."""
    return page.evaluate(
        f"""() => Array.from(document.querySelectorAll({DRAWN!r}))
                       .filter(e => e.tagName !== 'image'
                                    || (e.getAttribute('href') || '').length > 100).length"""
    )


@pytest.mark.slow
def test_every_figure_draws_offline_without_errors(offline_page, tmp_path):
    # plotly.js beside the pages ("directory") rather than in each: one 4.8 MB parse to cache,
    # not fourteen. The embedded default is what the other tests here open.
    problems = {}
    for name, fig in every_figure().items():
        offline_page.reset()
        path = viz.to_html(fig, tmp_path / f"{name}.html", plotlyjs="directory")
        _open(offline_page, path)
        drawn = _drawn(offline_page.page)
        offline_page.screenshot(f"viz/{name}")
        if not drawn or offline_page.problems():
            problems[name] = (drawn, offline_page.problems())
    assert not problems, problems


def test_model_view_image_is_drawn_at_its_size(offline_page, tmp_path):
    tokens = ["[CLS]"] + [f"w{i % 40}" for i in range(126)] + ["[SEP]"]
    fig = viz.model_view(sample_attention(tokens, 6, 12))
    seconds = _open(offline_page, viz.to_html(fig, tmp_path / "model_view.html"))
    box = offline_page.page.evaluate(
        """() => { const r = document.querySelector('.imagelayer image').getBoundingClientRect();
                   return [r.width, r.height]; }"""
    )
    # 12 heads across, 6 layers down: the drawn image keeps the grid's 2:1 shape.
    assert box[0] > 600 and box[0] / box[1] == pytest.approx(2.0, rel=0.05)
    offline_page.assert_clean()
    offline_page.screenshot("viz/model_view_72_heads")
    assert seconds < 30, f"the model view page took {seconds:.1f} s to draw"


def test_head_view_hover_shows_one_query_tokens_lines(offline_page, tmp_path):
    result = sample_attention()
    fig = viz.head_view(result, 0, heads=[0])  # layer 0 head 0: every token -> previous token
    _open(offline_page, viz.to_html(fig, tmp_path / "head_view.html"))
    page = offline_page.page
    lines_before = page.evaluate(
        "() => document.querySelectorAll('.scatterlayer path.js-line').length"
    )
    # Hover the query token "sat" (position 3): its point sits at the text's right end.
    text = page.locator(".scatterlayer .trace").nth(-3).locator(".textpoint").nth(3)
    box = text.bounding_box()
    page.mouse.move(box["x"] + box["width"] + 2, box["y"] + box["height"] / 2)
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot').layout.sliders[0].active === 4",
        timeout=10_000,
    )
    drawn = page.evaluate(
        """() => { const gd = document.querySelector('.js-plotly-plot');
                   return gd.data.filter(t => t.mode === 'lines')
                                 .map(t => Array.from(t.y).filter(v => v !== null && !isNaN(v))); }"""
    )
    assert [pair for pair in drawn if pair] == [[-3, -2]]  # sat -> cat, nothing else
    offline_page.screenshot("viz/head_view_hover")
    page.mouse.move(5, 5)
    page.wait_for_function(
        "() => document.querySelector('.js-plotly-plot').layout.sliders[0].active === 0",
        timeout=10_000,
    )
    assert lines_before > 0
    offline_page.assert_clean()


def test_a_cdn_page_is_caught_by_the_offline_browser(offline_page, tmp_path):
    """The check can fail: plotly's own CDN mode leaves a blank page and a blocked request."""
    fig = viz.confusion_matrix([[1, 2], [3, 4]], ["a", "b"])
    path = tmp_path / "cdn.html"
    fig.write_html(path, include_plotlyjs="cdn")
    offline_page.page.goto(path.as_uri(), wait_until="load")
    offline_page.page.wait_for_timeout(500)
    assert any("cdn.plot.ly" in url for url in offline_page.blocked_requests)
    assert _drawn(offline_page.page) == 0


def test_checkpoint_slider_swaps_the_model_view_picture(offline_page, tmp_path):
    from test_viz_figures import sample_over_training

    fig = viz.attention_over_training(sample_over_training())
    _open(offline_page, viz.to_html(fig, tmp_path / "over.html"))
    page = offline_page.page
    href = "() => document.querySelector('.imagelayer image').getAttribute('href')"
    last = page.evaluate(href)
    # What a click on the slider's first step does: apply that step's restyle.
    page.evaluate(
        """() => { const gd = document.querySelector('.js-plotly-plot');
                   const step = gd.layout.sliders[0].steps[0];
                   return Plotly.restyle(gd, step.args[0], step.args[1]); }"""
    )
    first = page.evaluate(href)
    assert first != last and first == fig.layout.sliders[0].steps[0].args[0]["source"][0]
    hover = page.evaluate("() => document.querySelector('.js-plotly-plot').data[1].text[0][0]")
    expected = fig.layout.sliders[0].steps[0].args[0]["text"][1][1][2]
    assert hover == expected and expected != fig.data[1].text[1][2]  # step 10's head summary
    offline_page.assert_clean()
