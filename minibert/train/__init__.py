"""Training: the shared trainer, pretraining, run directories, checkpoints, metrics.

    from minibert.train import pretrain, read_metrics
    result = pretrain(out="runs/tiny", overrides={"preset": "tiny", "time_budget": 300})
    for record in read_metrics("runs/tiny", split="eval"):
        print(record["step"], record["mlm_loss"])

Names are imported lazily, so ``import minibert.train`` does not import torch until one is used.
See docs/training.md for the recipe, the run directory, resume and multi-GPU use.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    # configuration
    "PretrainConfig": "minibert.train.settings",
    "TrainConfig": "minibert.train.settings",
    "OptimConfig": "minibert.train.settings",
    "ObjectiveConfig": "minibert.train.settings",
    "apply_overrides": "minibert.train.overrides",
    "load_config_file": "minibert.train.overrides",
    # runs
    "pretrain": "minibert.train.pretraining",
    "build_pretrain_config": "minibert.train.pretraining",
    "PretrainingTask": "minibert.train.pretraining",
    "Trainer": "minibert.train.loop",
    "TrainingTask": "minibert.train.loop",
    "TrainingResult": "minibert.train.loop",
    "LossTerms": "minibert.train.loop",
    "NonFiniteLossError": "minibert.train.loop",
    "evaluate_task": "minibert.train.loop",
    "LRSchedule": "minibert.train.schedule",
    # run directories
    "RunDirectory": "minibert.train.rundir",
    "MetricsWriter": "minibert.train.rundir",
    "read_metrics": "minibert.train.rundir",
    "save_checkpoint": "minibert.train.checkpoint",
    "TrainerState": "minibert.train.checkpoint",
    # looking at runs
    "evaluate_run": "minibert.train.evaluate",
    "fill_mask": "minibert.train.evaluate",
    "load_masked_lm": "minibert.train.evaluate",
    # fine-tuning and the demo
    "finetune": "minibert.train.finetuning.run",
    "FinetuneConfig": "minibert.train.finetuning.settings",
    "FinetuneResult": "minibert.train.finetuning.report",
    "FinetuningTask": "minibert.train.finetuning.task",
    "run_demo": "minibert.train.demo",
    "DemoConfig": "minibert.train.demo",
    "DemoResult": "minibert.train.demo",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minibert.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
