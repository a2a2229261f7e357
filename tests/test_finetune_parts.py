"""The fine-tuning package's parts on their own, without training: early stopping's decisions,
the cross-validation statistics and fold layout, and the one-job-per-module layout."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import minibert.train.finetune as finetune_package
from minibert.train.finetune import FinetuneConfig, FinetuneResult, InitSource
from minibert.train.finetune.crossval import cross_validate, fold_statistics
from minibert.train.finetune.early_stopping import (
    EarlyStopping,
    EarlyStoppingConfig,
    selection_metric,
)


def _stopper(metric: str = "macro_f1", **settings) -> EarlyStopping:
    return EarlyStopping(EarlyStoppingConfig(**settings), metric)


def test_early_stopping_stops_after_patience_evaluations_without_improvement():
    stopper, model = _stopper(patience=2), nn.Linear(2, 2)
    decisions = [stopper.update(step, score, model) for step, score in enumerate([0.5, 0.6, 0.6])]
    assert decisions == [False, False, False]  # 0.6 again is not an improvement, but 1 < 2
    assert stopper.best_step == 1 and stopper.best_score == 0.6
    assert stopper.update(3, 0.55, model) is True  # the second evaluation without improvement
    assert stopper.evaluations_without_improvement == 2


def test_early_stopping_loss_is_better_lower_and_min_delta_must_be_beaten():
    stopper, model = _stopper("loss", patience=0, min_delta=0.1), nn.Linear(2, 2)
    for step, loss in enumerate([1.0, 0.95, 0.85, 0.9]):
        assert stopper.update(step, loss, model) is False  # patience 0: never stops
    assert stopper.best_step == 2 and stopper.best_score == 0.85  # 0.95 was within min_delta


def test_early_stopping_keeps_a_copy_of_the_best_weights_only_when_asked():
    model = nn.Linear(2, 2)
    stopper, at_step_0 = _stopper(patience=3), model.weight.detach().clone()
    stopper.update(0, 0.5, model)
    with torch.no_grad():
        model.weight.add_(1.0)  # training goes on; the kept copy must not follow
    assert not torch.equal(stopper.best_state["weight"], model.weight)
    stopper.update(1, 0.4, model)  # worse: the kept copy is still step 0's
    assert torch.equal(stopper.best_state["weight"], at_step_0)
    forgetful = _stopper(restore_best=False)
    forgetful.update(0, 0.5, model)
    assert forgetful.best_state is None and forgetful.best_step == 0


def test_selection_metric_auto_and_a_tagging_metric_on_a_sequence_task():
    assert selection_metric("auto", "sequence") == "macro_f1"
    assert selection_metric("auto", "token") == "entity_f1"
    assert selection_metric("loss", "token") == "loss"
    with pytest.raises(ValueError, match="entity_f1 is for tagging tasks"):
        selection_metric("entity_f1", "sequence")


def _fold_result(run_dir: Path, accuracy: float, **extra) -> FinetuneResult:
    return FinetuneResult(
        run_dir=run_dir,
        task="sentiment",
        kind="sequence",
        init="random",
        labels=["negative", "positive"],
        stop_reason="max_steps",
        steps=2,
        elapsed=0.5,
        selection_metric="macro_f1",
        validation={"accuracy": accuracy, "examples": 40, **extra},
    )


def test_fold_statistics_by_hand():
    folds = [
        _fold_result(Path("a"), 0.5, macro_f1=0.4),
        _fold_result(Path("b"), 0.7),  # no macro_f1: it is left out, not averaged over fewer
        _fold_result(Path("c"), 0.6, macro_f1=0.5),
    ]
    stats = fold_statistics(folds)
    assert set(stats) == {"accuracy"}  # counts ("examples") are not averaged either
    assert stats["accuracy"]["mean"] == pytest.approx(0.6)
    assert stats["accuracy"]["std"] == pytest.approx(0.1)  # sample std: sqrt(0.02 / 2)
    assert (stats["accuracy"]["min"], stats["accuracy"]["max"]) == (0.5, 0.7)


def test_cross_validate_runs_each_fold_in_its_own_folder(tmp_path):
    config = dataclasses.replace(
        FinetuneConfig(), task=dataclasses.replace(FinetuneConfig().task, name="sentiment")
    )
    config.task.num_folds = 3
    seen = []

    def run_fold(fold_config: FinetuneConfig, fold_dir: Path) -> FinetuneResult:
        seen.append((fold_config.task.fold, fold_config.task.cross_validate, fold_dir.name))
        return _fold_result(fold_dir, [0.5, 0.6, 0.8][fold_config.task.fold])

    out = tmp_path / "cv"
    result = cross_validate(config, InitSource(kind="random", spec="random"), out, run_fold)
    assert seen == [(0, False, "fold-0"), (1, False, "fold-1"), (2, False, "fold-2")]
    accuracies = [0.5, 0.6, 0.8]
    assert result.validation["accuracy"] == pytest.approx(statistics.fmean(accuracies))
    assert result.steps == 6 and result.stop_reason == "cross_validation"
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "finetune-cv" and info["folds"] == [
        str(out / f"fold-{k}") for k in range(3)
    ]
    saved = json.loads((out / "results.json").read_text())
    assert saved["cross_validation"]["accuracy"]["std"] == pytest.approx(
        statistics.stdev(accuracies)
    )


def test_cross_validates_by_default_only_for_fold_tasks():
    assert not FinetuneConfig().cross_validates()  # wiki-topic has fixed splits
    sentiment = FinetuneConfig()
    sentiment.task.name = "sentiment"
    assert sentiment.cross_validates()
    sentiment.task.cross_validate = False
    assert not sentiment.cross_validates()
    topic = FinetuneConfig()
    topic.task.cross_validate = True
    with pytest.raises(ValueError, match="needs a task defined by folds"):
        topic.cross_validates()


def test_each_finetune_module_reads_in_one_sitting_and_the_old_names_stay():
    folder = Path(finetune_package.__file__).parent
    lengths = {p.name: len(p.read_text().splitlines()) for p in folder.glob("*.py")}
    assert len(lengths) >= 8 and max(lengths.values()) < 400, lengths
    # What callers imported from the single module before the split.
    for name in (
        "finetune",
        "FinetuneConfig",
        "FinetuneTaskConfig",
        "EarlyStoppingConfig",
        "FinetuneResult",
        "FinetuningTask",
        "InitSource",
        "EncodedSplit",
        "build_finetune_config",
        "encode_split",
        "minilm_dir",
        "next_free_dir",
        "predict",
        "resolve_init",
        "MINILM",
        "RESULTS_FILE",
        "PREDICTIONS_FILE",
        "CONFUSION_FILE",
    ):
        assert name in finetune_package.__all__ and hasattr(finetune_package, name), name
    assert callable(finetune_package.finetune)


# --------------------------------------------------------------------------------------------
# Crash-safe reports, the --out lock and --overwrite (issue 13), checked settings, run.json
# --------------------------------------------------------------------------------------------


def _sentiment_config(num_folds: int = 2) -> FinetuneConfig:
    config = FinetuneConfig()
    config.task.name, config.task.num_folds = "sentiment", num_folds
    return config


def _fake_fold(fold_config: FinetuneConfig, fold_dir: Path) -> FinetuneResult:
    fold_dir.mkdir(parents=True)
    (fold_dir / "run.json").write_text("{}")
    return _fold_result(fold_dir, 0.5 + 0.1 * fold_config.task.fold)


def test_report_files_are_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    from minibert.atomic import FAULT_ENV
    from minibert.train.finetune.data import EncodedSplit
    from minibert.train.finetune.predictions import SplitPredictions
    from minibert.train.finetune.report import write_json, write_predictions_file

    results = tmp_path / "results.json"
    results.write_text('{"old": true}\n')
    monkeypatch.setenv(FAULT_ENV, "fail:atomic_file:before_rename")  # e.g. a full disk
    with pytest.raises(OSError, match="injected failure"):
        write_json(results, {"new": True})
    monkeypatch.delenv(FAULT_ENV)
    assert json.loads(results.read_text()) == {"old": True}

    # predictions.jsonl: the second example fails mid-file (a label id the task does not have);
    # the previous file stays whole and no partial one is left behind.
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text('{"old": 1}\n')
    example = dataclasses.make_dataclass("Example", ["id", "text", "label", "text_pair"])
    split = EncodedSplit(
        "validation",
        [example("a", "good", 1, None), example("b", "bad", 0, None)],
        [[1], [1]],
        [[0], [0]],
        [1, 0],
    )
    broken = SplitPredictions(classes=[1, 7], probabilities=[[0.2, 0.8], [0.9, 0.1]])
    with pytest.raises(IndexError):
        write_predictions_file(predictions, "sequence", ["neg", "pos"], [(split, broken)])
    assert predictions.read_text() == '{"old": 1}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.jsonl", "results.json"]
    fine = SplitPredictions(classes=[1, 0], probabilities=[[0.2, 0.8], [0.9, 0.1]])
    write_predictions_file(predictions, "sequence", ["neg", "pos"], [(split, fine)])
    lines = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert [r["prediction"] for r in lines] == ["pos", "neg"] and all(r["correct"] for r in lines)


def test_cross_validation_summary_is_written_atomically(tmp_path, monkeypatch):
    from minibert.atomic import FAULT_ENV
    from minibert.versions import run_versions

    out = tmp_path / "cv"
    source = InitSource(kind="random", spec="random")
    monkeypatch.setenv(FAULT_ENV, "fail:atomic_file:before_rename")
    with pytest.raises(OSError, match="injected failure"):
        cross_validate(_sentiment_config(), source, out, _fake_fold)
    monkeypatch.delenv(FAULT_ENV)
    assert not (out / "run.json").exists() and not (out / "results.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no partial file either
    cross_validate(_sentiment_config(), source, out, _fake_fold, overwrite=True)
    info = json.loads((out / "run.json").read_text())
    assert info["versions"] == run_versions() and info["init"]["model_dir"] is None


def test_cross_validation_holds_the_lock_of_its_folder(tmp_path):
    from minibert.locking import FileLock, LockHeldError, run_lock_path

    out, refused = tmp_path / "cv", []

    def run_fold(fold_config: FinetuneConfig, fold_dir: Path) -> FinetuneResult:
        # Another process's lock attempt (a FileLock is its own open file, so it conflicts
        # with this process's lock just as a second process's would).
        with pytest.raises(LockHeldError, match=f"process {os.getpid()}") as caught:
            FileLock(run_lock_path(out)).acquire()
        refused.append(caught.value)
        return _fake_fold(fold_config, fold_dir)

    cross_validate(_sentiment_config(), InitSource(kind="random", spec="random"), out, run_fold)
    assert len(refused) == 2
    FileLock(run_lock_path(out)).acquire().release()  # released at the end


def test_cross_validation_overwrite_replaces_only_a_run(tmp_path):
    source, out = InitSource(kind="random", spec="random"), tmp_path / "cv"
    cross_validate(_sentiment_config(3), source, out, _fake_fold)
    with pytest.raises(FileExistsError, match="not empty. Pass --overwrite"):
        cross_validate(_sentiment_config(), source, out, _fake_fold)
    assert (out / "fold-2").is_dir()  # untouched
    cross_validate(_sentiment_config(2), source, out, _fake_fold, overwrite=True)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "fold-0",
        "fold-1",
        "results.json",
        "run.json",
    ]
    # A killed cross-validation (folds, no summary yet) is a run too; a user's folder is not.
    (out / "results.json").unlink()
    (out / "run.json").unlink()
    cross_validate(_sentiment_config(2), source, out, _fake_fold, overwrite=True)
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="refuses to empty.*todo.txt"):
        cross_validate(_sentiment_config(), source, notes, _fake_fold, overwrite=True)
    assert (notes / "todo.txt").read_text() == "mine"


@pytest.fixture
def no_task_loading(monkeypatch):
    """Fail the test if fine-tuning gets as far as loading the task (the slow part)."""
    import minibert.data.tasks

    def load_task(*args, **kwargs):
        raise AssertionError("the task was loaded before --out was checked")

    monkeypatch.setattr(minibert.data.tasks, "load_task", load_task)


def test_a_second_finetune_on_one_out_stops_at_once_naming_the_first(tmp_path, no_task_loading):
    from minibert.locking import LockHeldError
    from minibert.train.finetune import finetune

    out = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from minibert.locking import acquire_run_lock; "
            "acquire_run_lock(sys.argv[1]); print('held', flush=True); time.sleep(60)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockHeldError, match=f"process {holder.pid}.*choose another --out"):
            finetune(out=out, overrides={"task": "wiki-topic"})
    finally:
        holder.kill()
        holder.wait()
    assert not out.exists()


def test_overwrite_refuses_a_folder_that_is_not_a_run_before_any_work(tmp_path, no_task_loading):
    from minibert.train.finetune import finetune

    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="--overwrite refuses to empty.*thesis.tex"):
        finetune(out=out, overwrite=True, overrides={"task": "wiki-topic"})
    with pytest.raises(FileExistsError, match="refuses to empty.*working directory"):
        finetune(out=Path.cwd(), overwrite=True, overrides={"task": "wiki-topic"})
    assert (out / "thesis.tex").read_text() == "years of work"


def test_init_from_a_run_with_a_damaged_run_json_names_the_file(tmp_path):
    from minibert.train.finetune import resolve_init
    from minibert.train.preflight import InputFileError

    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text("[1, 2]")
    with pytest.raises(InputFileError, match=r"run.json holds a JSON list, not an object"):
        resolve_init(str(run))
    (run / "run.json").write_text('{"kind": "pretrain", "config": ')
    with pytest.raises(InputFileError, match=r"run.json is not valid JSON.*line 1"):
        resolve_init(str(run))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("epochs", float("nan"), "epochs must be a finite number > 0.*got nan; BERT"),
        ("epochs", float("inf"), "epochs must be a finite number"),
        ("evals_per_epoch", -1, "evals_per_epoch must be an integer >= 0.*e.g. 2"),
        ("classifier_dropout", float("nan"), r"classifier_dropout must be .* in \[0, 1\)"),
        ("early_stopping.patience", -2, "patience must be an integer >= 0.*never stop early"),
        ("early_stopping.min_delta", float("nan"), "min_delta must be a finite number >= 0"),
        ("early_stopping.min_delta", -0.1, "min_delta must be a finite number >= 0.*e.g. 0"),
        ("task.max_seq_len", 4, "max_seq_len must be an integer >= 8.*e.g. 128"),
        ("task.train_limit", 0, "train_limit must be an integer >= 1 .or none.*all of them"),
    ],
)
def test_settings_reject_non_finite_and_out_of_range_numbers(key, value, message):
    from minibert.train.finetune import build_finetune_config

    with pytest.raises(ValueError, match=message):
        build_finetune_config({key: value})


def test_run_json_versions_come_from_the_one_place_that_asks():
    import minibert.train.finetune.report as report

    assert not hasattr(report, "_versions")
