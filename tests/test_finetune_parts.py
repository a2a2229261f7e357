"""The fine-tuning package's parts on their own, without training: early stopping's decisions,
the cross-validation statistics and fold layout, and the one-job-per-module layout."""

from __future__ import annotations

import dataclasses
import json
import statistics
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
