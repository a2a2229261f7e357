"""Run directories, metrics.jsonl, atomic checkpoints, schedules and the data-order state."""

from __future__ import annotations

import json
import random

import pytest
import torch

from minibert.train.checkpoint import (
    TrainerState,
    atomic_directory,
    capture_rng_state,
    load_optimizer_state,
    load_trainer_state,
    restore_rng_state,
    save_checkpoint,
)
from minibert.train.loop import EpochSampler, derive_seed
from minibert.train.rundir import (
    MetricsWriter,
    RunDirectory,
    read_metrics,
    truncate_metrics_after,
)
from minibert.train.schedule import LRSchedule, training_progress

# --- metrics.jsonl --------------------------------------------------------------------------


def test_metrics_lines_carry_step_split_time_tokens(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with MetricsWriter(path) as writer:
        writer.write(step=10, split="train", time=1.5, tokens=1280, loss=2.5)
        writer.write(step=10, split="eval", time=1.6, tokens=1280, loss=float("nan"))
    lines = path.read_text().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["step"] == 10 and first["split"] == "train" and first["tokens"] == 1280
    assert first["time"] == 1.5 and first["wall_time"] > 1e9 and first["loss"] == 2.5
    assert json.loads(lines[1])["loss"] is None  # NaN is not JSON; written as null


def test_read_metrics_tolerates_a_partial_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    good = [{"step": 1, "split": "train", "loss": 3.0}, {"step": 1, "split": "eval", "loss": 3.1}]
    text = "".join(json.dumps(r) + "\n" for r in good)
    path.write_text(text + '{"step": 2, "split": "tr')  # a writer mid-line
    assert read_metrics(path) == good
    assert read_metrics(tmp_path) == good  # a run directory works too
    assert read_metrics(path, split="eval") == good[1:]
    # A complete last line without its newline yet is a complete record.
    path.write_text(text + '{"step": 2, "split": "train"}')
    assert read_metrics(path)[-1] == {"step": 2, "split": "train"}
    assert read_metrics(tmp_path / "missing.jsonl") == []


def test_read_metrics_skips_a_damaged_middle_line(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        '{"step": 1, "split": "train"}\n{"step": 2, "spl\n{"step": 3, "split": "train"}\n'
    )
    assert [r["step"] for r in read_metrics(path)] == [1, 3]
    assert "not valid JSON" in caplog.text


def test_truncate_drops_lines_after_the_checkpoint_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(
        "".join(json.dumps({"step": s, "split": "train"}) + "\n" for s in range(1, 8)) + '{"st'
    )
    assert truncate_metrics_after(path, 5) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5]
    assert path.read_text().endswith("\n")


# --- run directory rules ----------------------------------------------------------------------


def test_create_refuses_a_non_empty_directory(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        RunDirectory.create(out)
    run = RunDirectory.create(out, overwrite=True)
    assert not (out / "notes.txt").exists() and run.checkpoints_dir.is_dir()
    RunDirectory.create(tmp_path / "fresh")  # missing is fine


def test_resume_needs_a_run_with_a_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        RunDirectory.open_for_resume(tmp_path / "nothing")
    run = RunDirectory.create(tmp_path / "run")
    with pytest.raises(FileNotFoundError, match="no run.json"):
        RunDirectory.open_for_resume(run.root)
    run.write_run_json({"kind": "pretrain"})
    with pytest.raises(FileNotFoundError, match="no checkpoint yet"):
        RunDirectory.open_for_resume(run.root)


def _fake_checkpoint(run: RunDirectory, step: int) -> None:
    def save_model(directory):
        (directory / "model.safetensors").write_bytes(b"weights")

    save_checkpoint(
        run.checkpoint_dir(step), save_model=save_model, trainer_state=TrainerState(step=step)
    )


def test_checkpoints_listed_in_step_order_and_pruned(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    for step in (500, 20, 1000, 1500):
        _fake_checkpoint(run, step)
    assert [s for s, _ in run.checkpoints()] == [20, 500, 1000, 1500]
    assert run.latest_checkpoint().name == "step-001500"
    run.prune_checkpoints(keep=2)
    assert [s for s, _ in run.checkpoints()] == [1000, 1500]
    assert load_trainer_state(run.latest_checkpoint()).step == 1500


def test_a_crash_mid_write_leaves_no_half_checkpoint(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    _fake_checkpoint(run, 10)

    def crashing_save(directory):
        (directory / "model.safetensors").write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(run.checkpoint_dir(20), save_model=crashing_save)
    assert [s for s, _ in run.checkpoints()] == [10]
    assert list(run.checkpoints_dir.iterdir()) == [run.checkpoint_dir(10)]  # temp dir removed

    # Replacing an existing checkpoint that fails keeps the old one whole.
    with pytest.raises(OSError):
        save_checkpoint(run.checkpoint_dir(10), save_model=crashing_save)
    assert (run.checkpoint_dir(10) / "model.safetensors").read_bytes() == b"weights"


def test_a_killed_save_is_invisible_and_cleaned_on_resume(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    run.write_run_json({"kind": "pretrain"})
    _fake_checkpoint(run, 10)
    # What kill -9 during a save leaves: a dot-prefixed temporary directory.
    leftover = run.checkpoints_dir / ".tmp-step-000020-12345"
    leftover.mkdir()
    (leftover / "model.safetensors").write_bytes(b"hal")
    assert [s for s, _ in run.checkpoints()] == [10]
    RunDirectory.open_for_resume(run.root)
    assert not leftover.exists()


def test_atomic_directory_replaces_an_existing_target(tmp_path):
    target = tmp_path / "final"
    with atomic_directory(target) as tmp:
        (tmp / "a").write_text("1")
    with atomic_directory(target) as tmp:
        assert not (tmp / "a").exists()
        (tmp / "b").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def test_optimizer_state_round_trips_with_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    save_checkpoint(
        tmp_path / "ckpt",
        save_model=lambda d: None,
        optimizer=optimizer,
        trainer_state=TrainerState(step=1),
    )
    state = load_optimizer_state(tmp_path / "ckpt")
    fresh = torch.optim.AdamW(torch.nn.Linear(3, 2).parameters(), lr=0.1)
    fresh.load_state_dict(state)
    assert torch.equal(
        fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"]
    )


def test_rng_state_round_trips_through_json():
    torch.manual_seed(3)
    random.seed(3)
    state = json.loads(json.dumps(capture_rng_state()))
    expected = (torch.rand(3), random.random())
    torch.manual_seed(99)
    random.seed(99)
    restore_rng_state(state)
    assert torch.equal(torch.rand(3), expected[0]) and random.random() == expected[1]


# --- schedule and data order ------------------------------------------------------------------


def test_linear_schedule_warms_up_then_decays_to_the_floor():
    schedule = LRSchedule("linear", warmup=0.1, min_ratio=0.0)
    assert schedule.factor(0.0) == 0.0
    assert schedule.factor(0.05) == pytest.approx(0.5)
    assert schedule.factor(0.1) == pytest.approx(1.0)
    assert schedule.factor(0.55) == pytest.approx(0.5)
    assert schedule.factor(1.0) == pytest.approx(0.0)
    cosine = LRSchedule("cosine", warmup=0.0, min_ratio=0.1)
    assert cosine.factor(0.5) == pytest.approx(0.1 + 0.9 * 0.5)
    assert cosine.factor(1.0) == pytest.approx(0.1)
    assert LRSchedule("constant", warmup=0.2).factor(0.9) == 1.0
    with pytest.raises(ValueError, match="unknown schedule"):
        LRSchedule("step")


def test_progress_is_steps_or_time_whichever_runs_out_first():
    assert training_progress(50, 0.0, 100, None) == 0.5
    assert training_progress(0, 30.0, None, 60.0) == 0.5
    assert training_progress(10, 45.0, 100, 60.0) == 0.75
    assert training_progress(500, 0.0, 100, None) == 1.0
    with pytest.raises(ValueError, match="max_steps or time_budget"):
        training_progress(1, 1.0, None, None)


def test_epoch_sampler_is_seeded_complete_and_resumable():
    sampler = EpochSampler(num_examples=10, batch_size=3, seed=5)
    epoch0 = [sampler.next_batch() for _ in range(3)]  # 9 of 10: the tail is dropped
    assert len({i for batch in epoch0 for i in batch}) == 9
    state = sampler.state_dict()
    ahead = [sampler.next_batch() for _ in range(4)]  # all of epoch 1, then into epoch 2
    assert sampler.epoch == 2 and sampler.batch_in_epoch == 1
    assert ahead[:3] != epoch0  # a fresh shuffle each epoch
    resumed = EpochSampler(num_examples=10, batch_size=3, seed=5)
    resumed.load_state_dict(state)
    assert [resumed.next_batch() for _ in range(4)] == ahead
    other_seed = EpochSampler(num_examples=10, batch_size=3, seed=6)
    assert [other_seed.next_batch() for _ in range(3)] != epoch0
    with pytest.raises(ValueError, match="lower train.batch_size"):
        EpochSampler(num_examples=2, batch_size=3, seed=0)


def test_derived_seeds_are_stable_and_distinct():
    assert derive_seed(0, "mask", 1) == derive_seed(0, "mask", 1)
    assert derive_seed(0, "mask", 1) != derive_seed(0, "mask", 2)
    assert 0 <= derive_seed("x") < 2**63
