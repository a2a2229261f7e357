"""``minibert dashboard`` and ``minibert demo --dashboard``: the command lines, the fixed
Streamlit settings (offline, local), and one real server start."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from minibert.cli import main
from minibert.dashboard import launch
from minibert.dashboard.cli import warn_if_public


def test_help(capsys):
    with pytest.raises(SystemExit):
        main(["dashboard", "--help"])
    out = capsys.readouterr().out
    assert "--runs" in out and "--port" in out and "--host" in out
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "--dashboard" in capsys.readouterr().out


def test_streamlit_runs_offline_and_local_by_default():
    command = launch.streamlit_command(8600)
    settings = dict(zip(command[5::2], command[6::2], strict=True))
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4] == str(launch.APP_PATH)
    assert settings["--browser.gatherUsageStats"] == "false"  # else it fetches from the internet
    assert settings["--server.address"] == "127.0.0.1"
    assert settings["--server.headless"] == "true"
    assert settings["--server.port"] == "8600"


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("localhost", True), ("::1", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("192.168.1.5", False), ("example.org", False), ("::", False)],
)  # fmt: skip
def test_is_local_host(host, local):
    assert launch.is_local_host(host) is local


def test_a_public_host_prints_a_warning(capsys):
    warn_if_public("0.0.0.0")
    assert "warning" in capsys.readouterr().err
    warn_if_public("127.0.0.1")
    assert capsys.readouterr().err == ""


def test_bad_port_is_a_clear_error(capsys):
    assert main(["dashboard", "--port", "70000"]) == 2
    assert "--port must be between" in capsys.readouterr().err


def test_free_port_skips_a_taken_one():
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert launch.free_port(start_at=port) != port


def test_minibert_dashboard_serves_and_prints_its_url(tmp_path):
    """The real verb in a child process: it prints the URL, the page and health answer, Ctrl-C
    (SIGINT) stops it."""
    port = launch.free_port(start_at=8700)
    env = {**os.environ, "PYTHONPATH": str(Path(launch.__file__).parents[2])}
    process = subprocess.Popen(
        [sys.executable, "-m", "minibert", "dashboard", "--runs", str(tmp_path / "none"),
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "http://" in line:
                break
        output = "".join(lines)
        assert f"http://127.0.0.1:{port}" in output, output
        assert "does not exist yet" in output
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(f"http://127.0.0.1:{port}/_stcore/health", timeout=10) as response:
            assert response.status == 200
        with opener.open(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert b"<html" in response.read().lower()
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        try:
            assert process.wait(30) == 0
        finally:
            if process.poll() is None:
                process.kill()
    # The server child went with it: nothing listens on the port any more.
    import socket

    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
        pass


class _FakeProcess:
    def wait(self, timeout=None):
        return 0

    def poll(self):
        return 0


class _FakeDashboard:
    def __init__(self, runs):
        self.runs, self.url, self.process, self.stopped = runs, "http://127.0.0.1:9", None, False
        self.process = _FakeProcess()

    def stop(self):
        self.stopped = True


def test_demo_dashboard_starts_on_the_demo_folder_before_training(tmp_path, monkeypatch, capsys):
    events = []
    started = []

    def fake_start(runs, **kwargs):
        events.append(("dashboard", Path(runs)))
        started.append(_FakeDashboard(runs))
        return started[-1]

    class FakeResult:
        def summary(self):
            return "demo summary"

    def fake_run_demo(out=None, **kwargs):
        events.append(("demo", Path(out)))
        return FakeResult()

    monkeypatch.setattr(launch, "start", fake_start)
    monkeypatch.setattr(launch, "wait_until_ready", lambda dashboard, timeout=0: True)
    monkeypatch.setattr("minibert.train.demo.run_demo", fake_run_demo)
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--dashboard", "--time-budget", "5"]) == 0
    out = capsys.readouterr().out
    demo_dir = Path("runs/demo")
    assert events == [("dashboard", demo_dir), ("demo", demo_dir)]
    assert demo_dir.is_dir()
    assert "http://127.0.0.1:9" in out and "demo summary" in out
    assert started[0].stopped
