"""minibert.viz figures in notebooks, offline.

1. In a real kernel (nbclient): importing minibert.viz leaves an offline renderer in place even
   when the user's plotly setting is a CDN one (``PLOTLY_RENDERER=notebook_connected``), and a
   displayed figure is the ``application/vnd.plotly.v1+json`` bundle only: no script, no URL.
2. In JupyterLab 4, in headless Chromium with every non-local request blocked: that output is
   drawn by the plotly.js inside JupyterLab's ``jupyterlab-plotly`` extension. (Notebook 7 uses
   the same extension; VS Code draws the same mimetype with its own bundled plotly.js.)
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


@contextlib.contextmanager
def jupyterlab(root: Path, home: Path):
    """JupyterLab on 127.0.0.1 with no token, its settings in ``home``; yields the URL."""
    port = _free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(home / "config"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "JUPYTER_DATA_DIR": str(home / "data"),
        "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
    }
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
        "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=", "--ServerApp.password=",
        f"--ServerApp.root_dir={root}", "--ServerApp.open_browser=False",
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
                pytest.fail("jupyter lab exited at start")
            time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not start in 90 s")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.slow
def test_jupyterlab_draws_the_figure_offline(executed, tmp_path):
    import browser_support

    reason = browser_support.skip_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("jupyterlab")
    with (
        jupyterlab(executed.parent, tmp_path) as url,
        browser_support.launch_chromium() as browser,
        browser_support.open_offline_page(browser, width=1280, height=900) as offline,
    ):
        offline.page.goto(f"{url}/lab/tree/{executed.name}", wait_until="domcontentloaded")
        offline.page.wait_for_selector(".jp-OutputArea .js-plotly-plot .main-svg", timeout=120_000)
        drawn = offline.page.evaluate(
            "() => document.querySelectorAll('.jp-OutputArea .heatmaplayer image').length"
        )
        offline.screenshot("viz/jupyterlab")
        assert drawn >= 1
        # JupyterLab itself may try the internet (e.g. its news feed); plotly must not.
        plotly_requests = [u for u in offline.blocked_requests if "plot" in u]
        assert not plotly_requests, plotly_requests
        plotly_errors = [e for e in offline.console_errors if "plotly" in e.lower()]
        assert not plotly_errors, plotly_errors
