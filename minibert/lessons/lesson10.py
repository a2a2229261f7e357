"""Lesson 10, parameter-efficient fine-tuning: the exercises (a LoRA layer, a bottleneck adapter,
counting trainable parameters) and the short training loop that compares them with full
fine-tuning on one task, with one budget.

* **LoRA** (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", Sec. 4.1):
  a frozen weight W0 (d_out x d_in) gets a trainable low-rank update, h = W0 x + (alpha / r) B A x,
  A (r x d_in) ~ Gaussian, B (d_out x r) = 0, so training starts at the pretrained function;
  after training, W = W0 + (alpha / r) B A can be merged and inference costs nothing extra.
  The paper adapts the attention query and value projections (Sec. 7.1).
* **Adapters** (Houlsby et al. 2019, "Parameter-Efficient Transfer Learning for NLP", Sec. 2.1
  and Fig. 2): a bottleneck x + W_up f(W_down x) after each sub-layer's output projection, before
  the residual and layer norm, initialised near the identity; the layer norms are trained too.

The comparison trains every method with the same loop, data, batch size, number of steps and
seed (:func:`train_classifier`), so "trainable parameters", "accuracy" and "seconds" differ only
by the method. ``minibert.train.finetuning.finetune`` builds its own model from ``init`` and has no
hook for a prepared one, so the loop is here: AdamW, linear warm-up and decay, gradient clipping,
evaluated with the fine-tuning engine's own ``predict`` and ``split_metrics``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from minibert.lessons.checking import Mistake, Report, exercise

# --------------------------------------------------------------------------------------------
# Exercise 1: a LoRA layer
# --------------------------------------------------------------------------------------------


def solution_lora_linear(base, r, alpha):
    class LoRALinear(nn.Module):
        """h = W0 x + b0 + (alpha / r) B A x, with W0 and b0 frozen (Hu et al. 2021, Eq. 3)."""

        def __init__(self, base, r, alpha):
            super().__init__()
            self.base = base
            for p in self.base.parameters():
                p.requires_grad_(False)  # the pretrained weight stays as it is
            self.lora_A = nn.Parameter(torch.randn(r, base.in_features) / r)  # (r, d_in)
            self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))  # (d_out, r)
            self.scaling = alpha / r

        def forward(self, x):  # (..., d_in) -> (..., d_out)
            update = x @ self.lora_A.T @ self.lora_B.T  # (..., r) -> (..., d_out)
            return self.base(x) + self.scaling * update

        def merged_weight(self):  # (d_out, d_in): one matrix, no extra cost at inference
            return self.base.weight + self.scaling * self.lora_B @ self.lora_A

    return LoRALinear(base, r, alpha)


class _LoRAVariant(nn.Module):
    """LoRA with one deliberate mistake, selected by name (for the check's named mistakes)."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, mistake: str) -> None:
        super().__init__()
        self.base = base
        self.mistake = mistake
        if mistake != "not frozen":
            for p in self.base.parameters():
                p.requires_grad_(False)
        d_in, d_out = base.in_features, base.out_features
        if mistake == "swapped":
            self.lora_A = nn.Parameter(torch.randn(d_in, r) / r)  # (d_in, r): transposed
            self.lora_B = nn.Parameter(torch.zeros(r, d_out))
        else:
            self.lora_A = nn.Parameter(torch.randn(r, d_in) / r)
            b = torch.randn(d_out, r) if mistake == "random B" else torch.zeros(d_out, r)
            if mistake == "both zero":
                self.lora_A = nn.Parameter(torch.zeros(r, d_in))
            self.lora_B = nn.Parameter(b)
        self.scaling = {"r/alpha": r / alpha, "no scaling": 1.0}.get(mistake, alpha / r)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mistake == "swapped":
            return self.base(x) + self.scaling * (x @ self.lora_A @ self.lora_B)
        return self.base(x) + self.scaling * (x @ self.lora_A.T @ self.lora_B.T)

    def merged_weight(self) -> torch.Tensor:
        if self.mistake == "swapped":
            return self.base.weight + self.scaling * (self.lora_A @ self.lora_B).T
        if self.mistake == "merge unscaled":
            return self.base.weight + self.lora_B @ self.lora_A
        return self.base.weight + self.scaling * self.lora_B @ self.lora_A


def _lora_random_b(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "random B")


def _lora_both_zero(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "both zero")


def _lora_r_over_alpha(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "r/alpha")


def _lora_no_scaling(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "no scaling")


def _lora_not_frozen(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "not frozen")


def _lora_swapped(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "swapped")


def _lora_merge_unscaled(base, r, alpha):
    return _LoRAVariant(base, r, alpha, "merge unscaled")


def _trainable(module: nn.Module) -> list[tuple[str, nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


@exercise(
    "lora_linear",
    solution=solution_lora_linear,
    mistakes={
        "B initialised randomly (the model changes at step 0)": Mistake(
            _lora_random_b,
            why="with B = 0 the update B A x is zero, so training starts exactly at the "
            "pretrained model (Hu et al. Sec. 4.1). A random B adds noise to every query and "
            "value before the first step. Initialise A randomly and B with zeros.",
        ),
        "A and B both zero (no gradient reaches them)": Mistake(
            _lora_both_zero,
            why="the gradient of B is (dL/dh) (A x)^T and that of A is B^T (dL/dh) x^T: with both "
            "zero, both gradients are zero and training never moves them. Only B starts at 0.",
        ),
        "scaled by r/alpha instead of alpha/r": Mistake(
            _lora_r_over_alpha,
            why="the update is scaled by alpha / r (Hu et al. Sec. 4.1), so that changing r does "
            "not change how big the update is for the same learning rate.",
        ),
        "no alpha/r scaling": Mistake(
            _lora_no_scaling,
            why="multiply B A x by alpha / r; without it the effective learning rate of the "
            "update depends on r.",
        ),
        "base weight not frozen": Mistake(
            _lora_not_frozen,
            why="LoRA trains only A and B: call requires_grad_(False) on the wrapped layer's "
            "weight and bias, or the optimiser updates all of W0 and nothing is saved.",
        ),
        "A and B shapes swapped": Mistake(
            _lora_swapped,
            why="W0 is (d_out, d_in) as nn.Linear stores it; A maps the input down, "
            "(r, d_in), and B maps up, (d_out, r), so that B A has W0's shape.",
        ),
        "merged weight forgets alpha/r": Mistake(
            _lora_merge_unscaled,
            why="merging must give the same function as the forward pass: "
            "W = W0 + (alpha / r) B A, with the same scaling as in forward.",
        ),
    },
)
def check_lora_linear(fn: Callable[..., Any], report: Report) -> None:
    """A LoRA wrapper of a random nn.Linear(6, 5): frozen base, shapes, step 0, forward, merge."""
    d_in, d_out, r, alpha = 6, 5, 2, 8.0
    base = nn.Linear(d_in, d_out)
    torch.nn.init.normal_(base.weight, generator=report.generator)
    torch.nn.init.normal_(base.bias, generator=report.generator)
    x = torch.randn(3, 4, d_in, generator=report.generator)  # (B, T, d_in)
    before = base(x).detach()
    torch.manual_seed(report.seed)  # the function's own random init: the same every run
    layer = report.call(base, r, alpha)
    if not isinstance(layer, nn.Module):
        report.fail(f"return an nn.Module (the wrapped layer), got {type(layer).__name__}")
    for name in ("lora_A", "lora_B"):
        if not isinstance(getattr(layer, name, None), torch.Tensor):
            report.fail(f"the layer needs a parameter named {name} (see the docstring)")
    a, b = layer.lora_A, layer.lora_B
    if tuple(a.shape) != (r, d_in) or tuple(b.shape) != (d_out, r):
        report.fail(
            f"lora_A has shape {tuple(a.shape)}, lora_B {tuple(b.shape)}; expected A (r, d_in) "
            f"= {(r, d_in)} and B (d_out, r) = {(d_out, r)}",
            mistake="A and B shapes swapped" if tuple(a.shape) == (d_in, r) else None,
        )
    report.passed("A (r, d_in), B (d_out, r)")
    trainable = _trainable(layer)
    # report.call hands the function a copy of base: find the frozen layer's tensors by shape
    if any(
        tuple(p.shape) in ((d_out, d_in), (d_out,))
        for name, p in trainable
        if not name.endswith(("lora_A", "lora_B"))
    ):
        report.fail(
            "the wrapped layer's weight or bias is still trainable (requires_grad=True)",
            mistake="base weight not frozen",
        )
    count = sum(p.numel() for _, p in trainable)
    report.equal("trainable numbers (A and B only)", count, r * (d_in + d_out), case="frozen base")
    report.passed("base frozen, r (d_in + d_out) trainable")
    if float(b.detach().abs().max()) == 0.0 and float(a.detach().abs().max()) == 0.0:
        report.fail(
            "lora_A and lora_B are both all zeros",
            mistake="A and B both zero (no gradient reaches them)",
        )
    report.close(
        "the output at initialisation (must equal the frozen layer's)",
        layer(x).detach(),
        before,
        case="step 0",
        mistake="B initialised randomly (the model changes at step 0)",
    )
    report.passed("step 0 = pretrained")
    with torch.no_grad():  # as if training had moved B
        b.copy_(torch.randn(d_out, r, generator=report.generator))
        a.copy_(torch.randn(r, d_in, generator=report.generator))
    a_, b_ = a.detach(), b.detach()
    expected = before + (alpha / r) * (x @ a_.T @ b_.T)
    got = layer(x).detach()
    mistake = None
    if torch.allclose(got, before + (r / alpha) * (x @ a_.T @ b_.T), atol=1e-5):
        mistake = "scaled by r/alpha instead of alpha/r"
    elif torch.allclose(got, before + x @ a_.T @ b_.T, atol=1e-5):
        mistake = "no alpha/r scaling"
    report.close("the output with trained A and B", got, expected, case="forward", mistake=mistake)
    report.passed("forward W0 x + (alpha/r) B A x")
    if not hasattr(layer, "merged_weight"):
        report.fail("the layer needs a merged_weight() method returning W0 + (alpha/r) B A")
    merged = layer.merged_weight().detach()
    report.shape("merged_weight()", merged, (d_out, d_in), case="merge")
    unscaled = base.weight.detach() + b_ @ a_
    report.close(
        "merged_weight()",
        merged,
        base.weight.detach() + (alpha / r) * b_ @ a_,
        case="merge",
        mistake="merged weight forgets alpha/r" if torch.allclose(merged, unscaled) else None,
    )
    report.passed("merged weight = W0 + (alpha/r) B A")


# --------------------------------------------------------------------------------------------
# Exercise 2: a bottleneck adapter
# --------------------------------------------------------------------------------------------


def solution_adapter(hidden_size, bottleneck):
    class Adapter(nn.Module):
        """x + W_up f(W_down x): a bottleneck with a skip connection (Houlsby et al. 2019)."""

        def __init__(self, hidden_size, bottleneck):
            super().__init__()
            self.down = nn.Linear(hidden_size, bottleneck)  # (H -> m)
            self.up = nn.Linear(bottleneck, hidden_size)  # (m -> H)
            nn.init.normal_(self.down.weight, std=1e-2)
            nn.init.zeros_(self.down.bias)
            nn.init.zeros_(self.up.weight)  # starts as the identity: x + 0
            nn.init.zeros_(self.up.bias)

        def forward(self, x):  # (..., H) -> (..., H)
            return x + self.up(torch.nn.functional.gelu(self.down(x)))

    return Adapter(hidden_size, bottleneck)


class _AdapterVariant(nn.Module):
    def __init__(self, hidden_size: int, bottleneck: int, mistake: str) -> None:
        super().__init__()
        self.mistake = mistake
        self.down = nn.Linear(hidden_size, bottleneck)
        self.up = nn.Linear(bottleneck, hidden_size)
        if mistake != "random up":
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mistake == "no activation":
            return x + self.up(self.down(x))
        inner = self.up(torch.nn.functional.gelu(self.down(x)))
        return inner if self.mistake == "no residual" else x + inner


def _adapter_no_residual(hidden_size, bottleneck):
    return _AdapterVariant(hidden_size, bottleneck, "no residual")


def _adapter_random_up(hidden_size, bottleneck):
    return _AdapterVariant(hidden_size, bottleneck, "random up")


def _adapter_no_activation(hidden_size, bottleneck):
    return _AdapterVariant(hidden_size, bottleneck, "no activation")


@exercise(
    "adapter",
    solution=solution_adapter,
    mistakes={
        "no residual connection": Mistake(
            _adapter_no_residual,
            why="the adapter is x + W_up f(W_down x): without '+ x' it replaces the sub-layer's "
            "output with a rank-m squeeze of it, and at initialisation (W_up = 0) outputs zeros.",
        ),
        "up-projection not initialised to (near) zero": Mistake(
            _adapter_random_up,
            why="Houlsby et al. initialise the adapter near the identity so the pretrained "
            "network is unchanged at step 0: zero (or tiny) W_up and b_up. nn.Linear's default "
            "init makes x + W_up f(W_down x) differ from x from the start.",
        ),
        "no nonlinearity in the bottleneck": Mistake(
            _adapter_no_activation,
            why="W_up W_down x alone is just a low-rank linear map (a LoRA-like update); the "
            "adapter applies a nonlinearity f (GELU here) between the two projections.",
        ),
    },
)
def check_adapter(fn: Callable[..., Any], report: Report) -> None:
    """An adapter for hidden size 8 with bottleneck 3: shapes, identity at step 0, forward."""
    hidden, m = 8, 3
    x = torch.randn(2, 5, hidden, generator=report.generator)  # (B, T, H)
    torch.manual_seed(report.seed)  # the function's own random init: the same every run
    adapter = report.call(hidden, m)
    if not isinstance(adapter, nn.Module):
        report.fail(f"return an nn.Module, got {type(adapter).__name__}")
    for name, shape in (("down", (m, hidden)), ("up", (hidden, m))):
        part = getattr(adapter, name, None)
        if not isinstance(part, nn.Linear):
            report.fail(f"the adapter needs an nn.Linear named {name} (see the docstring)")
        report.shape(f"{name}.weight", part.weight, shape, case="shapes")
    report.passed("down (H -> m), up (m -> H)")
    count = sum(p.numel() for p in adapter.parameters() if p.requires_grad)
    report.equal("trainable numbers", count, 2 * hidden * m + m + hidden, case="parameters")
    out = adapter(x).detach()
    report.shape("the output", out, x.shape, case="shapes")
    if torch.allclose(out, torch.zeros_like(out)):
        report.fail(
            "at initialisation the adapter outputs zeros instead of its input",
            mistake="no residual connection",
        )
    report.close(
        "the output at initialisation (must be close to the input)",
        out,
        x,
        atol=1e-3,
        rtol=0.0,
        case="near identity at step 0",
        mistake="up-projection not initialised to (near) zero",
    )
    report.passed("near identity at step 0")
    with torch.no_grad():  # as if training had moved the weights
        for part in (adapter.down, adapter.up):
            part.weight.copy_(torch.randn(part.weight.shape, generator=report.generator))
            part.bias.copy_(torch.randn(part.bias.shape, generator=report.generator))
    down, up = adapter.down, adapter.up
    with torch.no_grad():
        inner = down(x)
        expected = x + up(torch.nn.functional.gelu(inner))
        got = adapter(x)
        mistake = None
        if torch.allclose(got, up(torch.nn.functional.gelu(inner)), atol=1e-5):
            mistake = "no residual connection"
        elif torch.allclose(got, x + up(inner), atol=1e-5):
            mistake = "no nonlinearity in the bottleneck"
    report.close(
        "the output with trained weights", got, expected, atol=1e-4, case="forward", mistake=mistake
    )
    report.passed("forward x + up(gelu(down(x)))")


# --------------------------------------------------------------------------------------------
# Exercise 3: counting trainable parameters
# --------------------------------------------------------------------------------------------


def solution_count_parameters(model):
    # model.parameters() yields each tensor once, even when two modules share it (tied weights)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def _count_tensors(model):
    params = list(model.parameters())
    return sum(1 for p in params if p.requires_grad), len(params)


def _count_ignoring_frozen(model):
    total = sum(p.numel() for p in model.parameters())
    return total, total


def _count_tied_twice(model):
    params = [p for _, p in model.named_parameters(remove_duplicate=False)]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return trainable, sum(p.numel() for p in params)


class _TiedToy(nn.Module):
    """A toy with tied input/output embeddings (as BERT's MLM head) and a frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.hidden = nn.Linear(4, 4)
        self.out = nn.Linear(4, 10, bias=False)
        self.out.weight = self.embed.weight  # tied: one tensor, two modules


@exercise(
    "count_parameters",
    solution=solution_count_parameters,
    mistakes={
        "counted tensors, not numbers": Mistake(
            _count_tensors,
            why="a parameter tensor holds p.numel() numbers; len(list(model.parameters())) "
            "counts tensors. Sum p.numel().",
        ),
        "frozen parameters counted as trainable": Mistake(
            _count_ignoring_frozen,
            why="trainable means requires_grad is True: filter with `if p.requires_grad`.",
        ),
        "tied weights counted twice": Mistake(
            _count_tied_twice,
            why="BERT's MLM output layer shares its weight with the word embeddings: one tensor "
            "reachable from two modules. model.parameters() yields it once; "
            "named_parameters(remove_duplicate=False) or state_dict() list it twice.",
        ),
    },
)
def check_count_parameters(fn: Callable[..., Any], report: Report) -> None:
    """A small model, some parts frozen; then one with tied weights."""
    plain = nn.Sequential(nn.Linear(5, 3), nn.ReLU(), nn.Linear(3, 2))
    plain[0].requires_grad_(False)
    got = report.call(plain)
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        report.fail(f"return two integers (trainable, total); got {got!r}")
    report.expect(plain, case="Linear(5, 3) frozen + Linear(3, 2)")
    toy = _TiedToy()
    toy.hidden.requires_grad_(False)
    report.expect(toy, case="tied embedding/output weights, a frozen layer")


# --------------------------------------------------------------------------------------------
# Putting the layers into a BERT classifier
# --------------------------------------------------------------------------------------------

# The task head: the classifier is new; the pooler was not pretrained by our masked-LM run
# (it starts random, see the warning when the model loads), so every method trains both.
HEAD_PREFIXES = ("classifier.", "bert.pooler.")


def freeze_all_but_head(model: nn.Module) -> nn.Module:
    """Freeze every parameter except the task head's (:data:`HEAD_PREFIXES`)."""
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(HEAD_PREFIXES))
    return model


def add_lora(
    model: nn.Module,
    make_lora: Callable[[nn.Linear, int, float], nn.Module],
    *,
    r: int = 4,
    alpha: float = 8.0,
    targets: Sequence[str] = ("query", "value"),
) -> nn.Module:
    """Freeze the model (but its head) and wrap each layer's attention ``targets`` with
    ``make_lora(linear, r, alpha)`` (Hu et al. adapt W_q and W_v, Sec. 7.1). In place."""
    freeze_all_but_head(model)
    for layer in model.bert.layers:
        for target in targets:
            setattr(layer.attention, target, make_lora(getattr(layer.attention, target), r, alpha))
    return model


def add_adapters(
    model: nn.Module,
    make_adapter: Callable[[int, int], nn.Module],
    *,
    bottleneck: int = 16,
    train_layer_norms: bool = True,
) -> nn.Module:
    """Freeze the model (but its head) and put an adapter after each sub-layer's output
    projection, before the residual and layer norm (Houlsby et al. 2019, Fig. 2): after the
    attention output and after the feed-forward's down-projection. Houlsby et al. also train
    the layer norms (``train_layer_norms``). In place."""
    freeze_all_but_head(model)
    hidden = model.config.hidden_size
    for layer in model.bert.layers:
        layer.attention.output = nn.Sequential(
            layer.attention.output, make_adapter(hidden, bottleneck)
        )
        layer.ffn.down = nn.Sequential(layer.ffn.down, make_adapter(hidden, bottleneck))
        if train_layer_norms:
            for norm in (layer.attention_norm, layer.ffn_norm):
                norm.requires_grad_(True)
    return model


def encoder_layers(model: nn.Module) -> Any:
    """The encoder's layers (a ModuleList)."""
    return model.bert.layers


# --------------------------------------------------------------------------------------------
# The data and one training loop for every method
# --------------------------------------------------------------------------------------------


@dataclass
class TaskSplits:
    """A sequence task encoded with a tokenizer: train and validation, and the label names."""

    name: str
    labels: list[str]
    train: Any  # minibert.train.finetuning.data.EncodedSplit
    validation: Any
    pad_id: int


def load_task_splits(
    tokenizer: Any,
    *,
    task: str = "wiki-topic",
    train_limit: int | None = None,
    eval_limit: int | None = None,
    max_seq_len: int = 128,
    seed: int = 0,
) -> TaskSplits:
    """The task's training and validation examples (seeded samples of ``*_limit``), as the
    fine-tuning engine encodes them."""
    from minibert.data.tasks import load_task
    from minibert.train.finetuning.data import encode_split, sample_examples

    data = load_task(task)
    if data.kind != "sequence":
        raise ValueError(f"{task} is a {data.kind} task; this lesson compares sequence tasks")
    train = sample_examples(data.train, train_limit, seed, "train")
    validation = sample_examples(data.validation, eval_limit, seed, "validation")
    return TaskSplits(
        name=task,
        labels=list(data.labels),
        train=encode_split("train", train, "sequence", tokenizer, max_seq_len),
        validation=encode_split("validation", validation, "sequence", tokenizer, max_seq_len),
        pad_id=tokenizer.pad_token_id or 0,
    )


def sequence_classifier(run_dir: Any, labels: Sequence[str], *, seed: int = 0) -> nn.Module:
    """The pretrained run's encoder with a fresh classification head for ``labels``."""
    from pathlib import Path

    from minibert.heads import BertForSequenceClassification

    torch.manual_seed(seed)  # the new head's weights: the same for every method
    final = Path(run_dir) / "final"
    return BertForSequenceClassification.from_pretrained(
        final,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)},
    )


@dataclass
class TrainingResult:
    """What one method's fine-tuning gave."""

    method: str
    trainable: int
    total: int
    accuracy: float
    macro_f1: float
    seconds: float
    steps: int
    lr: float
    losses: list[float] = field(default_factory=list)
    accuracy_before: float = float("nan")

    @property
    def trainable_share(self) -> float:
        return self.trainable / self.total

    def row(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "trainable": self.trainable,
            "share": self.trainable_share,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "seconds": self.seconds,
            "lr": self.lr,
        }


def evaluate(model: nn.Module, data: TaskSplits) -> dict[str, float]:
    """Accuracy and macro-F1 on the validation split, with the fine-tuning engine's code."""
    from minibert.train.finetuning.predictions import predict, split_metrics

    predictions = predict(model, data.validation, "sequence", data.labels, pad_id=data.pad_id)
    metrics, _ = split_metrics(data.validation, "sequence", data.labels, predictions)
    return metrics


def train_classifier(
    model: nn.Module,
    data: TaskSplits,
    *,
    method: str,
    steps: int,
    lr: float,
    batch_size: int = 32,
    warmup_fraction: float = 0.1,
    weight_decay: float = 0.01,
    seed: int = 0,
    progress: bool = True,
    measure_before: bool = True,
) -> TrainingResult:
    """Train ``model``'s trainable parameters for ``steps`` steps of ``batch_size`` examples.

    The same for every method: AdamW over the parameters with ``requires_grad`` (frozen ones
    are not even given to the optimiser), the learning rate warmed up linearly for
    ``warmup_fraction`` of the steps then decayed linearly to 0 (BERT's schedule, Devlin et
    al. 2019 App. A.2), gradient norm clipped at 1, examples drawn in a seeded order.
    ``measure_before`` also scores the untrained model (``accuracy_before``).
    """
    from tqdm.auto import tqdm

    from minibert.train.finetuning.data import collate

    params = [p for p in model.parameters() if p.requires_grad]
    trainable = sum(p.numel() for p in params)
    total = sum(p.numel() for p in model.parameters())
    if not params:
        raise ValueError(f"{method}: the model has no trainable parameters")
    before = evaluate(model, data)["accuracy"] if measure_before else float("nan")
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    warmup = max(1, int(warmup_fraction * steps))

    def schedule(step: int) -> float:  # multiplier of lr at this step
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (steps - step) / max(1, steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order = torch.Generator().manual_seed(seed)
    n = len(data.train)
    queue: list[int] = []
    losses = []
    model.train()
    started = time.perf_counter()
    for _ in tqdm(range(steps), desc=method, disable=not progress, leave=False):
        while len(queue) < batch_size:  # a fresh seeded permutation each epoch
            queue += torch.randperm(n, generator=order).tolist()
        indices, queue = queue[:batch_size], queue[batch_size:]
        batch = collate(data.train, indices, data.pad_id, token_task=False)
        out = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
            labels=batch["labels"],
        )
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        losses.append(out.loss.item())
    seconds = time.perf_counter() - started
    model.eval()
    metrics = evaluate(model, data)
    return TrainingResult(
        method=method,
        trainable=trainable,
        total=total,
        accuracy=metrics["accuracy"],
        macro_f1=metrics["macro_f1"],
        seconds=seconds,
        steps=steps,
        lr=lr,
        losses=losses,
        accuracy_before=before,
    )


def results_table(results: Sequence[TrainingResult]) -> str:
    """The comparison as aligned text."""
    lines = [
        f"{'method':<22} {'trainable':>10} {'of total':>9} {'accuracy':>9} {'macro-F1':>9} "
        f"{'seconds':>8} {'lr':>7}"
    ]
    for r in results:
        lines.append(
            f"{r.method:<22} {r.trainable:>10,} {r.trainable_share:>9.2%} {r.accuracy:>9.3f} "
            f"{r.macro_f1:>9.3f} {r.seconds:>8.1f} {r.lr:>7.0e}"
        )
    return "\n".join(lines)


def comparison_figure(results: Sequence[TrainingResult]):
    """Accuracy against trainable parameters (log x), one point per method, and the training
    loss curves."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("validation accuracy vs trainable parameters", "training loss"),
    )
    for r in results:
        fig.add_trace(
            go.Scatter(
                x=[r.trainable],
                y=[r.accuracy],
                mode="markers+text",
                text=[r.method],
                textposition="top center",
                marker={"size": 12},
                name=r.method,
                showlegend=False,
            ),
            row=1,
            col=1,
        )
        window = max(1, len(r.losses) // 20)
        smooth = [
            sum(r.losses[max(0, i - window + 1) : i + 1])
            / len(r.losses[max(0, i - window + 1) : i + 1])
            for i in range(len(r.losses))
        ]
        fig.add_trace(go.Scatter(y=smooth, mode="lines", name=r.method), row=1, col=2)
    fig.update_xaxes(type="log", title_text="trainable parameters", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=1, col=1)
    fig.update_xaxes(title_text="step", row=1, col=2)
    fig.update_yaxes(title_text="cross-entropy (smoothed)", row=1, col=2)
    fig.update_layout(height=420, legend={"orientation": "h", "y": -0.25})
    return fig


def lora_parameter_formula(layers: int, targets: int, r: int, d_in: int, d_out: int) -> int:
    """LoRA's added parameters: every adapted matrix gets r (d_in + d_out)."""
    return layers * targets * r * (d_in + d_out)


def adapter_parameter_formula(layers: int, hidden: int, bottleneck: int) -> int:
    """Adapters' added parameters: two per layer, each 2 H m + m + H."""
    return layers * 2 * (2 * hidden * bottleneck + bottleneck + hidden)


def log_ratio(a: float, b: float) -> float:
    """How many times ``a`` is ``b``, as a readable number."""
    return a / b if b else math.inf
