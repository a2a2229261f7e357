"""Pretraining: masked language modelling, optionally + next-sentence prediction (Devlin et al.
2019, Sec. 3.1). The recipe packs whole sentences and leaves NSP off (``objective.nsp``).

:func:`pretrain` is the whole run: prepare the data (cached), build examples, build the model,
hand a :class:`PretrainingTask` to the shared :class:`~minibert.train.loop.Trainer`, and write
the run directory. ``minibert pretrain`` is a thin command line over it.

    from minibert.train import PretrainConfig, pretrain
    result = pretrain(PretrainConfig(), out="runs/tiny", overrides={"max_steps": 300})
    print(result.summary())

The training loop uses the sparse MLM path: the collator returns the masked positions (B, M),
the model computes vocabulary logits only there, which on a small model is most of the cost,
and runs its last layer only there too (``sparse_last_layer=True``, minibert/sparse.py).
"""

from __future__ import annotations

import datetime
import logging
import math
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from minibert.config import BertConfig
from minibert.constants import IGNORE_INDEX
from minibert.data.examples import MaskingCollator, create_pretraining_examples
from minibert.data.pipeline import prepare_data
from minibert.data.tokenizer import save_tokenizer
from minibert.heads import BertForMaskedLM, BertForPreTraining
from minibert.init import recipe_init_, unigram_log_prior
from minibert.locking import acquire_run_lock
from minibert.train.distributed import DistributedContext, setup_distributed
from minibert.train.loop import (
    LossTerms,
    Trainer,
    TrainingResult,
    TrainingTask,
    derive_seed,
    resolve_precision,
)
from minibert.train.overrides import (
    apply_overrides,
    config_from_dict,
    config_keys,
    config_to_dict,
    resolve_key,
)
from minibert.train.preflight import resumable_checkpoint
from minibert.train.rundir import RunDirectory, why_not_a_run
from minibert.train.settings import PretrainConfig
from minibert.versions import run_versions

__all__ = [
    "RESUMABLE_KEYS",
    "PretrainingTask",
    "available_cores",
    "build_eval_examples",
    "build_examples",
    "build_pretrain_config",
    "configure_threads",
    "pretrain",
    "unigram_log_prior",
]

logger = logging.getLogger(__name__)

RUN_FORMAT_VERSION = 1

# Settings a resumed run may change: how long it goes on and how it reports. Everything else
# would make the continued run a different experiment from the one its checkpoints belong to.
RESUMABLE_KEYS = (
    "train.max_steps",
    "train.time_budget",
    "train.eval_every",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.log_every",
    "train.progress",
    "train.num_threads",
    "train.device",
)


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


def build_pretrain_config(
    overrides: Mapping[str, Any] | None = None, base: PretrainConfig | None = None
) -> PretrainConfig:
    """The defaults (or ``base``) with ``overrides`` applied, ``preset`` first.

    ``preset`` (tiny, mini, small, base) replaces the model section with that size before any
    ``model.*`` override is applied, so ``--preset mini --model.num_hidden_layers 2`` means
    "mini, but two layers".
    """
    config = base or PretrainConfig()
    overrides = dict(overrides or {})
    preset_key = next((k for k in overrides if resolve_key(config, k) == "preset"), None)
    if preset_key is not None:
        preset = str(overrides.pop(preset_key))
        model = BertConfig.preset(preset, vocab_size=config.data.vocab_size)
        # Keep the recipe's non-size choices (dropout, init scale) from the current model
        # section.
        model = model.replace(
            hidden_dropout_prob=config.model.hidden_dropout_prob,
            attention_probs_dropout_prob=config.model.attention_probs_dropout_prob,
            initializer_range=config.model.initializer_range,
        )
        config = PretrainConfig(
            preset=preset,
            model=model,
            data=config.data,
            objective=config.objective,
            init=config.init,
            optim=config.optim,
            train=config.train,
        )
    return apply_overrides(config, overrides)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def configure_threads(num_threads: int | None, context: DistributedContext) -> int:
    """Set torch's CPU threads: all available cores, shared among this machine's processes."""
    if num_threads is None:
        num_threads = max(1, available_cores() // max(context.local_world_size, 1))
    torch.set_num_threads(num_threads)
    return num_threads


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class PretrainingTask(TrainingTask):
    """MLM (+ NSP) on examples built from prepared data, for :class:`Trainer`.

    Args:
        config: the run's configuration (model, objective, batch sizes).
        tokenizer: the trained WordPiece tokenizer.
        train_examples / eval_examples: :class:`~minibert.data.examples.PretrainingExample`
            lists; ``eval_examples`` is the fixed held-out subset.
        model: an existing model (else one is built from ``config.model``).
    """

    def __init__(
        self,
        config: PretrainConfig,
        tokenizer: Any,
        train_examples: Sequence[Any],
        eval_examples: Sequence[Any],
        model: nn.Module | None = None,
    ) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.train_examples = list(train_examples)
        self.eval_examples = list(eval_examples)
        self.nsp = config.objective.nsp
        self.term_names = ("mlm", "nsp") if self.nsp else ("mlm",)
        if model is None:
            # Without NSP the pooler and NSP layer would get no gradient (and DDP would
            # complain about unused parameters), so the MLM-only model is trained instead.
            model_class = BertForPreTraining if self.nsp else BertForMaskedLM
            model = model_class(config.model)
            prior = None
            if config.init.mlm_bias_init == "unigram":
                specials = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
                prior = unigram_log_prior(
                    self.train_examples,
                    config.model.vocab_size,
                    never_targets=[tokenizer.convert_tokens_to_ids(t) for t in specials],
                )
            recipe_init_(model, config.init, unigram_prior=prior)
        self.model = model
        objective = config.objective
        collator_args = dict(
            mlm_probability=objective.mlm_probability,
            whole_word_masking=objective.whole_word_masking,
            max_predictions=objective.max_predictions,
            return_masked_positions=True,
        )
        self.collator = MaskingCollator(tokenizer, seed=0, **collator_args)
        eval_args = dict(
            collator_args,
            mlm_probability=objective.eval_mlm_probability,
            max_predictions=objective.eval_max_predictions,
        )
        self.eval_collator = MaskingCollator(tokenizer, seed=objective.eval_mask_seed, **eval_args)
        self._eval_batches: list[dict[str, torch.Tensor]] | None = None

    def num_train_examples(self) -> int:
        return len(self.train_examples)

    def train_batch(self, indices: Sequence[int], seed: int) -> dict[str, torch.Tensor]:
        self.collator.reseed(seed)
        return self.collator([self.train_examples[i] for i in indices])

    def eval_batches(self) -> list[dict[str, torch.Tensor]]:
        """The held-out subset, masked once with ``objective.eval_mask_seed`` and kept.

        All examples are masked in one call, then cut into batches, so the masks (and the
        metrics) do not depend on the batch size or on the number of processes.
        """
        if self._eval_batches is None:
            self._eval_batches = []
            if self.eval_examples:
                size = self.config.train.eval_batch_size or self.config.train.micro_batch_size
                self.eval_collator.reseed(self.config.objective.eval_mask_seed)
                everything = self.eval_collator(self.eval_examples)
                self._eval_batches = [
                    {key: value[start : start + size] for key, value in everything.items()}
                    for start in range(0, len(self.eval_examples), size)
                ]
        return self._eval_batches

    def item_counts(self, batch: Mapping[str, torch.Tensor]) -> dict[str, float]:
        targets = batch["labels"].gather(1, batch["masked_positions"])  # (B, M)
        counts = {"mlm": float((targets != IGNORE_INDEX).sum())}
        if self.nsp:
            counts["nsp"] = float(batch["input_ids"].shape[0])
        return counts

    def loss_terms(self, model: nn.Module, batch: Mapping[str, torch.Tensor]) -> LossTerms:
        """Summed MLM (and NSP) cross-entropy from the model's own mean losses.

        The model returns means; multiplying by the item count gives the sums the trainer
        needs for token-weighted averaging across micro-batches and processes.
        """
        inputs = dict(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            labels=batch["labels"],
            masked_positions=batch["masked_positions"],
            sparse_last_layer=True,  # same loss and gradients, less work (minibert/sparse.py)
        )
        if self.nsp:
            inputs["next_sentence_label"] = batch["next_sentence_label"]
        out = model(**inputs)
        if self.nsp:
            logits, mlm_mean = out.prediction_logits, out.mlm_loss  # (B, M, V)
        else:
            logits, mlm_mean = out.logits, out.loss  # (B, M, V)
        targets = batch["labels"].gather(1, batch["masked_positions"])  # (B, M)
        real = targets != IGNORE_INDEX  # (B, M)
        n_masked = real.sum()
        # With nothing to predict in this slice the model's mean is NaN (0/0); use a zero that
        # keeps the head in the graph (DDP expects a gradient for every parameter).
        mlm_sum = mlm_mean.float() * n_masked if int(n_masked) > 0 else logits.float().sum() * 0.0
        with torch.no_grad():
            mlm_correct = ((logits.argmax(dim=-1) == targets) & real).sum()
        losses = {"mlm": mlm_sum}
        correct = {"mlm": mlm_correct}
        if self.nsp:
            nsp_labels = batch["next_sentence_label"]  # (B,)
            losses["nsp"] = out.nsp_loss.float() * nsp_labels.shape[0]
            with torch.no_grad():
                correct["nsp"] = (out.seq_relationship_logits.argmax(dim=-1) == nsp_labels).sum()
        return LossTerms(losses=losses, correct=correct)

    def derived_metrics(self, metrics: Mapping[str, float]) -> dict[str, float]:
        if "mlm_loss" in metrics:
            return {"mlm_perplexity": math.exp(min(metrics["mlm_loss"], 50.0))}
        return {}

    def save_model(self, directory: Path) -> None:
        self.model.save_pretrained(directory)

    def save_extras(self, directory: Path) -> None:
        save_tokenizer(self.tokenizer, directory)


def _example_settings(config: PretrainConfig, *, held_out: bool = False) -> dict[str, Any]:
    objective = config.objective
    return dict(
        max_seq_len=config.data.max_seq_len,
        nsp=objective.nsp,
        short_seq_prob=objective.short_seq_prob,
        # The held-out examples keep one format whatever the training packing is, so the
        # accuracies of runs with different packings compare.
        packing="full_sentences" if held_out else objective.packing,
    )


def build_eval_examples(config: PretrainConfig, data: Any, count: int | None = None) -> list[Any]:
    """The fixed held-out subset: the first ``count`` (default ``train.eval_examples``)
    examples cut from the validation documents (never trained on) with their own seed."""
    count = config.train.eval_examples if count is None else count
    if count <= 0:
        return []
    examples = create_pretraining_examples(
        data.valid_ids,
        data.tokenizer,
        seed=config.objective.example_seed + 1,
        **_example_settings(config, held_out=True),
    )
    return examples[:count]


def build_examples(config: PretrainConfig, data: Any) -> tuple[list[Any], list[Any]]:
    """Training examples (from the training documents) and the fixed held-out subset."""
    train_examples = create_pretraining_examples(
        data.train_ids,
        data.tokenizer,
        seed=config.objective.example_seed,
        dupe_factor=config.objective.dupe_factor,
        **_example_settings(config),
    )
    return train_examples, build_eval_examples(config, data)


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------


def _resume_config(
    run: RunDirectory, overrides: Mapping[str, Any] | None
) -> tuple[PretrainConfig, dict[str, Any]]:
    from minibert.train.preflight import read_run_info

    info = read_run_info(run.root, kind="pretrain")  # names run.json if it is damaged
    config = config_from_dict(PretrainConfig, info["config"])
    changed = apply_overrides(config, dict(overrides or {}))
    # Repeating the original command with --resume is fine; changing the recipe is not.
    recorded_values, new_values = config_to_dict(config), config_to_dict(changed)
    for key in config_keys(config):
        if key in RESUMABLE_KEYS:
            continue
        before, after = recorded_values, new_values
        for part in key.split("."):
            before, after = before[part], after[part]
        if before != after:
            raise ValueError(
                f"--{key} cannot change when resuming (the checkpoints were trained with "
                f"{key}={before!r}, as recorded in run.json). Settings a resume may change: "
                f"{', '.join(RESUMABLE_KEYS)}"
            )
    return changed, info


def pretrain(
    config: PretrainConfig | None = None,
    out: str | Path = "runs/pretrain",
    *,
    overrides: Mapping[str, Any] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
) -> TrainingResult:
    """Pretrain a BERT and write the run directory ``out``.

    Args:
        config: the run's settings (default: :class:`PretrainConfig`'s recipe).
        out: the run directory. Must be missing or empty unless ``resume`` or ``overwrite``.
        overrides: ``{key: value}`` applied on top of ``config`` (keys as on the command line:
            ``"lr"``, ``"optim.lr"``, ``"preset"``...). With ``resume`` only
            :data:`RESUMABLE_KEYS` may change.
        resume: continue the run in ``out`` from its newest checkpoint, with its recorded config.
        overwrite: replace the run in ``out`` (refused if ``out`` holds anything but a run).
        cache_dir: the data cache (default ``$MINIBERT_CACHE`` or ``~/.cache/minibert``).

    Returns:
        A :class:`~minibert.train.loop.TrainingResult` (``.summary()`` prints it).

    Raises:
        FileExistsError: ``out`` is not empty and neither ``resume`` nor ``overwrite``, or
            ``overwrite`` but ``out`` holds something other than a run.
        FileNotFoundError: ``resume`` but ``out`` has no checkpoint.
        NonFiniteLossError: the loss became NaN/inf (the last good checkpoint is kept).
        LockHeldError: another process is running in ``out`` (its pid is in the message).
    """
    if resume and overwrite:
        raise ValueError("--resume and --overwrite contradict each other; pass one of them")
    if resume and config is not None:
        raise ValueError(
            "a resumed run uses the config recorded in its run.json; pass overrides "
            "(e.g. a longer max_steps) instead of a config"
        )
    # Check and lock the run directory before any slow work, so a wrong --out, or one another
    # run is writing, fails at once. Only rank 0 writes the run directory, so only it locks.
    owns_run = int(os.environ.get("RANK", "0")) == 0
    run_lock = acquire_run_lock(out) if owns_run else None
    try:
        return _pretrain_locked(config, out, overrides, resume, overwrite, cache_dir, owns_run)
    finally:
        if run_lock is not None:
            run_lock.release()


def _pretrain_locked(
    config: PretrainConfig | None,
    out: str | Path,
    overrides: Mapping[str, Any] | None,
    resume: bool,
    overwrite: bool,
    cache_dir: str | Path | None,
    owns_run: bool,
) -> TrainingResult:
    resume_info: dict[str, Any] | None = None
    run: RunDirectory | None = None
    if resume:
        # Rank 0 checks the run and repairs what a killed save left; the others only read.
        run = RunDirectory.open_for_resume(out) if owns_run else RunDirectory(out)
        config, resume_info = _resume_config(run, overrides)
        # A damaged newest checkpoint fails here, naming the file and the previous checkpoint,
        # rather than after the data is prepared.
        resumable_checkpoint(run.checkpoints(), f"minibert pretrain --resume --out {out}")
    else:
        config = build_pretrain_config(overrides, config)
        target = Path(out)
        if target.is_dir() and any(target.iterdir()):
            if not overwrite:
                raise FileExistsError(
                    f"--out {target} already exists and is not empty. Pass --resume to "
                    "continue that run, --overwrite to replace it, or choose another --out."
                )
            reason = why_not_a_run(target)
            if reason is not None:
                raise FileExistsError(
                    f"--overwrite refuses to empty {target}: {reason}. It replaces only a "
                    "minibert run directory (one with run.json) or an empty one; choose "
                    "another --out, or move those files away first."
                )
    context = setup_distributed(config.train.device)
    try:
        threads = configure_threads(config.train.num_threads, context)
        # Every process asks for the data; the cache entry's lock lets the first build it while
        # the others (here, or on machines sharing the cache folder) wait, then read it.
        data = prepare_data(
            config.data, cache_dir, progress=context.is_main and config.train.progress
        )
        if not context.same_everywhere(data.fingerprint + data.tokenizer_fingerprint):
            raise ValueError(
                "the processes prepared different data or tokenizers (each machine built its "
                "own cache). Prepare the data once and share the cache: put MINIBERT_CACHE on a "
                "shared filesystem or copy one machine's cache to the others."
            )
        if resume_info is not None:
            recorded = resume_info.get("data", {})
            for key in ("data_fingerprint", "tokenizer_fingerprint"):
                if recorded.get(key) and recorded[key] != data.run_info()[key]:
                    raise ValueError(
                        f"the prepared data no longer matches the run ({key} changed from "
                        f"{recorded[key][:12]} to {data.run_info()[key][:12]}): the corpus, the "
                        "cleaning or a library version changed. Start a new run instead."
                    )
        vocab_size = len(data.tokenizer)
        if config.model.vocab_size != vocab_size:
            config = apply_overrides(config, {"model.vocab_size": vocab_size})
        train_examples, eval_examples = build_examples(config, data)
        # The same initial weights on every process and for every rerun with this seed.
        torch.manual_seed(derive_seed(config.train.seed, "init"))
        task = PretrainingTask(config, data.tokenizer, train_examples, eval_examples)

        if resume:
            checkpoint = run.latest_checkpoint()
        else:
            checkpoint = None
            if context.is_main:
                run = RunDirectory.create(out, overwrite=overwrite)
            context.barrier()
            if not context.is_main:
                run = RunDirectory(out)
        if context.is_main:
            precision = resolve_precision(config.train.precision, context.device)
            info = {
                "format_version": RUN_FORMAT_VERSION,
                "kind": "pretrain",
                "name": run.root.name,
                "created": (resume_info or {}).get(
                    "created", datetime.datetime.now(datetime.timezone.utc).isoformat()
                ),
                "seed": config.train.seed,
                "config": config_to_dict(config),
                "data": data.run_info(),
                "versions": run_versions(),
                "runtime": {
                    "device": str(context.device),
                    "world_size": context.world_size,
                    "num_threads": threads,
                    "precision": "fp32" if precision is None else "bf16-autocast",
                    "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
                },
                "model": {
                    "class": type(task.model).__name__,
                    "parameters": task.model.num_parameters(),
                },
                "examples": {"train": len(train_examples), "eval": len(eval_examples)},
            }
            if resume_info is not None:
                info["resumed"] = [
                    *resume_info.get("resumed", []),
                    {
                        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
                        "from": str(checkpoint),
                    },
                ]
            run.write_run_json(info)
            if not run.tokenizer_dir.is_dir():
                run.write_tokenizer(task.save_extras)
            logger.info(
                "pretraining %s (%s parameters) on %d examples (%d held out), %d thread(s), %s",
                type(task.model).__name__,
                f"{task.model.num_parameters():,}",
                len(train_examples),
                len(eval_examples),
                threads,
                context.device,
            )
        trainer = Trainer(task, config.optim, config.train, run, context, resume_from=checkpoint)
        return trainer.fit()
    finally:
        context.close()
        if run is not None:
            run.close()
