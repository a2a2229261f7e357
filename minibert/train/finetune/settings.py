"""The settings of a fine-tuning run: which task, where the weights come from, how long.

Every field is a ``--key value`` option of ``minibert finetune`` (dotted, ``--task.max-seq-len``,
or bare when unambiguous, ``--max-seq-len``); :func:`build_finetune_config` applies such keys
from Python. The optimizer and trainer sections reuse pretraining's
:class:`~minibert.train.settings.OptimConfig` and :class:`~minibert.train.settings.TrainConfig`
with fine-tuning defaults (Devlin et al. 2019, App. A.3).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from minibert.train.finetune.early_stopping import EarlyStoppingConfig
from minibert.train.overrides import apply_overrides
from minibert.train.settings import OptimConfig, TrainConfig, check_number

__all__ = [
    "FOLD_TASKS",
    "SPLIT_SEED_TASKS",
    "FinetuneConfig",
    "FinetuneTaskConfig",
    "build_finetune_config",
]

FOLD_TASKS = ("sentiment",)  # tasks defined by k-fold cross-validation (no fixed validation split)
SPLIT_SEED_TASKS = ("wiki-topic", "sentiment", "wiki-mentions")  # tasks that take seed=


@dataclass
class FinetuneTaskConfig:
    """Which task, how its examples are cut, and which part of them is used."""

    name: str = "wiki-topic"  # see minibert.data.tasks.KNOWN_TASKS
    max_seq_len: int = 128  # WordPiece tokens per example, [CLS] and [SEP] included
    split_seed: int = 0  # the task's own split (articles, folds); fixed across training seeds
    fold: int = 0  # fold-defined tasks (sentiment): the validation fold of a single run
    num_folds: int = 5
    cross_validate: bool | None = None  # one run per fold; None: yes for fold-defined tasks
    train_limit: int | None = None  # use a random sample of this many training examples
    eval_limit: int | None = None  # ... and of this many validation (and test) examples
    options: dict[str, Any] = field(default_factory=dict)  # more load_task options

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"task.name must be a task name, got {self.name!r}")
        check_number(
            "task.max_seq_len", self.max_seq_len, low=8, integer=True, fix="e.g. 128 (BERT: 512)"
        )
        check_number("task.split_seed", self.split_seed, integer=True, fix="e.g. 0")
        check_number("task.num_folds", self.num_folds, low=2, high=100, integer=True, fix="e.g. 5")
        check_number(
            "task.fold",
            self.fold,
            low=0,
            high=self.num_folds - 1,
            integer=True,
            fix=f"a fold from 0 to task.num_folds - 1 = {self.num_folds - 1}",
        )
        for name in ("train_limit", "eval_limit"):
            check_number(
                f"task.{name}",
                getattr(self, name),
                low=1,
                integer=True,
                optional=True,
                fix="a number of examples, or none for all of them",
            )
        reserved = {"fold", "num_folds", "seed"} & set(self.options)
        if reserved:
            raise ValueError(
                f"task.options may not set {sorted(reserved)}: use task.fold, task.num_folds "
                "and task.split_seed"
            )

    def load_options(self, fold: int) -> dict[str, Any]:
        """The keyword arguments of :func:`~minibert.data.tasks.load_task` for ``fold``."""
        options = dict(self.options)
        if self.name in SPLIT_SEED_TASKS:
            options["seed"] = self.split_seed
        if self.name in FOLD_TASKS:
            options.update(fold=fold, num_folds=self.num_folds)
        return options


def _default_optim() -> OptimConfig:
    # BERT's fine-tuning optimizer (App. A.3: AdamW, linear decay, 10% warmup) with a learning
    # rate for small models. BERT-base's 2e-5..5e-5 is far too low for them; measured on
    # wiki-topic (validation macro-F1): the tiny preset from scratch, 3 epochs: 1e-4 0.06 (stuck
    # on the majority class), 3e-4 0.16, 5e-4 0.24, 1e-3 0.25; all-MiniLM-L6-v2, 1 epoch of
    # 64-token inputs: 1e-4 0.46, 5e-4 0.49. 5e-4 serves both.
    return OptimConfig(lr=5e-4, weight_decay=0.01, warmup_fraction=0.1, schedule="linear")


def _default_train() -> TrainConfig:
    return TrainConfig(
        batch_size=32,  # BERT's fine-tuning batch (App. A.3)
        eval_every=0,  # 0 here: evals_per_epoch decides
        eval_examples=2000,  # all of every offline task's validation split
        checkpoint_every=0,  # fine-tuning runs are short; a checkpoint is saved when they stop
        keep_checkpoints=1,
        log_every=10,
    )


@dataclass
class FinetuneConfig:
    """A whole fine-tuning run. Every field is a ``--key value`` option of ``minibert finetune``.

    The length of training is ``epochs`` unless ``train.max_steps`` is set;
    ``train.time_budget`` stops it earlier. Evaluations happen ``evals_per_epoch`` times per
    epoch unless ``train.eval_every`` (steps) is set.
    """

    KEY_ALIASES: ClassVar[dict[str, str]] = {"task": "task.name", "seed": "train.seed"}

    task: FinetuneTaskConfig = field(default_factory=FinetuneTaskConfig)
    init: str = "random"  # random | minilm | a minibert run | a BERT model folder
    tokenizer: str | None = None  # a tokenizer folder or minibert run (default: init's own)
    preset: str | None = None  # random init size (default: tokenizer's run, else tiny)
    classifier_dropout: float | None = None  # dropout before the classifier (None: hidden's)
    epochs: float | None = 3.0  # passes over the training set (BERT: 2 to 4)
    evals_per_epoch: int = 2  # validation evaluations per epoch (when train.eval_every is 0)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    optim: OptimConfig = field(default_factory=_default_optim)
    train: TrainConfig = field(default_factory=_default_train)

    def __post_init__(self) -> None:
        from minibert.config import PRESETS

        if not isinstance(self.init, str) or not self.init:
            raise ValueError(
                "init must be 'random', 'minilm', a minibert run directory or a BERT folder"
            )
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r} is unknown; use one of {', '.join(PRESETS)}")
        if self.preset is not None and self.init != "random":
            raise ValueError(
                f"preset={self.preset!r} only applies to init=random (a pretrained init brings "
                "its own size); drop --preset or use --init random"
            )
        check_number(
            "classifier_dropout",
            self.classifier_dropout,
            low=0,
            high=1,
            high_open=True,
            optional=True,
            fix="e.g. 0.1, or none to use the model's hidden dropout",
        )
        check_number(
            "epochs",
            self.epochs,
            low=0,
            low_open=True,
            optional=True,
            fix="BERT fine-tunes for 2 to 4; none to stop by train.max_steps or time_budget",
        )
        check_number(
            "evals_per_epoch",
            self.evals_per_epoch,
            low=0,
            integer=True,
            fix="e.g. 2 (0: only train.eval_every decides when to evaluate)",
        )

    def cross_validates(self) -> bool:
        """Whether this run is a k-fold cross-validation (``task.cross_validate``; by default
        yes for the tasks defined by folds, which have no fixed validation split)."""
        wanted = self.task.cross_validate
        if wanted is None:
            return self.task.name in FOLD_TASKS
        if wanted and self.task.name not in FOLD_TASKS:
            raise ValueError(
                f"task.cross_validate needs a task defined by folds ({', '.join(FOLD_TASKS)}); "
                f"{self.task.name!r} has fixed train/validation/test splits"
            )
        return bool(wanted)


def build_finetune_config(
    overrides: Mapping[str, Any] | None = None, base: FinetuneConfig | None = None
) -> FinetuneConfig:
    """``base`` (or the defaults) with ``overrides`` (``{"lr": 3e-5, "task": "sentiment"}``)."""
    return apply_overrides(base or FinetuneConfig(), dict(overrides or {}))
