"""Run a lesson notebook top to bottom in a fresh kernel and time every cell.

The tests run each notebook so (fast mode, blank and solved), and ``bench/bench_lessons.py``
times each lesson in full and fast mode with it::

    from minibert.lessons import build, execute
    ran = execute.run_notebook(build.student_notebook("notebooks/02-attention.py"))
    ran.seconds, ran.slowest(3)

Why not plain ``nbclient.NotebookClient.execute``: with ipywidgets in a notebook, nbclient
sometimes waits out the whole cell timeout for a reply the kernel has already sent (nbclient
issue #312). jupyter_client's ``get_msg(timeout)`` awaits one ``poll`` on the ZeroMQ socket, and
that socket's file descriptor signals edges, not levels: a missed edge leaves the reply unread
until the timeout. Seen here as a 10 s lesson taking 126 s, with kernel and client both idle.
:class:`TimedNotebookClient` polls in slices of at most :data:`POLL_SLICE_S`, so a missed edge
costs at most that long; a fresh poll first checks whether a message is already waiting.

Needs ``nbclient`` and ``ipykernel`` (``pip install 'minibert[notebooks]'``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

__all__ = ["POLL_SLICE_S", "NotebookRun", "TimedNotebookClient", "run_notebook"]

POLL_SLICE_S = 1.0


try:
    import nbclient
except ImportError:  # pragma: no cover - the notebooks extra is missing
    raise ImportError(
        "running notebooks needs nbclient and ipykernel: pip install 'minibert[notebooks]'"
    ) from None


def _sliced(channel_get_msg):
    """Wrap a channel's async ``get_msg(timeout)`` so it polls at most POLL_SLICE_S at a time."""

    async def get_msg(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = POLL_SLICE_S if deadline is None else deadline - time.monotonic()
            try:
                return await channel_get_msg(timeout=max(0.0, min(POLL_SLICE_S, left)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg


@dataclass
class NotebookRun:
    """An executed notebook, its wall time and each code cell's wall time (in cell order)."""

    notebook: Any
    seconds: float
    cell_seconds: list[tuple[int, float]] = field(default_factory=list)  # (cell index, seconds)

    def slowest(self, count: int = 3) -> list[tuple[int, float, str]]:
        """The ``count`` slowest code cells as (index, seconds, first line of source)."""
        ranked = sorted(self.cell_seconds, key=lambda item: -item[1])[:count]
        return [
            (index, seconds, (self.notebook.cells[index].source.splitlines() or [""])[0])
            for index, seconds in ranked
        ]

    def timing_report(self, count: int = 3) -> str:
        """One line: total, then the slowest cells (what a failed time check prints)."""
        cells = "; ".join(
            f"cell {index} {seconds:.1f} s ({line[:50]})"
            for index, seconds, line in self.slowest(count)
        )
        return f"{self.seconds:.1f} s in all; slowest: {cells}"


class TimedNotebookClient(nbclient.NotebookClient):
    """``nbclient.NotebookClient`` that records each code cell's wall time and never waits out
    a missed ZeroMQ wake-up (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cell_seconds: list[tuple[int, float]] = []

    async def async_start_new_kernel_client(self):
        client = await super().async_start_new_kernel_client()
        for channel in (client.shell_channel, client.iopub_channel):
            channel.get_msg = _sliced(channel.get_msg)
        return client

    async def async_execute_cell(self, cell, cell_index, *args: Any, **kwargs: Any):
        started = time.perf_counter()
        try:
            return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
        finally:
            if cell.cell_type == "code":
                self.cell_seconds.append((cell_index, time.perf_counter() - started))


def run_notebook(
    nb: Any,
    *,
    cwd: str | Path,
    timeout: float | None = 600,
    allow_errors: bool = False,
    kernel_name: str = "python3",
) -> NotebookRun:
    """Execute ``nb`` in place in a fresh kernel started in ``cwd``; return the timed run.

    Args:
        nb: an nbformat notebook (e.g. :func:`minibert.lessons.build.student_notebook`).
        cwd: the kernel's working directory (the lessons run in ``notebooks/``).
        timeout: seconds one cell may take before it is interrupted and the run fails.
        allow_errors: keep going past a cell that raises (its error becomes an output).
        kernel_name: the Jupyter kernel (``python3`` is this interpreter's ipykernel).

    The kernel inherits this process's environment (``MINIBERT_FAST``, ``MINIBERT_RUNS``...).
    """
    client = TimedNotebookClient(
        nb,
        timeout=None if timeout is None else int(timeout),
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=allow_errors,
    )
    started = time.perf_counter()
    client.execute()
    return NotebookRun(nb, time.perf_counter() - started, list(client.cell_seconds))
