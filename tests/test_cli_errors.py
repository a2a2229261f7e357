"""Every verb, given bad input, ends with exit status 2 and one line on stderr (issue 13, point 6).

The table below runs each verb of ``minibert`` against inputs that used to print a traceback
(malformed YAML, a malformed XML corpus, a damaged checkpoint, an unknown device, a run.json
that is a list or has no config, invalid JSON) or to be accepted (NaN learning rate, infinite
time budget, negative batch sizes). Each must fail before any training, with one line that
names the file or setting at fault and says what to do. Most rows run in-process
(``minibert.cli.main``, fast); :func:`test_real_exit_path` runs a few as real subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from minibert.cli import main

REPO = Path(__file__).resolve().parents[1]


def _write_checkpoint(folder: Path, *, damaged: bool = False) -> None:
    """A checkpoint folder whose files open (their content is not checked), or with a damaged
    optimizer.pt (as a killed save or a full disk leaves it)."""
    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"step": 2}), encoding="utf-8")
    (folder / "config.json").write_text(json.dumps({"model_type": "bert"}), encoding="utf-8")
    save_file({"weight": torch.zeros(2)}, str(folder / "model.safetensors"))
    if damaged:
        (folder / "optimizer.pt").write_bytes(b"PK\x03\x04 truncated")
    else:
        torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """A folder of bad inputs, one file or run directory per kind of mistake."""
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "bad.yaml").write_text("lr: 3e-4\ntrain: [1, 2\n", encoding="utf-8")
    (root / "bad.json").write_text('{"lr": }', encoding="utf-8")
    (root / "list.yaml").write_text("- lr\n- 3e-4\n", encoding="utf-8")
    (root / "bad.xml").write_text(
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">\n<page><title>A</title>\n'
        "<revision><text>Some text.</text></revision>\n</mediawiki>\n",
        encoding="utf-8",
    )
    (root / "a-file").write_text("not a folder", encoding="utf-8")
    runs = {
        "run-list": "[1, 2]",
        "run-noconfig": json.dumps({"kind": "pretrain"}),
        "run-badjson": '{"kind": "pretrain", "config": ',
        "run-good": json.dumps({"kind": "pretrain", "config": {}}),
    }
    for name, text in runs.items():
        (root / name).mkdir()
        (root / name / "run.json").write_text(text, encoding="utf-8")
        _write_checkpoint(root / name / "checkpoints" / "step-000002")  # so --resume reads on
    # A run whose newest checkpoint is damaged but whose previous one reads fine ...
    resumable = root / "run-damaged"
    resumable.mkdir()
    (resumable / "run.json").write_text(runs["run-good"], encoding="utf-8")
    _write_checkpoint(resumable / "checkpoints" / "step-000002")
    _write_checkpoint(resumable / "checkpoints" / "step-000004", damaged=True)
    # ... and one with no good checkpoint to fall back on.
    hopeless = root / "run-hopeless"
    hopeless.mkdir()
    (hopeless / "run.json").write_text(runs["run-good"], encoding="utf-8")
    _write_checkpoint(hopeless / "checkpoints" / "step-000002", damaged=True)
    # A model folder whose config.json is not JSON.
    (root / "model-badjson").mkdir()
    (root / "model-badjson" / "config.json").write_text("{", encoding="utf-8")
    return root


# (verb and arguments, with {bad} for the fixture folder and {tmp} for a fresh one; a part of
# the one-line message that names the file or setting and the fix)
BAD_INPUTS = [
    # prepare-data
    ("prepare-data --config {bad}/bad.yaml", "bad.yaml is not valid YAML"),
    ("prepare-data --config {bad}/bad.json", "bad.json is not valid JSON"),
    ("prepare-data --config {bad}/list.yaml", "must hold a mapping"),
    ("prepare-data --corpus {bad}/bad.xml --cache-dir {tmp}", "bad.xml is not a well-formed"),
    ("prepare-data --corpus {bad}/missing.txt", "does not exist"),
    ("prepare-data --near-dup-threshold nan", "near_dup_threshold"),
    ("prepare-data --max-line-chars -5", "max_line_chars"),
    ("prepare-data --valid-fraction inf", "valid_fraction"),
    # train-tokenizer
    ("train-tokenizer --output {bad}/a-file", "is a file"),
    ("train-tokenizer --output {tmp}/tok --config {bad}/bad.json", "bad.json is not valid JSON"),
    (
        "train-tokenizer --output {tmp}/tok --corpus {bad}/bad.xml --cache-dir {tmp}",
        "bad.xml is not a well-formed",
    ),
    # pretrain
    ("pretrain --out {tmp}/run --lr nan", "optim.lr must be a finite number > 0"),
    ("pretrain --out {tmp}/run --time-budget nan", "train.time_budget"),
    ("pretrain --out {tmp}/run --time-budget inf", "for no time limit leave it out"),
    ("pretrain --out {tmp}/run --device gpu", "train.device 'gpu' is not a device"),
    ("pretrain --out {tmp}/run --eval-batch-size -1", "train.eval_batch_size"),
    ("pretrain --out {tmp}/run --config {bad}/bad.yaml", "bad.yaml is not valid YAML"),
    ("pretrain --resume --out {bad}/run-list", "holds a JSON list"),
    ("pretrain --resume --out {bad}/run-noconfig", "has no 'config' section"),
    ("pretrain --resume --out {bad}/run-badjson", "run.json is not valid JSON"),
    ("pretrain --resume --out {bad}/run-damaged", "step-000002 (step 2) reads fine"),
    ("pretrain --resume --out {bad}/run-hopeless", "start it again with --overwrite"),
    # evaluate
    ("evaluate --run {bad}/run-badjson", "run.json is not valid JSON"),
    ("evaluate --run {bad}/run-list", "holds a JSON list"),
    ("evaluate --run {bad}/run-noconfig", "has no 'config' section"),
    ("evaluate --run {bad}/run-good --batch-size -1", "train.eval_batch_size"),
    ("evaluate --run {bad}/run-good --examples 0", "--examples must be a whole number >= 1"),
    ("evaluate --run {bad}/missing", "is not a directory"),
    ("evaluate", "the following arguments are required: --run"),
    # fill-mask
    ("fill-mask --model {bad}/missing x", "does not exist"),
    ("fill-mask --model {bad}/model-badjson [MASK]", "config.json"),
    ("fill-mask --model {bad}/model-badjson --top-k 0 [MASK]", "--top-k must be >= 1"),
    ("fill-mask --model {bad}/model-badjson --top-k abc [MASK]", "invalid int value"),
    # finetune
    ("finetune --out {tmp}/ft --config {bad}/bad.yaml", "bad.yaml is not valid YAML"),
    ("finetune --out {tmp}/ft --lr nan", "optim.lr must be a finite number > 0"),
    ("finetune --out {tmp}/ft --device gpu", "train.device 'gpu' is not a device"),
    ("finetune --out {tmp}/ft --time-budget inf", "train.time_budget"),
    ("finetune --out {tmp}/ft --init {bad}/run-list", "holds a JSON list"),
    ("finetune --out {tmp}/ft --init {bad}/run-badjson", "run.json is not valid JSON"),
    # demo
    ("demo --out {tmp}/demo --time-budget nan", "time_budget must be a finite number > 0"),
    ("demo --out {tmp}/demo --time-budget inf", "time_budget"),
    ("demo --out {tmp}/demo --config {bad}/bad.json", "bad.json is not valid JSON"),
]


def _argv(command: str, bad: Path, tmp: Path) -> list[str]:
    return [part.format(bad=bad, tmp=tmp) for part in command.split()]


def test_the_table_covers_every_verb():
    from minibert.cli import build_parser

    verbs = set(build_parser()._subparsers._group_actions[0].choices)
    assert verbs == {command.split()[0] for command, _ in BAD_INPUTS}


@pytest.mark.parametrize(("command", "expected"), BAD_INPUTS, ids=[c for c, _ in BAD_INPUTS])
def test_bad_input_exits_2_with_one_line(command, expected, bad, tmp_path, capsys):
    try:
        status = main(_argv(command, bad, tmp_path))
    except SystemExit as exit_:  # argparse's own usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"minibert {command.split()[0]}"), lines[0]
    assert expected in lines[0], lines[0]


def test_a_damaged_checkpoint_names_the_previous_one_and_how_to_resume(bad, tmp_path, capsys):
    run = bad / "run-damaged"
    assert main(["pretrain", "--resume", "--out", str(run)]) == 2
    line = capsys.readouterr().err.strip()
    assert f"checkpoint {run}/checkpoints/step-000004 is damaged: optimizer.pt" in line
    aside = f"mv {run}/checkpoints/step-000004 {run}/checkpoints/damaged-step-000004"
    assert aside in line and f"minibert pretrain --resume --out {run} again" in line


REAL_EXIT_PATH = [
    "prepare-data --config {bad}/bad.yaml",
    "pretrain --out {tmp}/run --lr nan",
    "pretrain --resume --out {bad}/run-damaged",
    "evaluate --run {bad}/run-list",
]


@pytest.mark.parametrize("command", REAL_EXIT_PATH)
def test_real_exit_path(command, bad, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "minibert", *_argv(command, bad, tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_unexpected_errors_are_one_line_with_status_1(monkeypatch, capsys):
    # A bug (not bad input) still gets one line, says so, and points at --verbose.
    import minibert.train.evaluate as evaluate

    def broken(*args, **kwargs):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(evaluate, "evaluate_run", broken)
    assert main(["evaluate", "--run", "x"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "internal error: RuntimeError: boom second line" in err
    assert "--verbose" in err
    with pytest.raises(RuntimeError):
        main(["--verbose", "evaluate", "--run", "x"])
