"""``minibert demo`` end to end with a 20-second training budget: every stage runs for real."""

from __future__ import annotations

import json

import pytest

from minibert.cli import main
from minibert.train.demo import DemoConfig, default_demo_dir


def test_demo_runs_end_to_end_and_prints_the_summary(tmp_path, cache_dir, capsys):
    out = tmp_path / "demo"
    code = main(
        [
            "demo",
            "--time-budget",
            "20",
            "--out",
            str(out),
            "--cache-dir",
            str(cache_dir),
            "--eval-limit",
            "100",
            "--num-threads",
            "2",
            "--no-progress",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    for text in (
        "held-out masked-token accuracy",
        "fill-mask",
        "from pretrained",
        "from scratch",
        "wiki-topic",
        str(out),
    ):
        assert text in printed, text

    summary = json.loads((out / "demo.json").read_text())
    pretrain = summary["pretrain"]
    assert pretrain["steps"] >= 1 and 0.0 <= pretrain["held_out"]["mlm_accuracy"] <= 1.0
    assert pretrain["elapsed"] < 12 + 10  # 60% of 20 s, plus one step's overshoot at most
    assert len(summary["fill_mask"]) == 4
    assert all(len(item["candidates"]) == 3 for item in summary["fill_mask"])
    for name in ("pretrain", "finetune-pretrained", "finetune-scratch"):
        assert (out / name / "final" / "model.safetensors").is_file(), name
        assert (out / name / "metrics.jsonl").is_file(), name
    pre = summary["finetune"]["from_pretrained"]
    scratch = summary["finetune"]["from_scratch"]
    assert pre["task"] == scratch["task"] == "wiki-topic"
    assert scratch["steps"] == pre["steps"]  # the comparison is step for step
    for result in (pre, scratch):
        assert 0.0 <= result["validation"]["accuracy"] <= 1.0
        assert result["test"]["examples"] == 100
    scratch_run = json.loads((out / "finetune-scratch" / "run.json").read_text())
    assert scratch_run["init"]["kind"] == "random"
    assert str(out / "pretrain") in scratch_run["tokenizer"]
    pre_run = json.loads((out / "finetune-pretrained" / "run.json").read_text())
    assert pre_run["init"]["source_run"] == "pretrain"


def test_demo_settings_are_checked(tmp_path, capsys):
    with pytest.raises(ValueError, match="pretrain_share"):
        DemoConfig(pretrain_share=1.5)
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        DemoConfig(fill_mask_sentences=["no mask here"])
    assert main(["demo", "--out", str(tmp_path / "d"), "--time-budgte", "5"]) == 2
    assert "Valid keys" in capsys.readouterr().err
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "file").write_text("x")
    assert main(["demo", "--out", str(occupied), "--time-budget", "5"]) == 2
    assert "not empty" in capsys.readouterr().err


def test_default_demo_dir_never_reuses_a_full_directory(tmp_path):
    assert default_demo_dir(tmp_path) == tmp_path / "demo"
    (tmp_path / "demo").mkdir()
    assert default_demo_dir(tmp_path) == tmp_path / "demo"  # empty: fine
    (tmp_path / "demo" / "demo.json").write_text("{}")
    assert default_demo_dir(tmp_path) == tmp_path / "demo-2"


def test_demo_overwrite_replaces_only_a_demo(tmp_path, capsys):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(occupied), "--overwrite", "--time-budget", "5"]) == 2
    assert "notes.txt" in capsys.readouterr().err
    assert (occupied / "notes.txt").read_text() == "mine"

    from minibert.train.demo import _prepare_demo_dir

    old = tmp_path / "demo"
    (old / "pretrain" / "checkpoints").mkdir(parents=True)
    (old / "pretrain" / "run.json").write_text("{}")
    (old / "demo.json").write_text("{}")
    _prepare_demo_dir(old, overwrite=True)
    assert old.is_dir() and not any(old.iterdir())
