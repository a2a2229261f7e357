"""``minibert dashboard``: the Streamlit app over a runs folder.

minibert dashboard                       # runs/ on http://127.0.0.1:8501
minibert dashboard --runs runs/demo --port 8600
minibert dashboard --host 0.0.0.0        # reachable from other machines (prints a warning)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "serve"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="open the dashboard: live training curves, attention, predictions, fine-tuning, data",
        description=(
            "Start the minibert dashboard (Streamlit) on a runs folder and print its URL. It "
            "reads only inside that folder, needs no network, and listens on 127.0.0.1 unless "
            "--host says otherwise. Stop it with Ctrl-C."
        ),
        allow_abbrev=False,
    )
    parser.add_argument(
        "--runs", type=Path, default=Path("runs"), help="the runs folder to show (default runs/)"
    )
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: the first free one from 8501)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.set_defaults(func=_run)


def warn_if_public(host: str) -> None:
    """Say so when the dashboard will be reachable from other machines (it has no login)."""
    from minibert.dashboard.launch import is_local_host

    if not is_local_host(host):
        print(
            f"minibert dashboard: warning: listening on {host}, so anyone who can reach this "
            "machine can open the dashboard and read the runs folder (it has no login). Use "
            "the default --host 127.0.0.1 unless that is what you want.",
            file=sys.stderr,
        )


def serve(runs: Path, port: int | None, host: str) -> int:
    """Start the dashboard, print the URL and wait until Ctrl-C (or the server exits)."""
    from minibert.dashboard.launch import start, wait_until_ready

    if port is not None and not 0 < port < 65536:
        raise ValueError(f"--port must be between 1 and 65535, got {port}")
    warn_if_public(host)
    if not runs.is_dir():
        print(
            f"minibert dashboard: {runs} does not exist yet; the dashboard will say how to make "
            "a run (e.g. minibert demo) and show it once it appears."
        )
    dashboard = start(runs, port=port, host=host, quiet=True)
    try:
        if not wait_until_ready(dashboard, timeout=90):
            code = dashboard.process.poll()
            dashboard.stop()
            raise OSError(
                f"the Streamlit server did not start (exit status {code}); is the port "
                "taken? Try another --port, or run with -v"
            )
        print(f"minibert dashboard: {dashboard.runs} at {dashboard.url}  (Ctrl-C to stop)")
        sys.stdout.flush()
        return dashboard.process.wait() or 0
    except KeyboardInterrupt:
        return 0
    finally:
        dashboard.stop()


def _run(args: argparse.Namespace) -> int:
    return serve(args.runs, args.port, args.host)
