"""Crash safety with real processes: kill -9 mid-run then --resume matches an uninterrupted run;
SIGTERM finishes the step, writes a checkpoint and exits cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from minibert.train.rundir import RunDirectory, read_metrics

pytestmark = pytest.mark.slow

MICRO_ARGS = [
    "--corpus", "lee-news",
    "--vocab-size", "1000",
    "--model.hidden_size", "32",
    "--model.num_hidden_layers", "1",
    "--model.num_attention_heads", "2",
    "--model.intermediate_size", "64",
    "--batch-size", "8",
    "--eval-examples", "24",
    "--num-threads", "1",
    "--no-progress",
]  # fmt: skip

# Metrics that depend on the clock, not on the computation.
TIMING_KEYS = {"time", "wall_time", "tokens_per_second"}


def _start(out, cache_dir, *extra):
    command = [sys.executable, "-m", "minibert", "pretrain", "--out", str(out)]
    command += ["--cache-dir", str(cache_dir), *MICRO_ARGS, *extra]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_step(process, metrics_path, step, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(
            r.get("step", 0) >= step and r["split"] == "train" for r in read_metrics(metrics_path)
        ):
            return
        if process.poll() is not None:
            raise AssertionError(f"the run ended before step {step}: {process.communicate()}")
        time.sleep(0.005)
    raise AssertionError(f"step {step} not reached in {timeout}s")


def _computed(records):
    return [
        {k: v for k, v in r.items() if k not in TIMING_KEYS}
        for r in records
        if r["split"] in ("train", "eval")
    ]


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, cache_dir):
    # Dropout on, so the dropout RNG must resume exactly too.
    schedule = ["--max-steps", "60", "--checkpoint-every", "10", "--eval-every", "15",
                "--log-every", "1", "--keep-checkpoints", "0",
                "--model.hidden_dropout_prob", "0.1",
                "--model.attention_probs_dropout_prob", "0.1"]  # fmt: skip
    # Prime the data cache so the two runs below do not both build it.
    primer = _start(tmp_path / "primer", cache_dir, "--max-steps", "1")
    assert primer.wait(timeout=300) == 0, primer.communicate()
    reference = _start(tmp_path / "reference", cache_dir, *schedule)
    victim_dir = tmp_path / "victim"
    victim = _start(victim_dir, cache_dir, *schedule)
    _wait_for_step(victim, victim_dir / "metrics.jsonl", 12)
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    assert reference.wait(timeout=300) == 0, reference.communicate()

    run = RunDirectory(victim_dir)
    killed_at = max(r["step"] for r in read_metrics(victim_dir))
    assert killed_at < 60 and not run.final_dir.exists()
    checkpoint_step = run.checkpoints()[-1][0]
    assert 10 <= checkpoint_step <= killed_at

    resumed = _start(victim_dir, cache_dir, "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert "stopped after step 60 (max_steps)" in stdout

    expected = _computed(read_metrics(tmp_path / "reference"))
    got = _computed(read_metrics(victim_dir))
    assert [(r["step"], r["split"]) for r in got] == [(r["step"], r["split"]) for r in expected]
    assert got == expected  # bit-for-bit on CPU: same data order, masks, dropout and updates
    events = [r for r in read_metrics(victim_dir) if r["split"] == "event"]
    assert events[0]["event"] == "resume" and events[0]["step"] == checkpoint_step
    info = json.loads((victim_dir / "run.json").read_text())
    assert info["resumed"][0]["from"].endswith(f"step-{checkpoint_step:06d}")


def test_sigterm_saves_a_checkpoint_and_exits_cleanly(tmp_path, cache_dir):
    out = tmp_path / "terminated"
    process = _start(
        out, cache_dir, "--max-steps", "5000", "--checkpoint-every", "5000", "--log-every", "1"
    )
    _wait_for_step(process, out / "metrics.jsonl", 3)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert "Stopped by SIGTERM" in stdout and "--resume" in stdout
    run = RunDirectory(out)
    last_step = max(r["step"] for r in read_metrics(out, split="train"))
    assert [step for step, _ in run.checkpoints()] == [last_step]
    state = json.loads((run.checkpoint_dir(last_step) / "trainer_state.json").read_text())
    assert state["step"] == last_step
    assert not run.final_dir.exists()
    assert read_metrics(out)[-1]["reason"] == "signal:SIGTERM"
    assert not [p for p in out.rglob(".tmp-*")]

    # The stopped run continues, here with a shorter budget so that it ends at once.
    resumed = _start(out, cache_dir, "--resume", "--max-steps", str(last_step + 2))
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr
    assert f"stopped after step {last_step + 2}" in stdout
    assert run.final_dir.is_dir()


@pytest.mark.skipif(os.name != "posix", reason="POSIX signals")
def test_stop_signal_handler_is_removed_after_training():
    from minibert.train.loop import StopSignal

    before = signal.getsignal(signal.SIGTERM)
    with StopSignal() as stop:
        assert signal.getsignal(signal.SIGTERM) != before
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) == before
