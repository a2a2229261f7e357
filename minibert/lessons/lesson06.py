"""Lesson 06, pretraining: the exercises (masked-token accuracy, the learning-rate schedule)
and the glue the notebook uses to train live and to compare short runs.

Masked language modelling (Devlin et al. 2019, Sec. 3.1, Task #1): the loss and the accuracy
count only the positions selected for prediction; every other label is ``IGNORE_INDEX``
(-100), PyTorch's ``cross_entropy`` convention. The schedule is BERT's (App. A.2: linear warmup,
then linear decay) or a cosine decay, as a function of training *progress* in [0, 1]
(:class:`minibert.train.schedule.LRSchedule`; with a time budget progress is the share of the
budget spent, Geiping & Goldstein 2022, Sec. 4.2).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minibert.constants import IGNORE_INDEX
from minibert.lessons.checking import Mistake, Report, exercise
from minibert.train.schedule import LRSchedule

# --------------------------------------------------------------------------------------------
# Exercise 1: masked-token accuracy
# --------------------------------------------------------------------------------------------


def solution_masked_accuracy(logits, labels):
    predicted = logits.argmax(dim=-1)  # (B, T): the most probable token at each position
    selected = labels != -100  # (B, T): the positions the MLM was asked to predict
    correct = (predicted == labels) & selected
    return correct.sum().item() / max(selected.sum().item(), 1)


def _accuracy_over_every_position(logits, labels):
    return (logits.argmax(dim=-1) == labels).float().mean().item()


def _accuracy_per_sequence_then_mean(logits, labels):
    predicted = logits.argmax(dim=-1)
    selected = labels != -100
    per_row = ((predicted == labels) & selected).sum(-1) / selected.sum(-1).clamp(min=1)
    return per_row.float().mean().item()


def _accuracy_ignores_label_zero(logits, labels):
    predicted = logits.argmax(dim=-1)
    selected = labels > 0  # drops -100, but also the real token id 0
    return ((predicted == labels) & selected).sum().item() / max(selected.sum().item(), 1)


def _accuracy_cases(report: Report) -> list[tuple[torch.Tensor, torch.Tensor, str]]:
    g = report.generator
    cases = []
    for batch, length, vocab, share in [(2, 6, 5, 0.5), (4, 9, 11, 0.2), (3, 16, 7, 0.3)]:
        logits = torch.randn(batch, length, vocab, generator=g)  # (B, T, V)
        tokens = torch.randint(0, vocab, (batch, length), generator=g)
        chosen = torch.rand(batch, length, generator=g) < share
        chosen[0, 0] = True  # every case has at least one prediction
        # Make about half of the chosen positions right, so accuracy is not near 0.
        right = torch.rand(batch, length, generator=g) < 0.5
        tokens = torch.where(chosen & right, logits.argmax(-1), tokens)
        labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE_INDEX))
        cases.append((logits, labels, f"B={batch}, T={length}, V={vocab}"))
    # Rows with different numbers of predictions, and label 0 (a real token id) among them.
    logits = torch.full((2, 5, 3), -1.0)
    logits[..., 0] = 1.0  # the model always guesses token 0
    labels = torch.tensor([[0, -100, -100, -100, -100], [0, 1, 2, 1, -100]])
    cases.append((logits, labels, "rows with 1 and 4 predictions, token id 0 among the labels"))
    return cases


@exercise(
    "masked_accuracy",
    solution=solution_masked_accuracy,
    mistakes={
        "counted the ignored positions (-100)": Mistake(
            _accuracy_over_every_position,
            why="the labels are -100 wherever nothing was masked; a mean over every position "
            "counts those as wrong answers (and an MLM that copies its input would look "
            "perfect if they held the input ids). Keep only positions with labels != -100.",
        ),
        "averaged per sequence, then over sequences": Mistake(
            _accuracy_per_sequence_then_mean,
            why="a sequence with one masked token then weighs as much as one with twenty. The "
            "metric is per masked token: count correct predictions over the whole batch and "
            "divide by the number of masked positions in the whole batch.",
        ),
        "treated token id 0 as 'no label'": Mistake(
            _accuracy_ignores_label_zero,
            why="only -100 means 'not predicted'; 0 is a real vocabulary id. Select with "
            "labels != -100, not labels > 0.",
        ),
    },
)
def check_masked_accuracy(fn: Callable[..., float], report: Report) -> None:
    """Random logits and labels of a few shapes; rows with different numbers of predictions."""
    got = report.call(torch.zeros(1, 2, 3), torch.tensor([[1, -100]]))
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            report.fail(
                f"return one number (the accuracy), got a tensor of shape {tuple(got.shape)}"
            )
    elif not isinstance(got, (int, float)):
        report.fail(f"return one number (the accuracy), got {type(got).__name__}: {got!r}")
    for logits, labels, case in _accuracy_cases(report):
        report.expect(logits, labels, case=case)


def heldout_logits(run: str | Path, count: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """The final model's MLM logits ``(N, T, V)`` and labels ``(N, T)`` on the first ``count``
    held-out examples of ``run``, masked exactly as training evaluated them (fixed seed)."""
    from minibert.data.pipeline import prepare_data
    from minibert.heads import BertForMaskedLM, BertForPreTraining
    from minibert.train.overrides import config_from_dict
    from minibert.train.preflight import read_run_info
    from minibert.train.pretraining import PretrainingTask, build_eval_examples
    from minibert.train.settings import PretrainConfig

    run = Path(run)
    config = config_from_dict(PretrainConfig, read_run_info(run, kind="pretrain")["config"])
    data = prepare_data(config.data, progress=False)
    examples = build_eval_examples(config, data, count)
    model_class = BertForPreTraining if config.objective.nsp else BertForMaskedLM
    model = model_class.from_pretrained(run / "final").eval()
    task = PretrainingTask(config, data.tokenizer, [], examples, model=model)
    all_logits, all_labels = [], []
    with torch.no_grad():
        for batch in task.eval_batches():
            inputs = {
                k: v
                for k, v in batch.items()
                if k in ("input_ids", "attention_mask", "token_type_ids")
            }
            out = model(**inputs)
            logits = out.logits if hasattr(out, "logits") else out.prediction_logits
            all_logits.append(logits.float())  # (B, T, V)
            all_labels.append(batch["labels"])  # (B, T), -100 where nothing was masked
    return torch.cat(all_logits), torch.cat(all_labels)


# --------------------------------------------------------------------------------------------
# Exercise 2: the learning-rate schedule
# --------------------------------------------------------------------------------------------


def solution_lr_factor(progress, warmup, kind="linear", min_ratio=0.0):
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return p / warmup  # linear warmup from 0 to the peak
    decay = (p - warmup) / (1.0 - warmup)  # 0 at the end of warmup, 1 at the end of training
    # linear: a straight line from 1 to 0; cosine: half a period of cos, from 1 down to 0
    shape = 1.0 - decay if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * decay))
    return min_ratio + (1.0 - min_ratio) * shape  # rescaled so the decay ends at min_ratio


def _lr_decay_from_start(progress, warmup, kind="linear", min_ratio=0.0):
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return p / warmup
    decay = p  # measured from the start of training, not from the end of warmup
    shape = 1.0 - decay if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * decay))
    return min_ratio + (1.0 - min_ratio) * shape


def _lr_ignores_floor(progress, warmup, kind="linear", min_ratio=0.0):
    return solution_lr_factor(progress, warmup, kind, 0.0)


def _lr_floor_clipped(progress, warmup, kind="linear", min_ratio=0.0):
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return p / warmup
    decay = (p - warmup) / (1.0 - warmup)
    shape = 1.0 - decay if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * decay))
    return max(min_ratio, shape)  # flat at the floor instead of a decay that ends there


def _lr_cosine_full_period(progress, warmup, kind="linear", min_ratio=0.0):
    if kind != "cosine":
        return solution_lr_factor(progress, warmup, kind, min_ratio)
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p < warmup:
        return p / warmup
    decay = (p - warmup) / (1.0 - warmup)
    shape = 0.5 * (1.0 + math.cos(2 * math.pi * decay))  # comes back up to 1 at the end
    return min_ratio + (1.0 - min_ratio) * shape


def _lr_warmup_from_one_step(progress, warmup, kind="linear", min_ratio=0.0):
    p = min(max(progress, 0.0), 1.0)
    if warmup > 0 and p <= warmup:
        return min(1.0, p / warmup + 0.1)  # starts at 0.1: the "step + 1" of a step count
    return solution_lr_factor(progress, warmup, kind, min_ratio)


LR_CASES = [
    (0.0, 0.1, "linear", 0.0, "the very start (warmup begins at 0)"),
    (0.05, 0.1, "linear", 0.0, "half-way through warmup"),
    (0.1, 0.1, "linear", 0.0, "the end of warmup (the peak)"),
    (0.55, 0.1, "linear", 0.0, "half-way through the decay"),
    (1.0, 0.1, "linear", 0.0, "the end (linear decays to 0)"),
    (0.3, 0.0, "linear", 0.0, "no warmup"),
    (0.55, 0.1, "cosine", 0.0, "cosine, half-way through the decay"),
    (0.9, 0.2, "cosine", 0.0, "cosine near the end"),
    (1.0, 0.1, "cosine", 0.0, "cosine at the end"),
    (0.95, 0.1, "linear", 0.1, "a floor of 0.1, near the end (below the floor if ignored)"),
    (0.55, 0.1, "linear", 0.1, "a floor of 0.1, half-way"),
    (0.9, 0.1, "linear", 0.1, "a floor of 0.1, near the end"),
    (1.0, 0.1, "cosine", 0.2, "cosine to a floor of 0.2"),
    (1.5, 0.1, "linear", 0.0, "progress past 1 (clamped)"),
]


@exercise(
    "lr_schedule",
    solution=solution_lr_factor,
    mistakes={
        "decay measured from the start of training, not from the end of warmup": Mistake(
            _lr_decay_from_start,
            why="the decay must start at the peak: rescale progress to (p - warmup) / (1 - "
            "warmup), which is 0 when warmup ends and 1 at the end. Measured from p, the rate "
            "jumps down when warmup ends and never reaches the peak.",
        ),
        "decays to zero instead of to min_ratio": Mistake(
            _lr_ignores_floor,
            why="min_ratio is the floor the decay ends at, as a share of the peak: "
            "min_ratio + (1 - min_ratio) * shape.",
        ),
        "floor by clipping (max) instead of rescaling": Mistake(
            _lr_floor_clipped,
            why="max(min_ratio, shape) decays at full slope and then sits flat on the floor; "
            "the schedule rescales the decay so it reaches the floor exactly at the end: "
            "min_ratio + (1 - min_ratio) * shape.",
        ),
        "cosine over a full period (it comes back up)": Mistake(
            _lr_cosine_full_period,
            why="cos(2 pi d) goes 1 -> -1 -> 1: the rate rises again at the end. Half a "
            "period, 0.5 * (1 + cos(pi d)), goes from 1 down to 0.",
        ),
        "warmup off by one (it starts above zero)": Mistake(
            _lr_warmup_from_one_step,
            why="warmup is p / warmup, 0 at the very start; counting steps from 1 (or adding "
            "one step) starts the ramp above zero and reaches the peak early.",
        ),
    },
)
def check_lr_schedule(fn: Callable[..., float], report: Report) -> None:
    """Warmup start, middle and peak; the decay's middle and end; cosine; a floor; p > 1."""
    got = report.call(0.5, 0.1, "linear", 0.0)
    if isinstance(got, torch.Tensor):
        got = got.item()
    if not isinstance(got, (int, float)):
        report.fail(f"return one number (the multiplier), got {type(got).__name__}: {got!r}")
    for progress, warmup, kind, floor, case in LR_CASES:
        report.expect(progress, warmup, kind, floor, case=case, atol=1e-6)
    # The library's schedule, on a grid: the same multiplier everywhere.
    for kind in ("linear", "cosine"):
        library = LRSchedule(kind=kind, warmup=0.1, min_ratio=0.05)
        for i in range(21):
            p = i / 20
            report.close(
                f"factor at progress {p:.2f} ({kind}, warmup 0.1, min_ratio 0.05) vs LRSchedule",
                fn(p, 0.1, kind, 0.05),
                library.factor(p),
                atol=1e-6,
            )
    report.note("it agrees with minibert.train.schedule.LRSchedule on a grid of 21 points")


def schedule_figure(
    factor: Callable[..., float],
    *,
    peak_lr: float,
    warmup: float,
    kind: str = "linear",
    min_ratio: float = 0.0,
    logged: Sequence[Mapping[str, Any]] = (),
    time_budget: float | None = None,
) -> Any:
    """The learning rate against progress from ``factor``; with ``logged`` (a run's train
    metric lines) and its ``time_budget``, the rates the trainer really used as dots."""
    import plotly.graph_objects as go

    xs = [i / 200 for i in range(201)]
    fig = go.Figure()
    fig.add_scatter(
        x=xs,
        y=[peak_lr * factor(x, warmup, kind, min_ratio) for x in xs],
        mode="lines",
        name=f"{kind}, warmup {warmup:.0%}, floor {min_ratio:g}",
    )
    if logged and time_budget:
        points = [r for r in logged if r.get("lr") is not None and r.get("time") is not None]
        fig.add_scatter(
            x=[min(r["time"] / time_budget, 1.0) for r in points],
            y=[r["lr"] for r in points],
            mode="markers",
            name="what the trainer used (metrics.jsonl)",
        )
    fig.update_layout(
        title="Learning rate over training",
        xaxis_title="progress (share of the time budget spent)",
        yaxis_title="learning rate",
        height=340,
    )
    return fig


# --------------------------------------------------------------------------------------------
# Training with a live curve
# --------------------------------------------------------------------------------------------

LIVE_METRICS = ("loss", "mlm_accuracy")


def _curve(run: Path, records: list[dict[str, Any]], title: str) -> Any:
    import plotly.graph_objects as go

    from minibert.viz import training_curves

    if not any(metric in r for r in records for metric in LIVE_METRICS):
        fig = go.Figure()  # nothing logged yet: an empty frame with the status as its title
        fig.update_layout(title=title, height=460, xaxis_title="training time (s)")
        return fig
    fig = training_curves({run.name: records}, y=list(LIVE_METRICS), x="time")
    fig.update_layout(title=title, height=460)
    return fig


def _bundle(fig: Any) -> dict[str, Any]:
    """The figure as the MIME bundle the active plotly renderer makes (JSON for Jupyter)."""
    return fig._repr_mimebundle_()


def train_live(
    out: str | Path,
    overrides: Mapping[str, Any],
    *,
    refresh_seconds: float = 3.0,
    overwrite: bool = True,
) -> Any:
    """Pretrain into ``out`` with a learning curve that redraws while it trains.

    Training runs in this (the main) thread, so the notebook's interrupt button stops it
    cleanly (the trainer saves a checkpoint); a helper thread re-reads ``metrics.jsonl`` with
    :class:`~minibert.inspect.runs.MetricsTail` every ``refresh_seconds`` and replaces the
    figure in place (IPython's ``display_id``). The last redraw shows the finished run, which
    is what a saved notebook or its HTML export keeps. Returns the trainer's result.
    """
    from IPython.display import display

    from minibert.inspect.runs import MetricsTail
    from minibert.train.pretraining import pretrain

    out = Path(out)
    budget = overrides.get("time_budget")
    records: list[dict[str, Any]] = []
    # A figure's own display hook (plotly's _ipython_display_) would add a new output at each
    # redraw; its MIME bundle with a display_id is replaced in place instead.
    handle = display(
        _bundle(_curve(out, records, "Starting: loading the data and building the model ...")),
        raw=True,
        display_id=True,
    )
    stop = threading.Event()
    started = time.perf_counter()
    state: dict[str, Any] = {"tail": None}

    def refresh(title: str) -> None:
        if state["tail"] is None and (out / "metrics.jsonl").exists():
            state["tail"] = MetricsTail(out)
        if state["tail"] is not None:
            new = state["tail"].read_new()
            if state["tail"].reset:
                records.clear()
            records.extend(new)
        handle.update(_bundle(_curve(out, records, title)), raw=True)

    def loop() -> None:
        while not stop.wait(refresh_seconds):
            steps = max((r.get("step", 0) for r in records), default=0)
            spent = f"{time.perf_counter() - started:.0f} s"
            refresh(
                f"Training ... {spent} wall, step {steps}"
                + (f" (budget {budget} s)" if budget else "")
            )

    helper = threading.Thread(target=loop, daemon=True)
    # Recreate the run from scratch each time the cell runs (the folder is the lesson's own).
    out.parent.mkdir(parents=True, exist_ok=True)
    had_run = out.exists() and any(out.iterdir())
    helper.start()
    try:
        result = pretrain(out=out, overrides=dict(overrides), overwrite=overwrite and had_run)
    finally:
        stop.set()
        helper.join()
        state["tail"] = None  # a rewritten file: read it all again for the final picture
        records.clear()
        refresh(f"{out.name}: finished in {time.perf_counter() - started:.0f} s wall")
    return result


# --------------------------------------------------------------------------------------------
# Comparing runs: the plateau and NSP
# --------------------------------------------------------------------------------------------


def pretrain_quietly(out: str | Path, overrides: Mapping[str, Any]) -> Path:
    """A short pretraining run into ``out`` (replacing an earlier one); its path."""
    from minibert.train.pretraining import pretrain

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    had_run = out.exists() and any(out.iterdir())
    pretrain(out=out, overrides=dict(overrides), overwrite=had_run)
    return out


def last_eval(run: str | Path) -> dict[str, Any]:
    """The run's last held-out evaluation line of ``metrics.jsonl``."""
    from minibert.train import read_metrics

    evals = read_metrics(run, split="eval")
    if not evals:
        raise ValueError(f"{run} has no evaluation yet (metrics.jsonl has no eval line)")
    return evals[-1]


def last_train_step(run: str | Path) -> int:
    """The last optimizer step a run logged."""
    from minibert.train import read_metrics

    return max((r.get("step", 0) for r in read_metrics(run)), default=0)


def plateau_rows(
    runs: Mapping[str, str | Path], sentences: Sequence[str], *, num_sentences: int = 16
) -> list[dict[str, Any]]:
    """Per run: held-out accuracy and loss, steps, layer by layer the heads' mean normalized
    attention entropy (1.0 = uniform) and largest previous/next-token weight, and the top-3
    fill-mask guesses for each of ``sentences``."""
    from minibert.inspect import fill_mask, head_statistics, load_model

    rows = []
    for name, run in runs.items():
        model = load_model(run)
        stats = head_statistics(model, num_sentences=num_sentences)
        entropy = stats.metrics["normalized_entropy"]  # (L, nh)
        # (L, nh): each head's weight on its previous or its next token, whichever is larger
        neighbour = np.maximum(stats.metrics["previous"], stats.metrics["next"])
        evaluation = last_eval(run)
        guesses = []
        for text in sentences:
            result = fill_mask(model, text, top_k=3)
            guesses.append(", ".join(g.token for g in result.guesses[0]))
        rows.append(
            {
                "run": name,
                "steps": last_train_step(run),
                "accuracy": evaluation["mlm_accuracy"],
                "loss": evaluation["mlm_loss"],
                "entropy_by_layer": [float(x) for x in entropy.mean(axis=1)],
                "neighbour_by_layer": [float(x) for x in neighbour.max(axis=1)],
                "classes": [str(c) for c in stats.classes.reshape(-1)],
                "guesses": guesses,
            }
        )
    return rows


def print_plateau_table(rows: Sequence[Mapping[str, Any]], sentences: Sequence[str]) -> None:
    """The rows of :func:`plateau_rows` as a readable table."""
    print(
        f"{'run':<22} {'steps':>6} {'held-out acc':>13} {'loss':>6}  mean entropy by layer"
        "   best neighbour weight by layer"
    )
    for row in rows:
        entropy = " ".join(f"{x:.2f}" for x in row["entropy_by_layer"])
        neighbour = " ".join(f"{x:.2f}" for x in row["neighbour_by_layer"])
        print(
            f"{row['run']:<22} {row['steps']:>6} {row['accuracy']:>13.1%} {row['loss']:>6.2f}  "
            f"{entropy:<22}  {neighbour}"
        )
    print()
    for i, text in enumerate(sentences):
        print(text)
        for row in rows:
            print(f"    {row['run']:<22} -> {row['guesses'][i]}")
