"""minibert.lessons.execute: a channel poll never waits longer than one slice, and a run times
its cells. (The notebooks themselves run through it in tests/test_notebooks.py.)"""

from __future__ import annotations

import asyncio
import time
from queue import Empty

import pytest

pytest.importorskip("nbclient")

from minibert.lessons import execute  # noqa: E402


class Channel:
    """A stand-in for jupyter_client's async channel: the message is there from ``ready_at``
    on, but a poll only sees it if it *starts* after then (a missed wake-up)."""

    def __init__(self, ready_in: float) -> None:
        self.ready_at = time.monotonic() + ready_in
        self.polls: list[float] = []

    async def get_msg(self, timeout=None):
        self.polls.append(timeout)
        if time.monotonic() >= self.ready_at:
            return {"msg_type": "execute_reply"}
        await asyncio.sleep(timeout)
        raise Empty


def test_a_missed_wake_up_costs_one_slice_not_the_timeout(monkeypatch):
    monkeypatch.setattr(execute, "POLL_SLICE_S", 0.05)
    channel = Channel(ready_in=0.12)
    started = time.monotonic()
    message = asyncio.run(execute._sliced(channel.get_msg)(timeout=30))
    assert message["msg_type"] == "execute_reply"
    assert time.monotonic() - started < 1.0
    assert all(poll <= 0.05 for poll in channel.polls) and len(channel.polls) >= 3


def test_the_timeout_still_ends_the_wait(monkeypatch):
    monkeypatch.setattr(execute, "POLL_SLICE_S", 0.05)
    channel = Channel(ready_in=60)
    started = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(execute._sliced(channel.get_msg)(timeout=0.2))
    assert 0.15 < time.monotonic() - started < 1.0


@pytest.mark.slow
def test_run_notebook_times_each_code_cell(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# title"),
            nbformat.v4.new_code_cell("import time\ntime.sleep(0.3)"),
            nbformat.v4.new_code_cell("print(6 * 7)"),
        ]
    )
    ran = execute.run_notebook(nb, cwd=tmp_path, timeout=60)
    assert [index for index, _ in ran.cell_seconds] == [1, 2]
    assert ran.slowest(1)[0][:1] == (1,) and ran.slowest(1)[0][1] >= 0.3
    assert ran.notebook.cells[2].outputs[0]["text"] == "42\n"
    assert "slowest: cell 1" in ran.timing_report()
