"""Starting the Streamlit dashboard as a child process, offline and bound to this machine.

``minibert dashboard`` and ``minibert demo --dashboard`` both come through :func:`start`:

* ``streamlit run minibert/dashboard/app.py`` with the settings passed as flags, so no
  ``~/.streamlit/config.toml`` of the user's can turn them off: ``server.address`` is
  127.0.0.1 unless asked otherwise (the dashboard has no login), ``server.headless`` (no browser
  is opened for us), ``browser.gatherUsageStats`` false (otherwise Streamlit fetches a
  usage-metrics file from the internet), no file watcher (the app does not reload itself);
* the runs folder reaches the app in the ``MINIBERT_RUNS`` environment variable: the only
  way to set it is the command line; nothing in a page or a URL can change it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "APP_PATH",
    "DEFAULT_PORT",
    "Dashboard",
    "free_port",
    "is_local_host",
    "start",
    "streamlit_command",
    "wait_until_ready",
]

APP_PATH = Path(__file__).with_name("app.py")
DEFAULT_PORT = 8501  # Streamlit's own default, so the URL looks familiar
RUNS_ENV = "MINIBERT_RUNS"


def is_local_host(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine (loopback)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1", start_at: int = DEFAULT_PORT, attempts: int = 50) -> int:
    """The first port from ``start_at`` on that nothing listens on (0 asks the OS for any)."""
    for port in [*range(start_at, start_at + attempts), 0] if start_at else [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((host if host != "localhost" else "127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError(f"no free port found on {host}")  # pragma: no cover - bind(0) always works


def streamlit_command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The ``python -m streamlit run`` command line with the dashboard's fixed settings."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "minimal",
        "--theme.base",
        "light",
    ]


@dataclass
class Dashboard:
    """A running dashboard process and where to reach it."""

    process: subprocess.Popen
    url: str
    runs: Path

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to stop (SIGTERM), then kill it if it does not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)


def _check_streamlit() -> None:
    try:
        import streamlit  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "the dashboard needs streamlit and plotly: pip install 'minibert[dashboard]'"
        ) from err


def start(
    runs: str | Path = "runs",
    *,
    port: int | None = None,
    host: str = "127.0.0.1",
    quiet: bool = False,
    env: dict[str, str] | None = None,
) -> Dashboard:
    """Start the dashboard on ``runs`` in a child process and return at once.

    ``port=None`` takes the first free port from 8501. ``quiet`` sends Streamlit's own output
    to /dev/null (the demo prints its progress instead). Use :func:`wait_until_ready` before
    opening the URL.
    """
    _check_streamlit()
    runs = Path(runs).expanduser().resolve()
    if port is None:
        port = free_port("127.0.0.1" if host in ("0.0.0.0", "::") else host)
    child_env = {**os.environ, **(env or {}), RUNS_ENV: str(runs)}
    # The app must import *this* minibert, also from a source checkout that is not installed.
    package_root = str(Path(__file__).resolve().parents[2])
    child_env["PYTHONPATH"] = os.pathsep.join(
        [package_root, *filter(None, [child_env.get("PYTHONPATH")])]
    )
    child_env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    output = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(  # noqa: S603 - our own fixed command line
        streamlit_command(port, host), env=child_env, stdout=output, stderr=output
    )
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    if ":" in shown_host:
        shown_host = f"[{shown_host}]"
    return Dashboard(process=process, url=f"http://{shown_host}:{port}", runs=runs)


def wait_until_ready(dashboard: Dashboard, timeout: float = 60.0) -> bool:
    """Poll Streamlit's health endpoint until it answers (False on timeout or early exit)."""
    deadline = time.monotonic() + timeout
    health = f"{dashboard.url}/_stcore/health"
    # No proxy: an http_proxy setting must not send a request for 127.0.0.1 elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < deadline:
        if dashboard.process.poll() is not None:
            return False
        with contextlib.suppress(OSError), opener.open(health, timeout=2) as response:
            if response.status == 200:
                return True
        time.sleep(0.25)
    return False
