"""Lesson 09, attention analysis: the exercises (a head's attention entropy, its previous-token
weight, a head's class from its statistics) and the helpers the notebook uses to follow heads
over training.

The statistics are those of Clark et al. (2019), "What Does BERT Look At? An Analysis of BERT's
Attention", Sec. 3 (attention to [CLS]/[SEP]/punctuation, to the previous/next token) and
Sec. 3.3 (the entropy of each head's attention distribution), as
:func:`minibert.inspect.head_statistics` computes them: every number is an average over the
*query* tokens (the rows of the attention matrix) of real, unpadded text. Head ablation follows
Michel et al. (2019), "Are Sixteen Heads Really Better than One?", Sec. 3.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from minibert.lessons.checking import Mistake, Report, exercise

# --------------------------------------------------------------------------------------------
# Inputs the exercises use: one batch of real attention weights
# --------------------------------------------------------------------------------------------


@dataclass
class AttentionBatch:
    """Every layer's attention on a few padded sentences, as the model computed it."""

    weights: torch.Tensor  # (B, L, nh, T, T) float64: sentence, layer, head, query, key
    attention_mask: torch.Tensor  # (B, T) 1 = real token, 0 = padding
    tokens: list[list[str]]  # (B, T) token strings, padding included
    texts: list[str]

    def layer(self, index: int) -> torch.Tensor:
        """The (B, nh, T, T) weights of one layer."""
        return self.weights[:, index]


def attention_batch(
    model_source: Any, texts: Sequence[str], *, max_length: int = 128
) -> AttentionBatch:
    """Run ``texts`` through the model (padded to the longest) and keep every attention map.

    The same batching :func:`minibert.inspect.head_statistics` uses, so a statistic computed
    by hand on this batch must equal the library's on the same texts.
    """
    from minibert.inspect import load_model
    from minibert.inspect.heldout import token_batches
    from minibert.inspect.sources import attention_weights

    loaded = load_model(model_source)
    (batch,) = list(
        token_batches(
            loaded.tokenizer,
            loaded.config,
            list(texts),
            batch_size=len(texts),
            max_length=max_length,
        )
    )
    weights = attention_weights(loaded.model, batch).double()  # (B, L, nh, T, T)
    tokens = [loaded.tokenizer.convert_ids_to_tokens(row) for row in batch.input_ids.tolist()]
    return AttentionBatch(weights, batch.attention_mask, tokens, list(texts))


def _random_attention(report: Report, batch: int, heads: int, length: int, lengths: list[int]):
    """Random attention rows (softmax of random scores) over a padded batch: padding *keys*
    get exactly zero weight, like the model's mask; padding *queries* still attend (their rows
    are full distributions), which is why they must be left out of any average."""
    scores = torch.randn(batch, heads, length, length, generator=report.generator) * 2.5
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row, n in enumerate(lengths):
        mask[row, :n] = 1
    bias = torch.where(mask.bool(), 0.0, float("-inf"))[:, None, None, :]  # (B, 1, 1, T)
    weights = torch.softmax(scores.double() + bias, dim=-1)  # (B, nh, T, T)
    return weights, mask


# --------------------------------------------------------------------------------------------
# Exercise 1: the mean attention entropy of each head
# --------------------------------------------------------------------------------------------


def solution_head_entropy(weights, attention_mask):
    # entropy of every query row, in nats; 0 * log 0 counts as 0 (clamp before the log)
    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(dim=-1)  # (B, nh, T)
    real = attention_mask.bool()[:, None, :].double()  # (B, 1, T): real query rows only
    return (entropy * real).sum(dim=(0, 2)) / real.sum()  # (nh,) mean over real queries


def _entropy_log2(weights, attention_mask):
    entropy = -(weights * weights.clamp_min(1e-30).log2()).sum(dim=-1)
    real = attention_mask.bool()[:, None, :].double()
    return (entropy * real).sum(dim=(0, 2)) / real.sum()


def _entropy_mean_over_keys(weights, attention_mask):
    entropy = -(weights * weights.clamp_min(1e-30).log()).mean(dim=-1)  # mean, not sum
    real = attention_mask.bool()[:, None, :].double()
    return (entropy * real).sum(dim=(0, 2)) / real.sum()


def _entropy_with_padding(weights, attention_mask):
    entropy = -(weights * weights.clamp_min(1e-30).log()).sum(dim=-1)  # (B, nh, T)
    return entropy.mean(dim=(0, 2))  # padding rows averaged in


def _entropy_nan(weights, attention_mask):
    entropy = -(weights * weights.log()).sum(dim=-1)  # 0 * log 0 = 0 * -inf = NaN
    real = attention_mask.bool()[:, None, :].double()
    return (entropy * real).sum(dim=(0, 2)) / real.sum()


@exercise(
    "head_entropy",
    solution=solution_head_entropy,
    mistakes={
        "log base 2 instead of the natural log": Mistake(
            _entropy_log2,
            why="the answer is the right one divided by ln 2 (bits, not nats). minibert, Clark "
            "et al. and torch.distributions all use nats: use .log(), and keep one base "
            "everywhere, including the log T you compare with.",
        ),
        "averaged over keys instead of summed": Mistake(
            _entropy_mean_over_keys,
            why="the entropy of one query's row is a *sum* over its keys, -sum_j a_ij log a_ij; "
            "the average is over *queries* (rows) afterwards. .mean(-1) divides each row's "
            "entropy by T.",
        ),
        "padding queries included": Mistake(
            _entropy_with_padding,
            why="padded positions are not text, but their rows still hold a full attention "
            "distribution (over the real keys). Average only over rows whose "
            "attention_mask is 1: multiply by the mask and divide by its sum.",
        ),
        "0 · log 0 gives NaN": Mistake(
            _entropy_nan,
            why="padding keys have weight exactly 0 and log 0 = -inf, so 0 * log 0 is NaN in "
            "floating point although its limit is 0. Clamp the weights before the log "
            "(weights.clamp_min(1e-30).log()) or use torch.special.entr.",
        ),
    },
)
def check_head_entropy(fn: Callable[..., Any], report: Report) -> None:
    """Random attention over padded batches: shape (nh,), then values in nats."""
    weights, mask = _random_attention(report, 2, 3, 5, [5, 3])
    got = report.call(weights, mask)
    report.shape("the mean entropy per head", got, (3,), case="shape")
    report.passed("shape (nh,)")
    report.expect(weights, mask, case="2 sentences of 5 and 3 tokens, 3 heads")
    one_hot = torch.eye(4, dtype=torch.float64).expand(1, 2, 4, 4).clone()  # all on self
    report.expect(one_hot, torch.ones(1, 4, dtype=torch.long), case="one-hot rows (entropy 0)")
    uniform = torch.full((1, 1, 4, 4), 0.25, dtype=torch.float64)
    report.expect(uniform, torch.ones(1, 4, dtype=torch.long), case="uniform rows (log 4)")
    weights, mask = _random_attention(report, 3, 4, 7, [7, 2, 5])
    report.expect(weights, mask, case="3 sentences of 7, 2 and 5 tokens")


# --------------------------------------------------------------------------------------------
# Exercise 2: the weight on the previous token
# --------------------------------------------------------------------------------------------


def solution_previous_weight(weights, attention_mask):
    # a[i, i-1] for i = 1..T-1: the diagonal just below the main one
    previous = torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1)  # (B, nh, T-1)
    # query i has a previous token when i >= 1 and i is real (padding only trails)
    has_previous = attention_mask[:, None, 1:].double()  # (B, 1, T-1)
    return (previous * has_previous).sum(dim=(0, 2)) / has_previous.sum()  # (nh,)


def _previous_next_diagonal(weights, attention_mask):
    following = torch.diagonal(weights, offset=1, dim1=-2, dim2=-1)  # a[i, i+1]
    has = attention_mask[:, None, 1:].double()
    return (following * has).sum(dim=(0, 2)) / has.sum()


def _previous_over_all_queries(weights, attention_mask):
    previous = torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1)
    has = attention_mask[:, None, 1:].double()
    return (previous * has).sum(dim=(0, 2)) / attention_mask.sum()  # counts the first token


def _previous_with_padding(weights, attention_mask):
    previous = torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1)
    return previous.mean(dim=(0, 2))


def _previous_column_not_row(weights, attention_mask):
    # weights[..., i-1, i]: how much token i-1 attends to i, i.e. the next-token weight
    transposed = weights.transpose(-1, -2)
    previous = torch.diagonal(transposed, offset=-1, dim1=-2, dim2=-1)
    has = attention_mask[:, None, 1:].double()
    return (previous * has).sum(dim=(0, 2)) / has.sum()


@exercise(
    "previous_weight",
    solution=solution_previous_weight,
    mistakes={
        "the next-token diagonal (a[i, i+1])": Mistake(
            _previous_next_diagonal,
            why="rows are queries, columns keys: query i looks at its previous token in "
            "column i-1, the diagonal *below* the main one (offset=-1 in torch.diagonal). "
            "offset=+1 is the next token.",
        ),
        "the first token counted (it has no previous token)": Mistake(
            _previous_over_all_queries,
            why="position 0 ([CLS]) has no previous token, so it is not a query this statistic "
            "can be measured on; dividing by every real token adds a 0 per sentence and pulls "
            "the average down. Divide by the number of (i-1, i) pairs.",
        ),
        "padding queries included": Mistake(
            _previous_with_padding,
            why="padded positions are not text. Keep the pairs whose query is real: "
            "attention_mask[:, 1:] (padding only ever trails, so a real query i >= 1 always "
            "has a real previous token).",
        ),
    },
)
def check_previous_weight(fn: Callable[..., Any], report: Report) -> None:
    """A head that always looks one token back, then random attention over padded batches."""
    weights, mask = _random_attention(report, 2, 3, 5, [5, 4])
    got = report.call(weights, mask)
    report.shape("the previous-token weight per head", got, (3,), case="shape")
    report.passed("shape (nh,)")
    back = torch.zeros(1, 1, 5, 5, dtype=torch.float64)
    back[0, 0, 0, 0] = 1.0
    for i in range(1, 5):
        back[0, 0, i, i - 1] = 1.0  # every query on its previous token: the answer is 1
    report.expect(back, torch.ones(1, 5, dtype=torch.long), case="a perfect previous-token head")
    report.expect(weights, mask, case="2 sentences of 5 and 4 tokens, 3 heads")
    weights, mask = _random_attention(report, 3, 2, 6, [6, 2, 4])
    report.expect(weights, mask, case="3 sentences of 6, 2 and 4 tokens")


# --------------------------------------------------------------------------------------------
# Exercise 3: a head's class from its statistics
# --------------------------------------------------------------------------------------------


def solution_classify_head(stats, thresholds):
    # 1. one position holds most of the weight: the largest of the three wins
    positional = {"previous-token": stats["previous"], "next-token": stats["next"],
                  "self": stats["self"]}  # fmt: skip
    best = max(positional, key=positional.get)
    if positional[best] >= thresholds["positional"]:
        return best
    # 2. parked on delimiters: [CLS], [SEP] and punctuation together
    if stats["cls"] + stats["sep"] + stats["punctuation"] >= thresholds["delimiter"]:
        return "delimiter"
    # 3. spread out: entropy relative to its maximum, log(number of keys)
    if stats["normalized_entropy"] >= thresholds["broad"]:
        return "broad"
    return "mixed"


def _classify_broad_first(stats, thresholds):
    if stats["normalized_entropy"] >= thresholds["broad"]:
        return "broad"
    positional = {"previous-token": stats["previous"], "next-token": stats["next"],
                  "self": stats["self"]}  # fmt: skip
    best = max(positional, key=positional.get)
    if positional[best] >= thresholds["positional"]:
        return best
    if stats["cls"] + stats["sep"] + stats["punctuation"] >= thresholds["delimiter"]:
        return "delimiter"
    return "mixed"


def _classify_delimiter_without_punctuation(stats, thresholds):
    positional = {"previous-token": stats["previous"], "next-token": stats["next"],
                  "self": stats["self"]}  # fmt: skip
    best = max(positional, key=positional.get)
    if positional[best] >= thresholds["positional"]:
        return best
    if stats["cls"] + stats["sep"] >= thresholds["delimiter"]:
        return "delimiter"
    if stats["normalized_entropy"] >= thresholds["broad"]:
        return "broad"
    return "mixed"


def _classify_first_positional(stats, thresholds):
    for name, key in (("previous-token", "previous"), ("next-token", "next"), ("self", "self")):
        if stats[key] >= thresholds["positional"]:
            return name
    if stats["cls"] + stats["sep"] + stats["punctuation"] >= thresholds["delimiter"]:
        return "delimiter"
    if stats["normalized_entropy"] >= thresholds["broad"]:
        return "broad"
    return "mixed"


def _classify_raw_entropy(stats, thresholds):
    positional = {"previous-token": stats["previous"], "next-token": stats["next"],
                  "self": stats["self"]}  # fmt: skip
    best = max(positional, key=positional.get)
    if positional[best] >= thresholds["positional"]:
        return best
    if stats["cls"] + stats["sep"] + stats["punctuation"] >= thresholds["delimiter"]:
        return "delimiter"
    if stats["entropy"] >= thresholds["broad"]:
        return "broad"
    return "mixed"


def _head(**values: float) -> dict[str, float]:
    base = {
        "entropy": 1.0, "normalized_entropy": 0.5, "distance": 3.0, "cls": 0.05, "sep": 0.05,
        "punctuation": 0.05, "self": 0.1, "previous": 0.1, "next": 0.1,
    }  # fmt: skip
    base.update(values)
    return base


CLASSIFY_CASES = [
    (_head(previous=0.8), "a previous-token head"),
    (_head(next=0.6, self=0.3), "a next-token head"),
    (_head(sep=0.7, entropy=0.9, normalized_entropy=0.3), "a [SEP] head"),
    (_head(cls=0.2, sep=0.2, punctuation=0.2), "delimiters including punctuation"),
    (_head(normalized_entropy=0.9, entropy=2.8), "a broad head"),
    (_head(previous=0.55, normalized_entropy=0.85, entropy=2.5), "previous-token and broad"),
    (_head(next=0.52, self=0.58), "two positions over 0.5: the larger wins"),
    (_head(normalized_entropy=0.6, entropy=1.7), "a mixed head with entropy above 0.8 nats"),
    (_head(), "a mixed head"),
]


@exercise(
    "classify_head",
    solution=solution_classify_head,
    mistakes={
        "broad tested before the positional classes": Mistake(
            _classify_broad_first,
            why="the rules are checked in order: positional first, then delimiter, then broad. "
            "A head can put 0.55 on the previous token and still have a high entropy over the "
            "rest; it is a previous-token head.",
        ),
        "delimiter without punctuation": Mistake(
            _classify_delimiter_without_punctuation,
            why="a delimiter head parks its weight on [CLS], [SEP] *and* punctuation (Clark et "
            "al. Sec. 3.2 treat '.' and ',' like [SEP]); add stats['punctuation'].",
        ),
        "first positional class over the threshold, not the largest": Mistake(
            _classify_first_positional,
            why="when two positions both pass 0.5 (possible only in aggregate, averaged over "
            "queries), the head belongs to the one with the most weight: take the max first.",
        ),
        "raw entropy instead of normalized entropy": Mistake(
            _classify_raw_entropy,
            why="entropy in nats grows with the sentence length (uniform over T keys gives "
            "log T); the 0.8 threshold is for normalized_entropy = entropy / log T, which is 1 "
            "for uniform attention at any length.",
        ),
    },
)
def check_classify_head(fn: Callable[..., Any], report: Report) -> None:
    """Hand-made statistics for each class, then the borderline cases the order decides."""
    from minibert.inspect.heads import CLASS_THRESHOLDS

    got = report.call(_head(), dict(CLASS_THRESHOLDS))
    if not isinstance(got, str):
        report.fail(f"return the class name as a str (e.g. 'broad'); got {got!r}")
    for stats, case in CLASSIFY_CASES:
        report.expect(stats, dict(CLASS_THRESHOLDS), case=case)


# --------------------------------------------------------------------------------------------
# Helpers the notebook calls
# --------------------------------------------------------------------------------------------


def stats_of_head(stats: Any, layer: int, head: int) -> dict[str, float]:
    """One head's statistics from a :class:`~minibert.inspect.heads.HeadStats`, as floats."""
    return {name: float(values[layer, head]) for name, values in stats.metrics.items()}


def class_counts(stats: Any) -> dict[str, int]:
    """How many heads fall in each class (every class listed, zeros included)."""
    from minibert.inspect.heads import HEAD_CLASSES

    return {name: int((stats.classes == name).sum()) for name in HEAD_CLASSES}


CHECKPOINT_RUN_NAME = "lesson-09-checkpoints"
MIN_CHECKPOINTS = 4  # fewer than this and "over training" is two or three points: train a run


def checkpointed_run(lesson: Any, pretrained: str | Path) -> Path:
    """A run with enough checkpoints to follow heads over training.

    ``pretrained`` (lesson 06's run, the demo's, or :func:`minibert.lessons.pretrained_run`'s)
    when it has at least :data:`MIN_CHECKPOINTS`; otherwise ``runs/lesson-09-checkpoints``,
    made once here: the tiny preset with the same recipe, a checkpoint every few steps
    (about 45 s of training). Fast mode takes any run with a checkpoint.
    """
    import torch

    from minibert.inspect import list_checkpoints
    from minibert.lessons.runs import is_finished_run
    from minibert.train.pretraining import pretrain

    have = len(list_checkpoints(pretrained))
    # Fast mode (CI) only proves the cells run: step 0 and whatever the run has will do.
    if have >= MIN_CHECKPOINTS or (lesson.fast and have >= 1):
        return Path(pretrained)
    target = Path(lesson.runs_dir) / CHECKPOINT_RUN_NAME
    budget = lesson.pick(full=45.0, fast=5.0)
    if is_finished_run(target) and len(list_checkpoints(target)) >= (2 if lesson.fast else 3):
        return target
    print(
        f"{pretrained} has fewer than {MIN_CHECKPOINTS} checkpoints: pretraining a tiny run "
        f"for {budget:.0f} s with frequent checkpoints into {target} (once)."
    )
    pretrain(
        out=target,
        overwrite=True,
        overrides={
            "preset": "tiny",
            "time_budget": budget,
            "seed": 0,
            "progress": False,
            "num_threads": torch.get_num_threads(),
            "checkpoint_every": lesson.pick(full=3, fast=1),
            "keep_checkpoints": 0,
            "eval_every": 1000,
        },
    )
    return target


def initial_model(run_dir: str | Path) -> Any:
    """A fresh model built as the run's step 0 was: its architecture and its initialisation
    recipe (:func:`minibert.init.recipe_init_`), with the run's tokenizer.

    Not the same random draw as the run's own step 0 (training derives its seeds), but the
    same recipe: what every head looks like before any training.
    """
    import dataclasses
    import json

    import torch

    from minibert.config import BertConfig
    from minibert.data.tokenizer import load_tokenizer
    from minibert.heads import BertForMaskedLM
    from minibert.init import recipe_init_
    from minibert.inspect import load_model
    from minibert.train.settings import InitConfig

    run = Path(run_dir)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    config = BertConfig.from_json_file(run / "final" / "config.json", strict=False)
    torch.manual_seed(int(info.get("seed", 0)))
    model = BertForMaskedLM(config)
    fields = {f.name for f in dataclasses.fields(InitConfig)}
    init = InitConfig(**{k: v for k, v in info["config"]["init"].items() if k in fields})
    # The output bias does not touch attention; zeros spares counting the training data.
    recipe_init_(model, dataclasses.replace(init, mlm_bias_init="zeros"))
    return load_model(model, tokenizer=load_tokenizer(run / "tokenizer"))


def heads_over_training(
    run_dir: str | Path, texts: Sequence[str], *, every: int = 1, step_zero: bool = True
) -> list[dict[str, Any]]:
    """Head statistics at every ``every``-th checkpoint of a run (and, with ``step_zero``, of
    :func:`initial_model`): per step the strongest previous-token head, the strongest [SEP]
    head, the mean normalized entropy and the class counts.

    The question of Clark et al.'s Sec. 3 asked over time: when do positional and delimiter
    heads appear during pretraining?
    """
    from minibert.inspect import head_statistics, list_checkpoints

    sources = [(0, initial_model(run_dir))] if step_zero else []
    sources += [(info.step, info.path) for info in list_checkpoints(run_dir)[::every]]
    rows = []
    for step, source in sources:
        stats = head_statistics(source, texts)
        prev = stats.metrics["previous"]
        sep = stats.metrics["sep"]
        rows.append(
            {
                "step": step,
                "max_previous": float(prev.max()),
                "previous_head": tuple(int(i) for i in np.unravel_index(prev.argmax(), prev.shape)),
                "max_sep": float(sep.max()),
                "sep_head": tuple(int(i) for i in np.unravel_index(sep.argmax(), sep.shape)),
                "mean_normalized_entropy": float(stats.metrics["normalized_entropy"].mean()),
                **class_counts(stats),
            }
        )
    return rows


def first_step_over(rows: Sequence[dict[str, Any]], key: str, threshold: float) -> int | None:
    """The first checkpoint step at which ``rows[i][key]`` reaches ``threshold`` (None: never)."""
    for row in rows:
        if row[key] >= threshold:
            return int(row["step"])
    return None


def over_training_figure(rows: Sequence[dict[str, Any]], thresholds: dict[str, float]):
    """Strongest previous-token and [SEP] weight, and mean normalized entropy, against step."""
    import plotly.graph_objects as go

    steps = [row["step"] for row in rows]
    fig = go.Figure()
    for key, name in [
        ("max_previous", "strongest previous-token weight"),
        ("max_sep", "strongest [SEP] weight"),
        ("mean_normalized_entropy", "mean normalized entropy (all heads)"),
    ]:
        fig.add_trace(
            go.Scatter(x=steps, y=[row[key] for row in rows], mode="lines+markers", name=name)
        )
    fig.add_hline(
        y=thresholds["positional"],
        line_dash="dot",
        annotation_text=f"class threshold {thresholds['positional']}",
    )
    fig.update_layout(
        title="Heads during pretraining (held-out sentences)",
        xaxis_title="training step",
        yaxis_title="average attention weight / normalized entropy",
        yaxis_range=[0, 1.05],
        height=420,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def layer_means(values: np.ndarray) -> list[float]:
    """The mean over heads of each layer's row of an (L, nh) array."""
    return [float(row.mean()) for row in np.asarray(values)]


def entropy_bits(nats: float) -> float:
    """An entropy in nats as bits (divide by ln 2)."""
    return nats / math.log(2)
