"""Lesson 07, fine-tuning for classification: the exercises (macro-F1, the classification head
on [CLS]) and the glue that runs and tabulates the lesson's fine-tuning experiments.

Sequence classification as BERT does it (Devlin et al. 2019, Sec. 4.1 and Fig. 4): the final
hidden state of ``[CLS]`` goes through the pooler, ``tanh(W_p h + b_p)`` (the layer NSP trained),
then one linear layer to the class logits; every weight is fine-tuned. Macro-F1 is the
unweighted mean over classes of each class's F1 (the harmonic mean of its precision and
recall), so a rare class counts as much as a frequent one (Sokolova & Lapalme 2009, Table 3).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from minibert.lessons.checking import Mistake, Report, exercise
from minibert.train.metrics import macro_f1

# --------------------------------------------------------------------------------------------
# Exercise 1: macro-F1
# --------------------------------------------------------------------------------------------


def solution_macro_f1(gold, predicted, num_labels):
    f1s = []
    for c in range(num_labels):
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == c and p == c)
        gold_c = sum(1 for g in gold if g == c)  # TP + FN
        predicted_c = sum(1 for p in predicted if p == c)  # TP + FP
        if gold_c == 0 and predicted_c == 0:
            continue  # a class that never occurs has no F1; leave it out of the mean
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / gold_c if gold_c else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return sum(f1s) / len(f1s) if f1s else 0.0


def _per_class(gold, predicted, num_labels):
    rows = []
    for c in range(num_labels):
        tp = sum(1 for g, p in zip(gold, predicted, strict=True) if g == c and p == c)
        gold_c = sum(1 for g in gold if g == c)
        predicted_c = sum(1 for p in predicted if p == c)
        precision = tp / predicted_c if predicted_c else 0.0
        recall = tp / gold_c if gold_c else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append((c, gold_c, predicted_c, precision, recall, f1))
    return rows


def _micro_f1(gold, predicted, num_labels):
    # Pooled over classes, precision = recall = F1 = accuracy for single-label classification.
    return (
        sum(1 for g, p in zip(gold, predicted, strict=True) if g == p) / len(gold) if gold else 0.0
    )


def _macro_over_predicted(gold, predicted, num_labels):
    f1s = [r[5] for r in _per_class(gold, predicted, num_labels) if r[2] > 0]
    return sum(f1s) / len(f1s) if f1s else 0.0


def _macro_over_gold(gold, predicted, num_labels):
    f1s = [r[5] for r in _per_class(gold, predicted, num_labels) if r[1] > 0]
    return sum(f1s) / len(f1s) if f1s else 0.0


def _macro_over_every_label(gold, predicted, num_labels):
    f1s = [r[5] for r in _per_class(gold, predicted, num_labels)]
    return sum(f1s) / len(f1s) if f1s else 0.0


def _arithmetic_mean_f1(gold, predicted, num_labels):
    f1s = [(r[3] + r[4]) / 2 for r in _per_class(gold, predicted, num_labels) if r[1] or r[2]]
    return sum(f1s) / len(f1s) if f1s else 0.0


def _support_weighted_f1(gold, predicted, num_labels):
    rows = _per_class(gold, predicted, num_labels)
    return sum(r[5] * r[1] for r in rows) / len(gold) if gold else 0.0


MACRO_F1_CASES = [
    ([0, 0, 0, 0, 1, 1, 2, 2], [0, 0, 0, 1, 1, 0, 2, 1], 3, "three classes, some confusion"),
    ([0, 0, 0, 0, 0, 0, 1, 2], [0, 0, 0, 0, 0, 0, 0, 0], 3, "always the majority class"),
    ([0, 1, 1, 2, 2, 2], [0, 1, 1, 2, 2, 3], 5, "a class predicted but never gold, one unused"),
    ([0, 1, 2, 3, 3, 3], [0, 1, 1, 3, 3, 3], 4, "a gold class never predicted"),
    ([1, 1, 0, 0], [1, 1, 0, 0], 2, "all right"),
]


@exercise(
    "macro_f1",
    solution=solution_macro_f1,
    mistakes={
        "micro F1 (that is accuracy)": Mistake(
            _micro_f1,
            why="pooling true and false positives over all classes gives micro-F1, which for "
            "single-label classification equals accuracy; a model that always says the "
            "majority class scores high. Compute F1 per class, then take the plain mean.",
        ),
        "averaged over the predicted classes only": Mistake(
            _macro_over_predicted,
            why="a class the model never predicts has F1 0 and must pull the mean down; "
            "leaving it out rewards a model that ignores rare classes. Average over every class "
            "that occurs in gold or in the predictions.",
        ),
        "averaged over the gold classes only": Mistake(
            _macro_over_gold,
            why="a class the model predicts but that never occurs in gold is all false "
            "positives (F1 0); it counts too. Average over the classes present in gold or in "
            "the predictions (minibert.train.metrics.macro_f1's convention).",
        ),
        "averaged over every label, absent ones as 0": Mistake(
            _macro_over_every_label,
            why="a class that occurs neither in gold nor in the predictions has no F1 (0/0); "
            "counting it as 0 lowers the score for a label the test set does not contain. "
            "Leave such classes out.",
        ),
        "arithmetic mean of precision and recall": Mistake(
            _arithmetic_mean_f1,
            why="F1 is the harmonic mean, 2PR/(P+R): a class with precision 1 and recall 0 has "
            "F1 0, not 0.5.",
        ),
        "weighted by support (weighted F1, not macro)": Mistake(
            _support_weighted_f1,
            why="weighting each class's F1 by its number of gold examples is 'weighted F1'; "
            "macro gives every class the same weight, so rare topics count.",
        ),
    },
)
def check_macro_f1(fn: Callable[..., float], report: Report) -> None:
    """Small hand-made cases (majority class, absent classes), then random labels vs
    minibert.train.metrics.macro_f1."""
    got = report.call([0, 1], [0, 1], 2)
    if isinstance(got, torch.Tensor):
        got = got.item()
    if not isinstance(got, (int, float)):
        report.fail(f"return one number (the macro-F1), got {type(got).__name__}: {got!r}")
    for gold, predicted, n, case in MACRO_F1_CASES:
        report.expect(gold, predicted, n, case=case)
    for trial in range(5):
        n = report.random.randint(2, 7)
        size = report.random.randint(5, 40)
        gold = [report.random.randrange(n) for _ in range(size)]
        predicted = [
            g if report.random.random() < 0.5 else report.random.randrange(n) for g in gold
        ]
        report.expect(gold, predicted, n, case=f"random {n} classes, {size} examples")
        report.close(
            f"random case {trial} vs macro_f1", fn(gold, predicted, n), macro_f1(gold, predicted, n)
        )
    report.note("it agrees with minibert.train.metrics.macro_f1 on random labels")


# --------------------------------------------------------------------------------------------
# Exercise 2: the classification head on [CLS]
# --------------------------------------------------------------------------------------------


def solution_classifier_logits(hidden_states, pooler_weight, pooler_bias, weight, bias):
    cls = hidden_states[:, 0]  # (B, H): the [CLS] position of every sequence
    pooled = torch.tanh(cls @ pooler_weight.T + pooler_bias)  # (B, H): BERT's pooler
    return pooled @ weight.T + bias  # (B, C): one logit per class


def _head_mean_pooling(hidden_states, pooler_weight, pooler_bias, weight, bias):
    pooled = torch.tanh(hidden_states.mean(dim=1) @ pooler_weight.T + pooler_bias)
    return pooled @ weight.T + bias


def _head_last_token(hidden_states, pooler_weight, pooler_bias, weight, bias):
    pooled = torch.tanh(hidden_states[:, -1] @ pooler_weight.T + pooler_bias)
    return pooled @ weight.T + bias


def _head_no_tanh(hidden_states, pooler_weight, pooler_bias, weight, bias):
    pooled = hidden_states[:, 0] @ pooler_weight.T + pooler_bias
    return pooled @ weight.T + bias


def _head_untransposed(hidden_states, pooler_weight, pooler_bias, weight, bias):
    pooled = torch.tanh(hidden_states[:, 0] @ pooler_weight + pooler_bias)
    return pooled @ weight.T + bias


def _head_no_pooler(hidden_states, pooler_weight, pooler_bias, weight, bias):
    return hidden_states[:, 0] @ weight.T + bias


@exercise(
    "classifier_head",
    solution=solution_classifier_logits,
    mistakes={
        "mean over the tokens instead of [CLS]": Mistake(
            _head_mean_pooling,
            why="BERT's classifier reads the [CLS] position only (hidden_states[:, 0]); mean "
            "pooling is another, also reasonable, design (Sentence-BERT), but not BERT's.",
        ),
        "[CLS] taken from the last position": Mistake(
            _head_last_token,
            why="[CLS] is the first token of every input: hidden_states[:, 0]. The last position "
            "is [SEP] or padding.",
        ),
        "forgot the tanh": Mistake(
            _head_no_tanh,
            why="BERT's pooler is tanh(W h + b) (BertPooler); without tanh a pretrained pooler's "
            "weights give different features.",
        ),
        "pooler weight not transposed": Mistake(
            _head_untransposed,
            why="nn.Linear stores its weight as (out, in) and computes x @ W.T + b. The pooler's "
            "weight is square, so x @ W runs without a shape error but is wrong.",
        ),
        "skipped the pooler": Mistake(
            _head_no_pooler,
            why="between [CLS] and the classifier sits the pooler, tanh(W_p h + b_p), the layer "
            "NSP pretrained. Apply it before the classifier.",
        ),
    },
)
def check_classifier_head(fn: Callable[..., torch.Tensor], report: Report) -> None:
    """Random hidden states and weights of two sizes; then the library's BertPooler + Linear."""
    g = report.generator
    for batch, length, hidden, classes in [(2, 5, 4, 3), (3, 7, 8, 6)]:
        args = (
            torch.randn(batch, length, hidden, generator=g),  # (B, T, H)
            torch.randn(hidden, hidden, generator=g),  # (H, H) nn.Linear layout (out, in)
            torch.randn(hidden, generator=g),
            torch.randn(classes, hidden, generator=g),  # (C, H)
            torch.randn(classes, generator=g),
        )
        got = report.call(*args)
        report.shape("logits", got, (batch, classes), case=f"B={batch}, H={hidden}, C={classes}")
        report.expect(*args, case=f"B={batch}, T={length}, H={hidden}, C={classes}")
    # Against minibert's own modules: BertPooler then the classifier Linear.
    from minibert.config import BertConfig
    from minibert.model import BertPooler

    config = BertConfig.preset("tiny", vocab_size=100)
    torch.manual_seed(report.seed)
    pooler = BertPooler(config)
    classifier = torch.nn.Linear(config.hidden_size, 6)
    states = torch.randn(2, 9, config.hidden_size, generator=g)
    with torch.no_grad():
        expected = classifier(pooler(states))
        got = fn(states, pooler.dense.weight, pooler.dense.bias, classifier.weight, classifier.bias)
    report.close("logits vs minibert.model.BertPooler + nn.Linear", got, expected, atol=1e-5)
    report.note("it matches minibert's BertPooler + nn.Linear on the tiny preset's sizes")


# --------------------------------------------------------------------------------------------
# The experiments
# --------------------------------------------------------------------------------------------


class _EachMessageOnce(logging.Filter):
    """Lets a log message through the first time only (the "keep their random initialisation"
    warning says the same for every run from the same start)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


_ONCE = _EachMessageOnce()


def finetune_quietly(out: str | Path, overrides: Mapping[str, Any]) -> Any:
    """A fine-tuning run into ``out`` (replacing an earlier one); its ``FinetuneResult``.

    A warning about a start's untrained weights is shown for its first run only."""
    from minibert.train.finetuning import finetune

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    had_run = out.exists() and any(out.iterdir())
    weights_logger = logging.getLogger("minibert.hf_names")
    weights_logger.addFilter(_ONCE)
    try:
        return finetune(out=out, overrides=dict(overrides), overwrite=had_run)
    finally:
        weights_logger.removeFilter(_ONCE)


def score_row(name: str, result: Any) -> dict[str, Any]:
    """One table row from a single run's ``FinetuneResult``: test (else validation) scores."""
    split = result.test or result.validation
    return {
        "init": name,
        "steps": result.steps,
        "seconds": result.elapsed,
        "accuracy": split.get("accuracy"),
        "macro_f1": split.get("macro_f1"),
        "split": "test" if result.test else "validation",
        "run": result.run_dir,
    }


def print_scores(rows: Sequence[Mapping[str, Any]]) -> None:
    """The rows of :func:`score_row` as a table."""
    print(f"{'init':<22} {'steps':>6} {'seconds':>8} {'accuracy':>9} {'macro-F1':>9}")
    for row in rows:
        print(
            f"{row['init']:<22} {row['steps']:>6} {row['seconds']:>8.1f} "
            f"{row['accuracy']:>9.1%} {row['macro_f1']:>9.1%}  ({row['split']})"
        )


def few_shot_figure(curve: Mapping[str, Sequence[tuple[int, float]]], *, all_examples: int) -> Any:
    """Test macro-F1 against the number of labelled training examples, one line per init."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, points in curve.items():
        fig.add_scatter(
            x=[n for n, _ in points],
            y=[f for _, f in points],
            mode="lines+markers",
            name=name,
        )
    fig.update_layout(
        title=f"Few-shot curve: test macro-F1 vs labelled examples (all = {all_examples:,})",
        xaxis_title="labelled training examples",
        yaxis_title="test macro-F1",
        xaxis_type="log",
        yaxis_tickformat=".0%",
        height=380,
    )
    return fig


def print_folds(results: Mapping[str, Any]) -> None:
    """Per init, each fold's validation accuracy and the mean and spread over folds."""
    for name, result in results.items():
        folds = " ".join(f"{f.validation['accuracy']:.0%}" for f in result.folds)
        stats = result.cross_validation["accuracy"]
        print(
            f"{name:<22} folds: {folds:<28} mean {stats['mean']:.1%} "
            f"+- {stats['std']:.1%} (sample std over {len(result.folds)} folds)"
        )


def worst_confusions(report: Any, split: str = "test", top: int = 3) -> list[tuple[str, str, int]]:
    """The ``top`` most frequent (gold, predicted) pairs off the diagonal of a run's confusion
    matrix (``minibert.inspect.runs.finetune_report``)."""
    entry = report.splits[split]
    labels, matrix = entry["labels"], entry["confusion"]
    pairs = [
        (labels[g], labels[p], matrix[g][p])
        for g in range(len(labels))
        for p in range(len(labels))
        if g != p and matrix[g][p]
    ]
    return sorted(pairs, key=lambda x: -x[2])[:top]


def head_on_run(run: str | Path, texts: Sequence[str], fn: Callable[..., torch.Tensor]) -> tuple:
    """``fn``'s logits from a fine-tuned run's encoder output and head weights, next to the
    model's own logits, on ``texts``: ``(fn's logits, model's logits)``, each (N, C)."""
    from transformers import AutoTokenizer

    from minibert.heads import BertForSequenceClassification

    run = Path(run)
    tokenizer = AutoTokenizer.from_pretrained(run / "tokenizer")
    model = BertForSequenceClassification.from_pretrained(run / "final").eval()
    inputs = tokenizer(
        list(texts), padding=True, truncation=True, max_length=64, return_tensors="pt"
    )
    inputs = {
        k: v for k, v in inputs.items() if k in ("input_ids", "attention_mask", "token_type_ids")
    }
    with torch.no_grad():
        hidden = model.bert(**inputs).last_hidden_state  # (N, T, H)
        mine = fn(
            hidden,
            model.bert.pooler.dense.weight,
            model.bert.pooler.dense.bias,
            model.classifier.weight,
            model.classifier.bias,
        )
        theirs = model(**inputs).logits  # (N, C)
    return mine, theirs


def gold_and_predicted(report: Any, split: str = "test") -> tuple[list[int], list[int]]:
    """Gold and predicted label ids of every example of ``split``, from a run's
    ``predictions.jsonl`` (read in full: ``finetune_report`` keeps only the mistakes)."""
    import json

    index = {name: i for i, name in enumerate(report.labels)}
    gold, predicted = [], []
    with open(Path(report.path) / "predictions.jsonl", encoding="utf-8") as lines:
        for line in lines:
            try:
                row = json.loads(line)
            except ValueError:  # a partial last line
                continue
            if row.get("split") == split:
                gold.append(index[row["label"]])
                predicted.append(index[row["prediction"]])
    return gold, predicted
