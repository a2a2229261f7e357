"""The dashboard in a real browser: ``minibert dashboard`` on a free port, headless Chromium
(Playwright driving Debian's ``chromium``) with every non-local request blocked.

Checks what only a browser shows: every page draws its charts, the console has no errors, no
request leaves the machine, typing a sentence updates the attention view, and the Runs page
picks up metric lines appended while it is open. Screenshots of each page go to
``test-artifacts/dashboard/`` (gitignored) for a person to look at.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_support import launch_chromium, open_offline_page

from minibert.dashboard import launch

LOAD_TIMEOUT_MS = 90_000  # the first page load imports torch and transformers in the server
PAGES = {  # page -> url path (st.navigation names file pages after the file)
    "runs": "",
    "attention": "attention",
    "predictions": "predictions",
    "finetuning": "finetuning",
    "data": "data",
}
PAGE_TITLES = {
    "runs": "Runs",
    "attention": "Attention",
    "predictions": "Predictions",
    "finetuning": "Fine-tuning",
    "data": "Data",
}
CHART = "[data-testid='stPlotlyChart'] .main-svg, [data-testid='stVegaLiteChart'] svg.marks"


@pytest.fixture(scope="module")
def dashboard(dashboard_runs, cache_dir):
    """The real ``minibert dashboard`` verb in a child process, stopped after the module."""
    os.utime(dashboard_runs / "live" / "metrics.jsonl")
    port = launch.free_port(start_at=8800)
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(launch.__file__).parents[2]),
        "MINIBERT_CACHE": str(cache_dir),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "minibert", "dashboard", "--runs", str(dashboard_runs),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    url = None
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and url is None:
        line = process.stdout.readline()
        if not line:
            break
        if "http://" in line:
            url = line.split(" at ", 1)[1].split()[0]
    if url is None:
        process.kill()
        pytest.fail("minibert dashboard printed no URL")
    yield url
    process.send_signal(2)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser_page(dashboard):
    """One offline page for the module (the session keeps its state between pages)."""
    with launch_chromium() as browser, open_offline_page(browser, width=1280) as page:
        page.failed_responses = []  # a console "404" names no URL; this list does
        page.page.on(
            "response",
            lambda r: (
                page.failed_responses.append(f"{r.status} {r.url}") if r.status >= 400 else None
            ),
        )
        yield page


def _open(session, dashboard: str, page: str) -> None:
    """Open the app at its root and click through to ``page`` in the sidebar, as a user does.

    (Opening a deep link such as /attention directly makes Streamlit's frontend probe
    /attention/_stcore/health first, a harmless 404 that would show up as a console error.)
    """
    session.reset()
    session.failed_responses.clear()
    session.page.goto(dashboard, wait_until="domcontentloaded")
    session.page.wait_for_selector("h1", timeout=LOAD_TIMEOUT_MS)
    _settle(session.page, LOAD_TIMEOUT_MS)
    if PAGES[page]:
        session.page.locator("[data-testid='stSidebarNav'] a", has_text=PAGE_TITLES[page]).click()
        session.page.wait_for_url(f"**/{PAGES[page]}")
        try:
            session.page.get_by_role("heading", name=PAGE_TITLES[page], exact=True).wait_for(
                timeout=LOAD_TIMEOUT_MS
            )
        except Exception:
            session.screenshot(f"dashboard/failed-{page}")
            raise
        _settle(session.page, LOAD_TIMEOUT_MS)


def _settle(page, timeout_ms: int = 60_000) -> None:
    """Wait until Streamlit has finished running the script (its status widget goes away)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms
    )
    page.wait_for_timeout(500)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the select box labelled ``label``."""
    page.locator("[data-testid='stSelectbox']", has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()
    _settle(page)


def _screenshot(session, name: str) -> None:
    """Two PNGs: the first screen at 1280 x 800 (what a projector shows) and the whole page
    (Streamlit scrolls inside its main container, so the viewport is grown to fit it)."""
    page = session.page
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(300)
    session.screenshot(f"dashboard/{name}-screen", full_page=False)
    height = page.evaluate(
        '() => Math.max(...[...document.querySelectorAll(\'[data-testid="stMain"], '
        '[data-testid="stAppViewContainer"], section\')].map(e => e.scrollHeight), 800)'
    )
    page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 6000)})
    page.wait_for_timeout(800)  # charts redraw at the new size
    session.screenshot(f"dashboard/{name}", full_page=False)
    page.set_viewport_size({"width": 1280, "height": 800})


def _no_errors(session, page_name: str) -> None:
    errors = session.page.locator(
        "[data-testid='stException'], [data-testid='stAlertContentError']"
    )
    assert errors.count() == 0, (page_name, errors.all_inner_texts())
    assert not session.problems(), (page_name, session.problems(), session.failed_responses)


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_draws_its_charts_offline(browser_page, dashboard, page):
    _open(browser_page, dashboard, page)
    if page == "data":
        _choose(browser_page.page, "Pretraining run", "micro")
    browser_page.page.wait_for_selector(CHART, timeout=LOAD_TIMEOUT_MS, state="attached")
    _settle(browser_page.page)
    _screenshot(browser_page, page)
    charts = browser_page.page.locator(CHART)
    assert charts.count() >= 1
    _no_errors(browser_page, page)


def test_presentation_mode_screenshot(browser_page, dashboard):
    _open(browser_page, dashboard, "attention")
    browser_page.page.get_by_text("Presentation mode").click()
    # The rerun that adds the larger CSS takes a moment to start: wait for its effect.
    browser_page.page.wait_for_function(
        "() => getComputedStyle(document.documentElement).fontSize === '24px'", timeout=60_000
    )
    _settle(browser_page.page)
    _screenshot(browser_page, "attention-presentation")
    browser_page.page.get_by_text("Presentation mode").click()
    _settle(browser_page.page)
    _no_errors(browser_page, "presentation")


def test_typing_a_sentence_updates_the_attention_view(browser_page, dashboard):
    _open(browser_page, dashboard, "attention")
    page = browser_page.page
    page.wait_for_selector(CHART, timeout=LOAD_TIMEOUT_MS, state="attached")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    assert "government" not in chart.inner_text()
    box = page.get_by_role("textbox", name="Sentence")
    box.fill("The government said on Monday that the police were there.")
    box.press("Control+Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
        ".some(c => c.innerText.includes('government'))",
        timeout=60_000,
    )
    _settle(page)
    _screenshot(browser_page, "attention-typed")
    _no_errors(browser_page, "attention typing")


def test_runs_page_picks_up_appended_lines(browser_page, dashboard, dashboard_runs):
    metrics = dashboard_runs / "live" / "metrics.jsonl"
    os.utime(metrics)
    _open(browser_page, dashboard, "runs")
    page = browser_page.page
    page.wait_for_selector(CHART, timeout=LOAD_TIMEOUT_MS, state="attached")
    count = "() => { const d = document.querySelector('.js-plotly-plot'); " \
            "return d && d.data ? d.data.reduce((n, t) => n + (t.x ? t.x.length : 0), 0) : 0; }"  # fmt: skip
    before = page.evaluate(count)
    assert before >= 10
    # A newline ends whatever the last line was (the fixture's partial line: then skipped as
    # not JSON), then ten new lines. (The AppTest test checks how a partial line is completed.)
    with open(metrics, "a", encoding="utf-8") as handle:
        handle.write("\n")
        for step in range(12, 22):
            record = {"step": step, "split": "train", "time": step * 0.5, "wall_time": time.time(),
                      "tokens": 100 * step, "loss": 5.0 - step * 0.05, "lr": 1e-3}  # fmt: skip
            handle.write(json.dumps(record) + "\n")
    page.wait_for_function(f"() => ({count})() >= {before + 10}", timeout=30_000)
    _screenshot(browser_page, "runs-live")
    _no_errors(browser_page, "runs live")
