"""k-fold cross-validation: one fine-tuning run per fold, then the mean and spread over folds.

A 200-sentence set (``sentiment``) has no validation split worth the name: one run's score
moves by several points with which 40 sentences it is tested on. Cross-validation trains
``task.num_folds`` models, each validated on a different fold, in ``<out>/fold-<k>/``, and
reports each metric's mean, sample standard deviation, minimum and maximum over folds.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

from minibert.atomic import write_json_atomic
from minibert.locking import acquire_run_lock
from minibert.train.finetune.initialization import InitSource
from minibert.train.finetune.outdir import prepare_parent_folder
from minibert.train.finetune.report import RESULTS_FILE, RUN_FORMAT_VERSION, FinetuneResult
from minibert.train.finetune.settings import FinetuneConfig
from minibert.train.overrides import config_to_dict
from minibert.versions import run_versions

__all__ = ["cross_validate", "fold_statistics"]

logger = logging.getLogger(__name__)

# (settings of one fold, its run directory) -> that fold's result
RunFold = Callable[[FinetuneConfig, Path], FinetuneResult]


def fold_statistics(folds: Sequence[FinetuneResult]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "std", "min", "max"}}`` over the folds' validation metrics.

    ``std`` is the sample standard deviation (n - 1). Counts (``examples``, ``entities``) are
    not averaged, and a metric missing from any fold is left out rather than averaged over
    fewer folds.
    """
    metric_names = [k for k in folds[0].validation if k not in ("examples", "entities")]
    stats: dict[str, dict[str, float]] = {}
    for name in metric_names:
        values = [float(f.validation[name]) for f in folds if f.validation.get(name) is not None]
        if len(values) != len(folds):
            continue
        stats[name] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
    return stats


def cross_validate(
    config: FinetuneConfig,
    source: InitSource,
    out: Path,
    run_fold: RunFold,
    *,
    overwrite: bool = False,
) -> FinetuneResult:
    """Run ``run_fold`` once per fold into ``out/fold-<k>/``; write ``out``'s ``run.json`` and
    ``results.json`` and return the folds' result with ``cross_validation`` statistics.

    ``out`` is locked for the whole cross-validation (each fold also locks its own folder), so
    a second run on it fails at once, naming this one's pid. A non-empty ``out`` needs
    ``overwrite``, which replaces only a run (see :mod:`~minibert.train.finetune.outdir`).
    """
    with acquire_run_lock(out):
        prepare_parent_folder(out, overwrite)
        return _cross_validate_locked(config, source, out, run_fold)


def _cross_validate_locked(
    config: FinetuneConfig, source: InitSource, out: Path, run_fold: RunFold
) -> FinetuneResult:
    started = datetime.datetime.now(datetime.timezone.utc).isoformat()
    folds: list[FinetuneResult] = []
    for fold in range(config.task.num_folds):
        logger.info("cross-validation: fold %d of %d", fold + 1, config.task.num_folds)
        fold_config = dataclasses.replace(
            config, task=dataclasses.replace(config.task, fold=fold, cross_validate=False)
        )
        folds.append(run_fold(fold_config, out / f"fold-{fold}"))
    first = folds[0]
    cross = fold_statistics(folds)
    result = FinetuneResult(
        run_dir=out,
        task=config.task.name,
        kind=first.kind,
        init=first.init,
        labels=first.labels,
        stop_reason="cross_validation",
        steps=sum(f.steps for f in folds),
        elapsed=sum(f.elapsed for f in folds),
        selection_metric=first.selection_metric,
        validation={name: stats["mean"] for name, stats in cross.items()},
        folds=folds,
        cross_validation=cross,
    )
    info = {
        "format_version": RUN_FORMAT_VERSION,
        "kind": "finetune-cv",
        "name": out.name,
        "created": started,
        "seed": config.train.seed,
        "config": config_to_dict(config),
        "init": {
            "spec": source.spec,
            "kind": source.kind,
            "model_dir": None if source.model_dir is None else str(source.model_dir),
        },
        "folds": [str(f.run_dir) for f in folds],
        "versions": run_versions(),
    }
    # Both written aside and renamed into place: a reader sees the whole file or none.
    write_json_atomic(out / "run.json", info)
    write_json_atomic(out / RESULTS_FILE, result.to_dict())
    return result
