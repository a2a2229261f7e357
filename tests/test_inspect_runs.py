"""minibert.inspect.runs: listing runs, their status, incremental metric reads, path safety,
fine-tuning reports. Most tests write small run folders by hand (the contract's files), two
read real runs made by the session fixtures."""

from __future__ import annotations

import json
import os
import shutil
import time

import pytest

from minibert.inspect.runs import (
    CurveBuffer,
    MetricsTail,
    UnsafePathError,
    downsample,
    finetune_report,
    list_run_checkpoints,
    list_runs,
    metric_series,
    nearest_checkpoint,
    read_metrics_table,
    read_run,
    resolve_inside,
    run_status,
)


def _line(step, split="train", **metrics):
    record = {
        "step": step,
        "split": split,
        "time": step * 0.1,
        "wall_time": 1e9 + step,
        "tokens": step * 100,
        **metrics,
    }
    return json.dumps(record) + "\n"


def _write_run(path, lines, kind="pretrain", checkpoints=(), final=False):
    path.mkdir(parents=True)
    (path / "run.json").write_text(
        json.dumps({"kind": kind, "name": path.name, "seed": 3, "config": {"preset": "tiny"}})
    )
    (path / "metrics.jsonl").write_text("".join(lines))
    for step in checkpoints:
        folder = path / "checkpoints" / f"step-{step:06d}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
    if final:
        (path / "final").mkdir()
        (path / "final" / "config.json").write_text("{}")
    return path


def _age(path, seconds):
    """Make every file of a run look ``seconds`` old."""
    stamp = time.time() - seconds
    for item in [path, *path.rglob("*")]:
        os.utime(item, (stamp, stamp))


# --- status ---------------------------------------------------------------------------------


def test_status_of_each_ending(tmp_path):
    finished = _write_run(
        tmp_path / "a", [_line(2, loss=5.0), _line(2, "event", event="stop", reason="max_steps")]
    )
    stopped = _write_run(
        tmp_path / "b",
        [_line(2, loss=5.0), _line(2, "event", event="stop", reason="signal:SIGINT")],
    )
    nan = _write_run(tmp_path / "c", [_line(2, "event", event="nonfinite_loss", message="NaN!")])
    running = _write_run(tmp_path / "d", [_line(2, loss=5.0)])
    dead = _write_run(tmp_path / "e", [_line(2, loss=5.0)])
    _age(dead, 3600)
    assert run_status(finished).status == "finished"
    assert run_status(stopped).status == "stopped"
    assert "--resume" in run_status(stopped).detail
    assert run_status(nan).status == "failed" and "NaN!" in run_status(nan).detail
    assert run_status(running).status == "running"
    status = run_status(dead)
    assert status.status == "failed" and "killed or crashed" in status.detail


def test_a_resumed_run_is_running_again(tmp_path):
    run = _write_run(
        tmp_path / "r",
        [
            _line(2, "event", event="stop", reason="signal:SIGTERM"),
            _line(2, "event", event="resume", checkpoint="x"),
            _line(4, loss=4.0),
        ],
    )
    assert run_status(run).status == "running"


def test_finetune_is_running_until_results_json(tmp_path):
    run = _write_run(
        tmp_path / "f", [_line(4, "event", event="stop", reason="max_steps")], kind="finetune"
    )
    assert run_status(run).status == "running"
    _age(run, 3600)
    assert run_status(run).status == "failed"
    (run / "results.json").write_text("{}")
    assert run_status(run).status == "finished"


def test_slow_runs_get_more_time_before_they_count_as_dead(tmp_path):
    # Lines every 100 s: silence of 5 minutes is normal for this run, not a crash.
    lines = [
        json.dumps({"step": s, "split": "train", "wall_time": 1e9 + 100 * s}) + "\n"
        for s in range(10)
    ]
    run = _write_run(tmp_path / "slow", lines)
    _age(run, 300)
    assert run_status(run).status == "running"
    assert run_status(run, stale_after=60).status == "failed"


# --- listing --------------------------------------------------------------------------------


def test_list_runs_finds_nested_runs_and_skips_other_folders(tmp_path):
    _write_run(tmp_path / "tiny", [_line(2, loss=5.0)], checkpoints=(2,), final=True)
    _write_run(tmp_path / "demo" / "pretrain", [_line(4, loss=4.0)])
    (tmp_path / "notes").mkdir()
    (tmp_path / ".hidden").mkdir()
    _write_run(tmp_path / ".hidden" / "x", [])
    runs = {r.name: r for r in list_runs(tmp_path)}
    assert set(runs) == {"tiny", "demo/pretrain"}
    tiny = runs["tiny"]
    assert tiny.kind == "pretrain" and tiny.last_step == 2 and tiny.num_checkpoints == 1
    assert tiny.has_final and tiny.settings["preset"] == "tiny" and tiny.settings["seed"] == 3
    assert tiny.as_row()["status"] == "running"


def test_list_runs_of_a_missing_or_empty_folder(tmp_path):
    assert list_runs(tmp_path / "nope") == []
    assert list_runs(tmp_path) == []


def test_a_run_without_run_json_yet(tmp_path):
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "metrics.jsonl").write_text('{"step": 1, "split": "tr')  # partial line
    (run,) = list_runs(tmp_path)
    assert run.kind == "unknown" and run.status == "running" and run.last_step is None


def test_read_run_of_a_deleted_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="deleted"):
        read_run(tmp_path / "gone")


def test_a_symlink_out_of_the_folder_is_not_listed(tmp_path):
    outside = _write_run(tmp_path / "outside" / "secret", [_line(1, loss=1.0)])
    root = tmp_path / "runs"
    root.mkdir()
    (root / "link").symlink_to(outside)
    assert list_runs(root) == []


# --- path safety ----------------------------------------------------------------------------


def test_resolve_inside_refuses_every_way_out(tmp_path):
    root = tmp_path / "runs"
    (root / "a").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (root / "escape").symlink_to(tmp_path / "elsewhere")
    (root / "inner").symlink_to(root / "a")
    assert resolve_inside(root, "a") == (root / "a").resolve()
    assert resolve_inside(root, "inner") == (root / "a").resolve()  # a link that stays inside
    assert resolve_inside(root, "a/../a") == (root / "a").resolve()
    for bad in (
        "..",
        "../elsewhere",
        "a/../../elsewhere",
        "/etc",
        str(tmp_path),
        "escape",
        "escape/x",
    ):
        with pytest.raises(UnsafePathError):
            resolve_inside(root, bad)


# --- metrics ----------------------------------------------------------------------------------


def test_metrics_tail_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(_line(1, loss=3.0) + '{"step": 2, "spl')
    tail = MetricsTail(path)
    assert [r["step"] for r in tail.read_new()] == [1]
    assert tail.read_new() == []
    with open(path, "a") as handle:
        handle.write('it": "train", "loss": 2.0}\n' + _line(3, loss=1.0))
    assert [r["step"] for r in tail.read_new()] == [2, 3]
    assert not tail.reset


def test_metrics_tail_starts_over_when_the_file_is_replaced_or_deleted(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(_line(1) + _line(2) + _line(3))
    tail = MetricsTail(run)
    assert len(tail.read_new()) == 3
    # A resume truncates the log by writing a new file and renaming it over the old one.
    (run / "new.jsonl").write_text(_line(1))
    os.replace(run / "new.jsonl", run / "metrics.jsonl")
    assert [r["step"] for r in tail.read_new()] == [1] and tail.reset
    (run / "metrics.jsonl").unlink()
    assert tail.read_new() == [] and tail.missing and tail.reset


def test_read_metrics_table_and_series(tmp_path):
    run = _write_run(
        tmp_path / "r",
        [_line(1, loss=3.0), _line(1, "eval", loss=3.5), _line(2, loss=None), _line(3, loss=2.0)],
    )
    assert len(read_metrics_table(run)) == 4
    assert len(read_metrics_table(run, split="eval")) == 1
    assert metric_series(read_metrics_table(run), "loss", split="train") == ([1.0, 3.0], [3.0, 2.0])
    xs, _ = metric_series(read_metrics_table(run), "loss", split="train", x="tokens")
    assert xs == [100.0, 300.0]


def test_downsample_keeps_spikes_and_ends():
    records = [{"step": i, "loss": 1.0} for i in range(10_000)]
    records[4321]["loss"] = 99.0  # one spike
    kept = downsample(records, "loss", max_points=200)
    assert len(kept) <= 202
    assert kept[0]["step"] == 0 and kept[-1]["step"] == 9999
    assert any(r["loss"] == 99.0 for r in kept)
    assert [r["step"] for r in kept] == sorted(r["step"] for r in kept)
    assert downsample(records[:50], "loss") == records[:50]


def test_curve_buffer_columns_by_split():
    buffer = CurveBuffer()
    buffer.extend(
        [
            {"step": 1, "split": "train", "time": 0.1, "tokens": 10, "loss": 3.0},
            {"step": 1, "split": "event", "event": "stop"},
            {"step": 2, "split": "train", "time": 0.2, "tokens": 20, "loss": 2.0, "lr": 0.1},
            {"step": 2, "split": "eval", "time": 0.2, "tokens": 20, "loss": 2.5},
        ]
    )
    assert len(buffer) == 3
    assert buffer.rows("train", "loss") == [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.0}]
    assert buffer.rows("train", "lr", "tokens") == [{"step": 2, "tokens": 20, "lr": 0.1}]
    assert buffer.rows("eval", "mlm_accuracy") == []
    assert "lr" in buffer.metrics("train")


# --- real runs ----------------------------------------------------------------------------------


def test_a_real_pretraining_run(micro_run):
    (run,) = list_runs(micro_run.parent)
    assert run.name == "micro" and run.kind == "pretrain" and run.status == "finished"
    assert run.last_step == 12 and run.has_final
    assert run.settings["layers"] == 2 and run.settings["corpus"] == "lee-news"
    steps = [step for step, _ in list_run_checkpoints(micro_run)]
    assert steps == [2, 4, 6, 8, 10, 12]
    assert nearest_checkpoint(micro_run, 7.2)[0] == 8
    assert nearest_checkpoint(micro_run, 5)[0] == 4  # ties go to the earlier checkpoint
    assert nearest_checkpoint(micro_run, 1000)[0] == 12
    buffer = CurveBuffer()
    buffer.extend(MetricsTail(micro_run).read_new())
    assert [r["step"] for r in buffer.rows("eval", "mlm_accuracy")] == [6, 12]


def test_a_checkpoint_being_written_is_not_listed(micro_run, tmp_path):
    run = tmp_path / "micro"
    shutil.copytree(micro_run, run)
    (run / "checkpoints" / ".tmp-step-000014-123").mkdir()
    (run / "checkpoints" / "step-000016").mkdir()  # renamed but (impossibly) empty: skipped
    assert [s for s, _ in list_run_checkpoints(run)] == [2, 4, 6, 8, 10, 12]


def test_finetune_report_of_a_real_run(micro_finetune_run):
    report = finetune_report(micro_finetune_run)
    assert report.complete and report.task == "wiki-topic" and report.kind == "sequence"
    assert len(report.labels) == 6
    validation = report.splits["validation"]
    assert len(validation["confusion"]) == 6
    assert sum(map(sum, validation["confusion"])) == report.num_predictions["validation"]
    wrong = report.mistakes.get("validation", [])
    assert all(not m["correct"] for m in wrong)
    assert len(wrong) == min(50, round((1 - validation["accuracy"]) * validation["count"]))
    rows = report.per_class_rows()
    assert {r["label"] for r in rows} == set(report.labels) and "f1" in rows[0]


def test_finetune_report_of_a_run_still_training(tmp_path):
    run = _write_run(tmp_path / "f", [_line(2, loss=1.0)], kind="finetune")
    report = finetune_report(run)
    assert not report.complete and report.splits == {} and report.mistakes == {}
