"""Data-parallel training with torchrun: 2 CPU processes (gloo) x 2 accumulation micro-steps
train the same global batch as one process, and log the same metrics within float tolerance."""

from __future__ import annotations

import json
import os
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
    # No dropout: each process draws its own dropout masks, which one process cannot mirror.
    "--model.hidden_dropout_prob", "0",
    "--model.attention_probs_dropout_prob", "0",
    # fp32: bf16 matmuls round differently for different row counts per process.
    "--precision", "fp32",
    "--batch-size", "8",
    "--eval-examples", "24",
    "--num-threads", "1",
    "--no-progress",
    "--max-steps", "8",
    "--log-every", "1",
    "--eval-every", "4",
    "--checkpoint-every", "4",
]  # fmt: skip

COMPARED = ("loss", "mlm_loss", "mlm_accuracy", "nsp_loss", "nsp_accuracy", "grad_norm", "lr")


def _pretrain(launcher, out, cache_dir, *extra):
    command = [*launcher, "-m", "minibert", "pretrain", "--out", str(out)]
    command += ["--cache-dir", str(cache_dir), *MICRO_ARGS, *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def test_two_gloo_processes_match_one_process(tmp_path, cache_dir):
    single = tmp_path / "single"
    _pretrain([sys.executable], single, cache_dir)
    ddp = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--standalone"]
    _pretrain(torchrun, ddp, cache_dir, "--grad-accum-steps", "2")

    expected = [r for r in read_metrics(single) if r["split"] in ("train", "eval")]
    got = [r for r in read_metrics(ddp) if r["split"] in ("train", "eval")]
    assert [(r["step"], r["split"]) for r in got] == [(r["step"], r["split"]) for r in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine["tokens"] == theirs["tokens"]  # the same global batches
        for key in COMPARED:
            if key in theirs:
                assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-7), (
                    mine["step"],
                    key,
                )
    # Rank 0 alone wrote the run directory, as one process would have.
    run = RunDirectory(ddp)
    assert [step for step, _ in run.checkpoints()] == [4, 8]
    assert (ddp / "final" / "model.safetensors").is_file()
    info = json.loads((ddp / "run.json").read_text())
    assert info["runtime"]["world_size"] == 2
    lines = (ddp / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len(read_metrics(ddp))  # no line written twice or interleaved


def test_two_processes_agree_on_a_time_budget(tmp_path, cache_dir):
    # Each process has its own clock; they must stop at the same step (no hang in a collective)
    # and apply the same learning rates.
    out = tmp_path / "timed"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    torchrun += ["--standalone"]
    time_args = ["--max-steps", "none", "--time-budget", "2", "--checkpoint-every", "0"]
    _pretrain(torchrun, out, cache_dir, *time_args)
    events = [r for r in read_metrics(out) if r["split"] == "event"]
    assert events[-1]["reason"] == "time_budget"
    assert (out / "final" / "model.safetensors").is_file()


def test_a_failed_save_on_rank_0_stops_every_rank_with_the_reason(tmp_path, cache_dir):
    out = tmp_path / "ddp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command = [*torchrun, "--standalone", "-m", "minibert", "pretrain", "--out", str(out)]
    command += ["--cache-dir", str(cache_dir), *MICRO_ARGS]
    env = {
        **os.environ,
        "MINIBERT_FAULT": "fail:save_checkpoint:files_written",  # rank 0's first save: "disk full"
        "MINIBERT_COLLECTIVE_TIMEOUT": "120",
    }
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env)
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert "injected failure at save_checkpoint:files_written" in output  # rank 0's own error
    assert "rank 0 could not save" in output  # rank 1 stopped with rank 0's reason
    assert time.monotonic() - started < 300  # not a wait for a collective's timeout
    assert not RunDirectory(out).checkpoints()


def test_collective_timeout_is_minutes_not_half_an_hour(monkeypatch):
    from minibert.train.distributed import collective_timeout

    monkeypatch.delenv("MINIBERT_COLLECTIVE_TIMEOUT", raising=False)
    assert 60 <= collective_timeout().total_seconds() <= 600
    monkeypatch.setenv("MINIBERT_COLLECTIVE_TIMEOUT", "45")
    assert collective_timeout().total_seconds() == 45
    assert collective_timeout(7).total_seconds() == 7
    monkeypatch.setenv("MINIBERT_COLLECTIVE_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="MINIBERT_COLLECTIVE_TIMEOUT"):
        collective_timeout()


def test_a_stuck_rank_ends_the_run_within_the_collective_timeout(tmp_path, cache_dir):
    out = tmp_path / "stuck"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    command = [*torchrun, "--standalone", "-m", "minibert", "pretrain", "--out", str(out)]
    command += ["--cache-dir", str(cache_dir), *MICRO_ARGS]
    env = {
        **os.environ,
        "MINIBERT_FAULT": "hang:train_step@1",  # rank 1 never reaches the step's all-reduce
        "MINIBERT_COLLECTIVE_TIMEOUT": "15",
    }
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=400, env=env)
    waited = time.monotonic() - started
    assert done.returncode != 0
    assert "timed out" in (done.stdout + done.stderr).lower()
    assert waited < 300, waited  # torch's default would have waited 30 minutes
