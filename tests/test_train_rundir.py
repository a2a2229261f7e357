"""Run directories, metrics.jsonl, atomic checkpoints, schedules and the data-order state."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

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
    # --overwrite replaces a run, never a folder of the user's files.
    with pytest.raises(FileExistsError, match="notes.txt"):
        RunDirectory.create(out, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
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


# --- --overwrite, locks and crash windows ---------------------------------------------------


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (this worktree's minibert), with extra ``env``."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )


def _finished_run(root, steps=(10,)) -> RunDirectory:
    run = RunDirectory.create(root)
    run.write_run_json({"kind": "pretrain"})
    for step in steps:
        _fake_checkpoint(run, step)
    run.close()
    return run


def test_overwrite_replaces_a_run_and_refuses_anything_else(tmp_path, monkeypatch):
    run = _finished_run(tmp_path / "run")
    (run.root / "metrics.jsonl").write_text("{}\n")
    fresh = RunDirectory.create(run.root, overwrite=True)
    assert sorted(p.name for p in fresh.root.iterdir()) == ["checkpoints"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".trash-", ".old-"))]
    fresh.close()

    # A folder of runs (a demo, a cross-validation) interrupted before its summary is a run.
    demo = tmp_path / "demo"
    _finished_run(demo / "pretrain")
    (demo / "finetune" / "checkpoints").mkdir(parents=True)
    RunDirectory.create(demo, overwrite=True).close()

    # A source tree, or the working directory (`--out .`), is not.
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "main.py").write_text("print('mine')")
    with pytest.raises(FileExistsError, match="main.py"):
        RunDirectory.create(project, overwrite=True)
    _finished_run(tmp_path / "here")
    monkeypatch.chdir(tmp_path / "here")
    with pytest.raises(FileExistsError, match="working directory"):
        RunDirectory.create(".", overwrite=True)
    assert (project / "src" / "main.py").is_file() and (tmp_path / "here" / "run.json").is_file()


def test_pretrain_overwrite_refuses_a_folder_that_is_not_a_run_before_any_work(tmp_path):
    from minibert.train.pretrain import pretrain

    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        pretrain(out=tmp_path, overwrite=True, cache_dir=tmp_path / "no-cache")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "no-cache").exists()  # refused before the data was prepared


def test_overwrite_killed_midway_leaves_the_old_run_whole(tmp_path):
    run = _finished_run(tmp_path / "run", steps=(10, 20))
    before = sorted(str(p.relative_to(run.root)) for p in run.root.rglob("*"))
    done = _python(
        f"""
        from minibert.train.rundir import RunDirectory
        RunDirectory.create({str(run.root)!r}, overwrite=True)
        """,
        MINIBERT_FAULT="kill:remove_tree:renamed",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    # Killed while deleting: no half-deleted run under the name; the old one is whole, aside.
    assert not run.root.exists()
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith(".trash-run-")]
    assert sorted(str(p.relative_to(aside)) for p in aside.rglob("*")) == before
    RunDirectory.create(run.root).close()  # the next run starts and sweeps the leftover
    assert not aside.exists()


def test_a_second_run_on_the_same_directory_fails_at_once_naming_the_first(tmp_path):
    from minibert.locking import LockHeldError
    from minibert.train.pretrain import pretrain

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from minibert.train.rundir import RunDirectory\n"
            f"run = RunDirectory.create({str(out)!r})\n"
            "run.write_run_json({'kind': 'pretrain'})\n"
            "print('ready', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        for attempt in (
            lambda: RunDirectory.create(out, overwrite=True),
            lambda: RunDirectory.open_for_resume(out),
            lambda: pretrain(out=out, overwrite=True, cache_dir=tmp_path / "cache"),
        ):
            with pytest.raises(LockHeldError, match=f"process {holder.pid}"):
                attempt()
        assert (out / "run.json").is_file()  # the live run was not wiped
    finally:
        holder.kill()  # SIGKILL: no clean-up; the lock file stays behind
        holder.wait()
    # The kernel released the dead process's lock: its leftover lock file blocks nobody.
    RunDirectory.create(out, overwrite=True).close()


def test_replacing_final_killed_between_the_renames_is_restored_on_resume(tmp_path):
    run = _finished_run(tmp_path / "run")
    save_checkpoint(run.final_dir, save_model=lambda d: (d / "model.safetensors").write_text("v1"))
    done = _python(
        f"""
        from minibert.train.checkpoint import save_checkpoint
        save_checkpoint(
            {str(run.final_dir)!r},
            save_model=lambda d: (d / "model.safetensors").write_text("v2"),
        )
        """,
        MINIBERT_FAULT="kill:replace_directory:between_renames",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not run.final_dir.exists()  # the window: old renamed aside, new not yet in place
    resumed = RunDirectory.open_for_resume(run.root)
    assert (run.final_dir / "model.safetensors").read_text() == "v1"
    assert not [p for p in run.root.iterdir() if p.name.startswith((".old-", ".tmp-"))]
    resumed.close()


def test_pruning_killed_midway_never_lists_a_half_deleted_checkpoint(tmp_path):
    run = _finished_run(tmp_path / "run", steps=(10, 20, 30))
    done = _python(
        f"""
        from minibert.train.rundir import RunDirectory
        RunDirectory({str(run.root)!r}).prune_checkpoints(keep=1)
        """,
        MINIBERT_FAULT="kill:remove_tree:renamed",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    # Every checkpoint still listed is complete; the one being deleted is out of the listing.
    listed = run.checkpoints()
    assert [step for step, _ in listed] == [20, 30]
    for _, path in listed:
        assert load_trainer_state(path).step == int(path.name.split("-")[1])
    RunDirectory.open_for_resume(run.root).close()
    assert sorted(p.name for p in run.checkpoints_dir.iterdir()) == ["step-000020", "step-000030"]


def test_tokenizer_and_results_are_written_atomically(tmp_path):
    run = _finished_run(tmp_path / "run")
    run.write_json("results.json", {"accuracy": 0.5})
    done = _python(
        f"""
        from minibert.train.rundir import RunDirectory
        run = RunDirectory({str(run.root)!r})
        run.write_json("results.json", {{"accuracy": 0.9}})
        """,
        MINIBERT_FAULT="kill:atomic_file:before_rename",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert json.loads((run.root / "results.json").read_text()) == {"accuracy": 0.5}

    def half_a_tokenizer(directory):
        (directory / "vocab.txt").write_text("[PAD]\n")
        (directory / "tokenizer.json").write_text("{")

    done = _python(
        f"""
        from minibert.train.rundir import RunDirectory
        run = RunDirectory({str(run.root)!r})
        run.write_tokenizer(lambda d: (d / "vocab.txt").write_text("[PAD]"))
        """,
        MINIBERT_FAULT="kill:atomic_directory:before_rename",
    )
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert not run.tokenizer_dir.exists()  # no half tokenizer under the real name
    run.write_tokenizer(half_a_tokenizer)
    assert sorted(p.name for p in run.tokenizer_dir.iterdir()) == ["tokenizer.json", "vocab.txt"]


def test_renames_are_made_durable_by_syncing_the_parent(tmp_path, monkeypatch):
    from minibert import atomic

    synced = []
    monkeypatch.setattr(atomic, "fsync_directory", lambda path: synced.append(Path(path)))
    atomic.write_text_atomic(tmp_path / "run.json", "{}")
    assert tmp_path in synced
    synced.clear()
    with atomic.atomic_directory(tmp_path / "final") as tmp:
        (tmp / "a").write_text("1")
    assert tmp_path in synced


def test_checkpoints_carry_checksums_that_resume_verifies(tmp_path):
    from minibert.train.checkpoint import CheckpointCorruptError, verify_checkpoint

    run = _finished_run(tmp_path / "run", steps=(10,))
    checkpoint = run.checkpoint_dir(10)
    state = load_trainer_state(checkpoint)
    assert set(state.checksums) == {"model.safetensors"}
    verify_checkpoint(checkpoint)
    (checkpoint / "model.safetensors").write_bytes(b"weightz")  # flipped by a disk error
    with pytest.raises(CheckpointCorruptError, match="model.safetensors has changed"):
        verify_checkpoint(checkpoint)
