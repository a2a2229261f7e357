"""The fine-tuning run: check the settings, load the task, train, keep the best, report.

:func:`finetune` checks everything cheap first (task name, ``init``, ``out``), then either runs
once (:func:`finetune_once`) or once per fold (:mod:`~minibert.train.finetune.crossval`).
Fine-tuning runs in one process (one CPU or GPU): the tasks are small, and macro-F1 and early
stopping need all validation predictions in one place. Runs are short and are not resumed (the
checkpoint written when training stops is there to inspect); start again with ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from minibert.locking import acquire_run_lock
from minibert.train.finetune.crossval import cross_validate
from minibert.train.finetune.data import encode_split, sample_examples
from minibert.train.finetune.initialization import (
    InitSource,
    build_model,
    resolve_init,
    tokenizer_for,
)
from minibert.train.finetune.outdir import check_out
from minibert.train.finetune.report import (
    RESULTS_FILE,
    RUN_FORMAT_VERSION,
    FinetuneResult,
    report_final_weights,
    write_json,
)
from minibert.train.finetune.settings import FOLD_TASKS, FinetuneConfig, build_finetune_config
from minibert.train.finetune.task import FinetuningTask
from minibert.train.loop import Trainer
from minibert.train.metrics import require_seqeval
from minibert.train.overrides import config_to_dict
from minibert.train.rundir import RunDirectory
from minibert.train.settings import TrainConfig
from minibert.versions import run_versions

__all__ = ["finetune", "finetune_once", "next_free_dir"]

logger = logging.getLogger(__name__)


def finetune(
    config: FinetuneConfig | None = None,
    out: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
) -> FinetuneResult:
    """Fine-tune on a task and write the run directory ``out`` (see :mod:`minibert.train.finetune`).

    Args:
        config: the settings (default: :class:`FinetuneConfig`).
        out: the run directory; must be missing or empty unless ``overwrite``. It is locked
            until this returns: a second run on it fails at once, naming this one. Default
            ``runs/finetune-<task>`` (or the next free ``-2``, ``-3``...), so a notebook can
            call this again without clearing anything.
        overrides: ``{key: value}`` on top of ``config``, keys as on the command line
            (``"task"``, ``"init"``, ``"lr"``, ``"early_stopping.patience"``, ...).
        overwrite: replace the run in ``out`` (refused if ``out`` holds anything but a run).
        cache_dir: the data cache, used when a random init takes the default tokenizer.

    Returns:
        A :class:`FinetuneResult` (``.summary()`` prints it).

    Raises:
        ValueError: an unknown task, an ``init`` that is not a BERT model or minibert run, a
            fine-tuned ``init`` of the other kind, settings that do not fit the data.
        FileExistsError: ``out`` is not empty and not ``overwrite``, or ``overwrite`` but
            ``out`` holds something other than a run.
        LockHeldError: another process is writing ``out`` (its pid is in the message).
        HubUnavailableError: a hub task (sst2, conll2003) while offline.
    """
    config = build_finetune_config(overrides, config)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(
            "fine-tuning runs in one process (the tasks are small and early stopping needs all "
            "validation predictions in one place); start it without torchrun"
        )
    # Everything that can be checked cheaply is checked before any slow work.
    _check_task_name(config.task.name)
    source = resolve_init(config.init)
    out = next_free_dir("runs", f"finetune-{config.task.name}") if out is None else Path(out)
    # Lock --out before the slow work (loading the task, building the model) and hold it to the
    # end, so a second run on it stops at once, naming this one's pid.
    with acquire_run_lock(out):
        check_out(out, overwrite)
        if not config.cross_validates():
            return finetune_once(config, source, out, overwrite=overwrite, cache_dir=cache_dir)

        def run_fold(fold_config: FinetuneConfig, fold_dir: Path) -> FinetuneResult:
            return finetune_once(fold_config, source, fold_dir, cache_dir=cache_dir)

        return cross_validate(config, source, out, run_fold, overwrite=overwrite)


def finetune_once(
    config: FinetuneConfig,
    source: InitSource,
    out: Path,
    *,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
) -> FinetuneResult:
    """One fine-tuning run (one fold of a cross-validation, or the whole run)."""
    from minibert.data.tasks import load_task
    from minibert.train.checkpoint import save_checkpoint
    from minibert.train.distributed import setup_distributed
    from minibert.train.pretrain import configure_threads

    task_config = config.task
    task = load_task(task_config.name, **task_config.load_options(task_config.fold))
    if task.kind == "token":
        require_seqeval()  # fail now, not after training
    limit, seed = task_config.eval_limit, task_config.split_seed
    train_examples = sample_examples(task.train, task_config.train_limit, seed, "train")
    validation_examples = sample_examples(task.validation, limit, seed, "validation")
    test_examples = sample_examples(task.test, limit, seed, "test") if task.test else []
    batch_size = config.train.batch_size
    if len(train_examples) < batch_size:
        raise ValueError(
            f"{task.name} has {len(train_examples)} training examples here (task.train_limit="
            f"{task_config.train_limit}), fewer than one batch of train.batch_size={batch_size}; "
            "lower the batch size or use more examples"
        )
    if not validation_examples:
        raise ValueError(f"{task.name} has no validation examples to select the model on")

    tokenizer, tokenizer_origin, architecture_dir = tokenizer_for(config, source, cache_dir)
    model = build_model(config, source, task.kind, task.labels, tokenizer, architecture_dir)

    max_len = task_config.max_seq_len
    train_split = encode_split("train", train_examples, task.kind, tokenizer, max_len)
    validation_split = encode_split(
        "validation", validation_examples, task.kind, tokenizer, max_len
    )
    test_split = (
        encode_split("test", test_examples, task.kind, tokenizer, max_len)
        if test_examples
        else None
    )
    # Evaluations during training use the first train.eval_examples validation examples.
    periodic = validation_split.head(config.train.eval_examples)
    train = _training_length(config, len(train_split))

    context = setup_distributed(train.device)
    run: RunDirectory | None = None
    try:
        threads = configure_threads(train.num_threads, context)
        eval_batch_size = train.eval_batch_size or train.micro_batch_size
        finetuning = FinetuningTask(
            model,
            tokenizer,
            task.kind,
            task.labels,
            train_split,
            periodic,
            eval_batch_size=eval_batch_size,
            early_stopping=config.early_stopping,
        )
        run = RunDirectory.create(out, overwrite=overwrite)
        info = {
            "format_version": RUN_FORMAT_VERSION,
            "kind": "finetune",
            "name": run.root.name,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(),
            "seed": train.seed,
            "config": config_to_dict(dataclasses.replace(config, train=train)),
            "init": {
                "spec": source.spec,
                "kind": source.kind,
                "model_dir": None if source.model_dir is None else str(source.model_dir),
                "architecture": source.architecture,
                "source_run": None if source.run_info is None else source.run_info.get("name"),
            },
            "tokenizer": tokenizer_origin,
            "task": {
                "name": task.name,
                "kind": task.kind,
                "labels": list(task.labels),
                "description": task.description,
                "fold": task_config.fold if task.name in FOLD_TASKS else None,
                "examples": {
                    "train": len(train_split),
                    "validation": len(validation_split),
                    "test": 0 if test_split is None else len(test_split),
                    "periodic_eval": len(periodic),
                },
            },
            "model": {"class": type(model).__name__, "parameters": model.num_parameters()},
            "versions": run_versions(),
            "runtime": {
                "device": str(context.device),
                "num_threads": threads,
                "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            },
        }
        run.write_run_json(info)
        run.write_tokenizer(finetuning.save_extras)  # all at once: never half a tokenizer
        logger.info(
            "fine-tuning %s (%s parameters, from %s) on %s: %d train / %d validation examples, "
            "%s steps",
            type(model).__name__,
            f"{model.num_parameters():,}",
            source.describe(),
            task.name,
            len(train_split),
            len(validation_split),
            train.max_steps if train.max_steps is not None else "time-limited",
        )
        trainer = Trainer(finetuning, config.optim, train, run, context)
        training = trainer.fit()

        # final/ holds the last step's weights; with restore_best it is rewritten with the
        # best evaluation's, unless the last step was the best.
        final_step = training.step
        weights = "last"
        if (
            training.final_dir is not None
            and config.early_stopping.restore_best
            and finetuning.best_state is not None
            and finetuning.best_step != training.step
        ):
            model.load_state_dict(finetuning.best_state)
            save_checkpoint(
                run.final_dir, save_model=finetuning.save_model, extra_files=finetuning.save_extras
            )
            final_step, weights = finetuning.best_step, "best"
            logger.info("final/ holds the best evaluation's weights (step %d)", final_step)
        elif finetuning.best_step == training.step:
            weights = "best"

        result = FinetuneResult(
            run_dir=run.root,
            task=task.name,
            kind=task.kind,
            init=source.spec,
            labels=list(task.labels),
            stop_reason=training.stop_reason,
            steps=training.step,
            elapsed=training.elapsed,
            selection_metric=finetuning.selection_metric,
            best_step=finetuning.best_step,
            final_step=final_step,
            final_dir=training.final_dir,
            training=training,
        )
        if training.final_dir is None:  # stopped by a signal: no final/ to evaluate
            write_json(run.root / RESULTS_FILE, result.to_dict())
            return result

        report_final_weights(
            run,
            result,
            finetuning,
            training,
            [validation_split] + ([test_split] if test_split is not None else []),
            weights=weights,
            batch_size=eval_batch_size,
            device=context.device,
            autocast_dtype=trainer.autocast_dtype,
        )
        logger.info(
            "fine-tuning done: validation %s %.4f; results in %s",
            result.selection_metric,
            result.validation.get(result.selection_metric, float("nan")),
            run.root,
        )
        return result
    finally:
        if run is not None:
            run.close()  # its share of the lock; finetune() holds its own until it returns
        context.close()


def _training_length(config: FinetuneConfig, train_examples: int) -> TrainConfig:
    """``config.train`` with ``max_steps`` from ``epochs`` and ``eval_every`` from
    ``evals_per_epoch``, where those are not set in steps."""
    steps_per_epoch = train_examples // config.train.batch_size
    train = config.train
    changes: dict[str, Any] = {}
    if train.max_steps is None and config.epochs is not None:
        changes["max_steps"] = max(1, math.ceil(config.epochs * steps_per_epoch))
    if train.eval_every == 0 and config.evals_per_epoch > 0:
        changes["eval_every"] = max(1, steps_per_epoch // config.evals_per_epoch)
    if train.eval_examples == 0:
        logger.warning("train.eval_examples is 0: no validation during training, no early stop")
    return dataclasses.replace(train, **changes)


def next_free_dir(root: str | Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``... if it is taken (exists and is not empty)."""
    root = Path(root)
    candidate, n = root / name, 2
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        candidate, n = root / f"{name}-{n}", n + 1
    return candidate


def _check_task_name(name: str) -> None:
    from minibert.data.tasks import KNOWN_TASKS

    if name not in KNOWN_TASKS:
        known = "; ".join(f"{k}: {v}" for k, v in KNOWN_TASKS.items())
        raise ValueError(f"unknown task {name!r}. Known tasks: {known}")
