"""Training configuration: every default of the training recipe lives in this one file.

The sections are dataclasses so they validate themselves and map onto ``--key value`` overrides
(see :mod:`minibert.train.overrides`):

* :class:`OptimConfig`: AdamW, learning-rate schedule, gradient clipping. Reused by fine-tuning.
* :class:`TrainConfig`: the loop: how long, batch size, accumulation, precision, threads,
  evaluation/checkpoint/log cadence, seed. Reused by fine-tuning.
* :class:`ObjectiveConfig`: the pretraining inputs and masking (MLM; BERT's NSP on request).
* :class:`InitConfig`: the starting values of a fresh model (position table, offset heads, MLM
  bias).
* :class:`PretrainConfig`: the whole pretraining run: model preset and size, data, objective,
  init, optimizer, loop.

The recipe (issue 5 tunes it; change defaults here, with a comment saying why):

* tiny preset (2 layers, hidden 128), WordPiece vocabulary of 8192, sequences of 128 tokens;
* BERT's masking (Devlin et al. 2019, Sec. 3.1): 15% of tokens selected, 80/10/10, at most
  20 predictions per 128-token sequence; next-sentence prediction off (packed sentences, as
  RoBERTa); layer 0's two heads start as previous-token and next-token heads
  (minibert/init.py), the MLM output bias started at the unigram log-prior, init
  std 0.05 (issue 5; docs/recipe.md has the figures);
* AdamW (Loshchilov & Hutter 2019) with BERT's betas/epsilon and weight decay 0.01 (not on
  biases and LayerNorm, as in BERT's optimizer), a peak learning rate of 3e-3 (measured; tiny
  models take a much larger rate than BERT-base's 1e-4), linear warmup over the first 10% then
  linear decay to zero, gradient clipping at norm 1.0;
* no dropout (measured: it slows a few minutes of tiny pretraining down);
* batch of 32 sequences per optimizer step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from minibert.config import BertConfig
from minibert.data.examples import PACKING_MODES
from minibert.data.pipeline import DataConfig
from minibert.train.schedule import SCHEDULES

__all__ = [
    "DEFAULT_MAX_STEPS",
    "MLM_BIAS_INITS",
    "POSITION_INITS",
    "PRECISIONS",
    "InitConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "PretrainConfig",
    "TrainConfig",
    "check_number",
    "reject_non_finite",
]

PRECISIONS = ("auto", "fp32", "bf16")
POSITION_INITS = ("normal", "sinusoidal")
MLM_BIAS_INITS = ("zeros", "unigram")
DEFAULT_MAX_STEPS = 1000  # a run given neither --max-steps nor --time-budget stops here


# --------------------------------------------------------------------------------------------
# Numeric checks shared by every section
# --------------------------------------------------------------------------------------------


def check_number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
    optional: bool = False,
    fix: str = "",
) -> None:
    """Raise ``ValueError`` unless ``value`` is a finite number (an int if ``integer``) in range.

    The bounds are ``low <= value <= high`` (strict with ``low_open``/``high_open``); ``None``
    passes when ``optional``. NaN and infinity always fail: ``nan <= 0`` is False, so a plain
    ``if value <= 0`` check lets a NaN learning rate through, and an infinite time budget makes
    a schedule that never decays. ``fix`` is appended to the message: what to write instead.
    """
    if value is None and optional:
        return
    kind = "an integer" if integer else "a finite number"
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        wanted = f"{kind} in {left}{low:g}, {high:g}{right}"
    elif low is not None:
        wanted = f"{kind} {'>' if low_open else '>='} {low:g}"
    elif high is not None:
        wanted = f"{kind} {'<' if high_open else '<='} {high:g}"
    else:
        wanted = kind
    if optional:
        wanted += " (or none)"
    numeric = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
    ok = numeric and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        raise ValueError(f"{name} must be {wanted}, got {value!r}" + (f"; {fix}" if fix else ""))


def reject_non_finite(config: Any, prefix: str = "") -> None:
    """Raise ``ValueError`` for any NaN or infinite float in a tree of config dataclasses.

    A safety net for config classes whose own checks compare with ``<`` only (NaN passes
    those); the sections in this file check each field with :func:`check_number`.
    """
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            reject_non_finite(value, key + ".")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key} must be a finite number, got {value!r}")
        elif isinstance(value, (tuple, list)) and any(
            isinstance(v, float) and not math.isfinite(v) for v in value
        ):
            raise ValueError(f"{key} must hold finite numbers, got {value!r}")


@dataclass
class OptimConfig:
    """AdamW and the learning-rate schedule (Devlin et al. 2019, Appendix A.2)."""

    # Peak learning rate, measured for the tiny preset with the recipe's offset heads: 5 minutes,
    # held-out MLM accuracy 28.1% (loss 4.68) at 3e-3 vs 26.8% (loss 4.79) at 2e-3; 2 minutes
    # 23.3% vs 22.9% (docs/recipe.md). Without offset heads 5e-3 stalled (docs/training.md).
    # Bigger models need less: BERT-base used 1e-4; try 1e-3 for mini, 5e-4 for small.
    lr: float = 3e-3
    weight_decay: float = 0.01  # BERT's value; not applied to biases and LayerNorm weights
    betas: tuple[float, float] = (0.9, 0.999)  # BERT's Adam betas
    eps: float = 1e-6  # BERT's Adam epsilon
    max_grad_norm: float | None = 1.0  # clip the global gradient norm (None: no clipping)
    schedule: str = "linear"  # linear | cosine | constant | inverse_sqrt (after warmup)
    warmup_fraction: float = 0.1  # share of training spent warming up
    warmup_steps: int | None = None  # if set, overrides warmup_fraction (needs max_steps)
    min_lr_ratio: float = 0.0  # where the decay ends, as a fraction of lr

    def __post_init__(self) -> None:
        check_number(
            "optim.lr", self.lr, low=0, low_open=True, fix="e.g. --lr 3e-3 (tiny) or 1e-4 (base)"
        )
        check_number("optim.weight_decay", self.weight_decay, low=0, fix="BERT uses 0.01")
        if len(self.betas) != 2:
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {self.betas}")
        for beta in self.betas:
            check_number(
                "each of optim.betas", beta, low=0, high=1, high_open=True, fix="BERT: 0.9,0.999"
            )
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        check_number("optim.eps", self.eps, low=0, low_open=True, fix="BERT uses 1e-6")
        check_number(
            "optim.max_grad_norm",
            self.max_grad_norm,
            low=0,
            low_open=True,
            optional=True,
            fix="use none to switch clipping off",
        )
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"optim.schedule {self.schedule!r} is unknown; choose one of {', '.join(SCHEDULES)}"
            )
        check_number("optim.warmup_fraction", self.warmup_fraction, low=0, high=1, high_open=True)
        check_number("optim.warmup_steps", self.warmup_steps, low=0, integer=True, optional=True)
        check_number("optim.min_lr_ratio", self.min_lr_ratio, low=0, high=1)


@dataclass
class TrainConfig:
    """The training loop: budget, batching, precision and cadence.

    ``batch_size`` is the *global* batch per optimizer step. It is split into
    ``grad_accum_steps`` micro-batches, and each micro-batch across the processes of a
    distributed run, so changing hardware or accumulation never changes the training recipe.
    """

    max_steps: int | None = None  # stop after this many optimizer steps
    time_budget: float | None = None  # stop after this many seconds of training (wall clock)
    batch_size: int = 32  # sequences per optimizer step, over all processes and micro-batches
    grad_accum_steps: int = 1  # micro-batches per optimizer step (to fit memory)
    seed: int = 0  # model init, data order, masking and dropout all derive from it
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 where the hardware has it
    device: str = "auto"  # auto: cuda if available, else cpu
    num_threads: int | None = None  # torch CPU threads; None: all cores (shared among local ranks)
    eval_every: int = 100  # steps between held-out evaluations (0: only at the end)
    eval_examples: int = 256  # fixed held-out subset evaluated each time (cheap, comparable)
    eval_batch_size: int | None = None  # None: same as the training micro-batch
    checkpoint_every: int = 500  # steps between checkpoints (0: only on stop)
    keep_checkpoints: int = 3  # newest checkpoints kept; older ones are deleted (0: keep all)
    log_every: int = 10  # steps between train-metric lines in metrics.jsonl
    progress: bool = True  # show a tqdm progress bar

    def __post_init__(self) -> None:
        check_number("train.max_steps", self.max_steps, low=1, integer=True, optional=True)
        check_number(
            "train.time_budget",
            self.time_budget,
            low=0,
            low_open=True,
            optional=True,
            fix="give seconds, e.g. --time-budget 300; for no time limit leave it out (or none) "
            "and set --max-steps",
        )
        for name in ("batch_size", "grad_accum_steps"):
            check_number(f"train.{name}", getattr(self, name), low=1, integer=True)
        if self.batch_size % self.grad_accum_steps:
            raise ValueError(
                f"train.batch_size={self.batch_size} is not divisible by train.grad_accum_steps="
                f"{self.grad_accum_steps}; each micro-batch must have the same size"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"train.precision {self.precision!r} is unknown; use one of {', '.join(PRECISIONS)}"
            )
        check_number(
            "train.num_threads",
            self.num_threads,
            low=1,
            integer=True,
            optional=True,
            fix="none uses every core",
        )
        for name in ("eval_every", "checkpoint_every", "keep_checkpoints", "eval_examples"):
            check_number(f"train.{name}", getattr(self, name), low=0, integer=True)
        check_number(
            "train.eval_batch_size",
            self.eval_batch_size,
            low=1,
            integer=True,
            optional=True,
            fix="none evaluates in micro-batches of the training size; eval_examples 0 turns "
            "evaluation off",
        )
        check_number("train.log_every", self.log_every, low=1, integer=True)
        check_number("train.seed", self.seed, integer=True)
        _check_device(self.device)

    @property
    def micro_batch_size(self) -> int:
        """Sequences per forward pass, over all processes."""
        return self.batch_size // self.grad_accum_steps

    def resolved_max_steps(self) -> int | None:
        """``max_steps``, or the default when the run has no other limit."""
        if self.max_steps is None and self.time_budget is None:
            return DEFAULT_MAX_STEPS
        return self.max_steps


@dataclass
class ObjectiveConfig:
    """Pretraining inputs and masking: BERT's MLM, and NSP when ``nsp`` (Devlin et al. 2019, 3.1).

    The input length is ``data.max_seq_len`` (one setting, so the data pipeline checks the
    corpus against the same length the examples use).
    """

    # Next-sentence prediction off: packed sentences (RoBERTa FULL-SENTENCES, Liu et al. 2019,
    # Sec. 4.2), so the whole model serves the MLM; the 5-minute held-out accuracy with NSP
    # off and on is in docs/recipe.md. --nsp turns BERT's objective back on.
    nsp: bool = False
    # How inputs are cut when NSP is off (minibert.data.examples.PACKING_MODES). The held-out
    # examples are always full_sentences, so runs with different packings compare.
    packing: str = "full_sentences"
    mlm_probability: float = 0.15  # share of tokens selected for prediction
    whole_word_masking: bool = False  # select whole words, not single WordPiece pieces
    max_predictions: int | None = 20  # fixed predictions per sequence (BERT: 20 for 128 tokens)
    short_seq_prob: float = 0.1  # chance of a shorter random-length input (BERT: 0.1)
    dupe_factor: int = 1  # passes with different segmentations when building examples
    example_seed: int = 12345  # how the corpus is cut into examples (fixed across runs)
    eval_mask_seed: int = 2019  # masks of the held-out examples: fixed, so evaluations compare
    # The held-out metric always masks as BERT does (15%, 80/10/10, 20 per 128 tokens), whatever
    # the training masking is, so accuracies of runs with different recipes compare.
    eval_mlm_probability: float = 0.15
    eval_max_predictions: int | None = 20

    def __post_init__(self) -> None:
        if self.packing not in PACKING_MODES:
            raise ValueError(
                f"objective.packing {self.packing!r} is unknown; choose one of "
                f"{', '.join(PACKING_MODES)}"
            )
        for name in ("mlm_probability", "eval_mlm_probability"):
            check_number(
                f"objective.{name}",
                getattr(self, name),
                low=0,
                high=1,
                low_open=True,
                fix="BERT selects 0.15",
            )
        for name in ("max_predictions", "eval_max_predictions"):
            check_number(
                f"objective.{name}", getattr(self, name), low=1, integer=True, optional=True
            )
        check_number("objective.short_seq_prob", self.short_seq_prob, low=0, high=1)
        check_number("objective.dupe_factor", self.dupe_factor, low=1, integer=True)
        for name in ("example_seed", "eval_mask_seed"):
            check_number(f"objective.{name}", getattr(self, name), integer=True)


@dataclass
class InitConfig:
    """How a pretraining run's fresh weights start (the architecture never changes).

    Everything not named here follows BERT: Normal(0, ``model.initializer_range``).
    """

    # normal: BERT's Normal(0, 0.02); sinusoidal: the Transformer's sin/cos table (Vaswani et
    # al. 2017, Sec. 3.5) as the starting value of the learned position embeddings.
    # Default sinusoidal: measured on tiny, no NSP, after 400 steps held-out MLM accuracy 9.8%
    # vs 7.4% with BERT's random positions (docs/recipe.md).
    position_init: str = "sinusoidal"
    position_init_std: float = 0.02  # standard deviation of the sinusoidal table
    # zeros: BERT's; unigram: the MLM output bias starts at log p(token) counted on the
    # training examples, so step 0 already predicts the unigram distribution (the plateau
    # every run first climbs to) and training goes straight to learning from context.
    # Default unigram: after 600 steps held-out MLM loss 6.504 vs 6.555 (accuracy 13.6% vs
    # 13.3%) with the zero bias (docs/recipe.md).
    mlm_bias_init: str = "unigram"
    # Added to the query and key weights of every layer, times the identity (0: BERT's init).
    attention_identity_init: float = 0.0
    # Offset heads (minibert/init.py): one relative offset per head, layer 0's heads
    # first. (-1, 1): layer 0 head 0 starts attending to the previous token, head 1 to the
    # next. The position table then starts as sinusoids in the last head_size dimensions
    # (replacing position_init); () starts every head random, as in BERT.
    # Default (-1, 1): the largest gain of the recipe. Tiny, 5 minutes, lr 2e-3 for both:
    # held-out MLM accuracy 26.8% (loss 4.79) vs 14.9% (loss 6.41) without; at the [MASK]ed
    # positions 19.9% vs 6.1%: without it the model never gets past word frequencies in five
    # minutes (docs/recipe.md).
    local_attention_offsets: tuple[int, ...] = (-1, 1)
    # Sharpness at step 0: 1.5 puts about 0.99 of each offset head's weight on its target;
    # 1.0 about 0.6 (2 minutes: 22.9% vs 22.1%).
    local_attention_scale: float = 1.5

    def __post_init__(self) -> None:
        self.local_attention_offsets = tuple(int(o) for o in self.local_attention_offsets)
        check_number("init.local_attention_scale", self.local_attention_scale, low=0, low_open=True)
        if self.position_init not in POSITION_INITS:
            raise ValueError(
                f"init.position_init {self.position_init!r} is unknown; choose one of "
                f"{', '.join(POSITION_INITS)}"
            )
        if self.mlm_bias_init not in MLM_BIAS_INITS:
            raise ValueError(
                f"init.mlm_bias_init {self.mlm_bias_init!r} is unknown; choose one of "
                f"{', '.join(MLM_BIAS_INITS)}"
            )
        check_number("init.attention_identity_init", self.attention_identity_init, low=0)
        check_number("init.position_init_std", self.position_init_std, low=0, low_open=True)


def _check_device(device: Any) -> None:
    """``train.device`` must be ``auto`` or a device torch can name (cpu, cuda, cuda:1, mps)."""
    if device == "auto":
        return
    import torch

    try:
        torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"train.device {device!r} is not a device; use auto, cpu, cuda, cuda:1 or mps"
        ) from None


def _default_model() -> BertConfig:
    # Dropout off: a tiny model pretrained for minutes underfits, and dropout only slows it
    # down (measured: held-out MLM loss 6.787 without vs 6.805 with 0.1 after 600 steps of
    # tiny on wiki-sample; docs/training.md, "Dropout"). Turn it on for long runs of
    # bigger models: --model.hidden_dropout_prob 0.1 --model.attention_probs_dropout_prob 0.1.
    # initializer_range 0.05 instead of BERT's 0.02: with hidden size 128, 0.02 starts the
    # attention scores q.k near zero and their gradients tiny, so the model stays on the
    # unigram plateau longer. Measured on tiny: held-out MLM accuracy after 2 minutes 14.1% at
    # 0.05 vs 13.2% at 0.02; 0.1 was worse than 0.05 step for step (docs/recipe.md). Kept when
    # --preset changes the size; bigger models may prefer BERT's 0.02.
    return BertConfig.preset(
        "tiny",
        vocab_size=8192,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.05,
    )


@dataclass
class PretrainConfig:
    """A whole pretraining run. ``preset`` picks the model size; ``model.*`` fine-tunes it.

    ``model.vocab_size`` always follows the trained tokenizer, and ``preset`` is applied before
    any ``model.*`` override (see :func:`minibert.train.pretrain.build_pretrain_config`).
    """

    # Bare names that two sections share, and the one a bare --name means.
    KEY_ALIASES: ClassVar[dict[str, str]] = {
        "seed": "train.seed",  # data.seed only decides the train/valid split
        "vocab_size": "data.vocab_size",  # the model's follows the trained tokenizer
    }

    preset: str = "tiny"
    model: BertConfig = field(default_factory=_default_model)
    data: DataConfig = field(default_factory=DataConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    init: InitConfig = field(default_factory=InitConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if self.data.max_seq_len > self.model.max_position_embeddings:
            raise ValueError(
                f"data.max_seq_len={self.data.max_seq_len} is longer than the model's "
                f"max_position_embeddings={self.model.max_position_embeddings}; lower the first "
                "or raise the second (--model.max_position_embeddings)."
            )
        offsets = self.init.local_attention_offsets
        if offsets:
            model = self.model
            heads = model.num_hidden_layers * model.num_attention_heads
            if len(offsets) > heads:
                raise ValueError(
                    f"init.local_attention_offsets has {len(offsets)} offsets but the model has "
                    f"{model.num_hidden_layers} layers x {model.num_attention_heads} heads = "
                    f"{heads}; give at most one offset per head (layer 0's heads first), e.g. "
                    "--init.local_attention_offsets -1, or [] to start every head random"
                )
            head_size = model.hidden_size // model.num_attention_heads
            if head_size % 2:
                raise ValueError(
                    f"init.local_attention_offsets needs an even head size (sin/cos pairs), but "
                    f"hidden_size / num_attention_heads = {head_size}; change the model's size "
                    "or pass --init.local_attention_offsets [] to start every head random"
                )
            if any(abs(offset) >= self.data.max_seq_len for offset in offsets):
                raise ValueError(
                    f"init.local_attention_offsets {offsets} reach beyond an input of "
                    f"data.max_seq_len={self.data.max_seq_len} tokens; use offsets like -1, 1"
                )
