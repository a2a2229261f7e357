"""``minibert demo``: the whole story in one offline command, sized for a class.

1. prepare the embedded Wikipedia excerpt and train its WordPiece tokenizer (cached);
2. pretrain the ``tiny`` BERT with the recipe (MLM on packed sentences, Devlin et al. 2019,
   Sec. 3.1; no NSP) for a time budget;
3. show what it learned: held-out masked-token accuracy, and fill-mask on sentences that are
   not in the corpus;
4. fine-tune it on ``wiki-topic`` (Sec. 4), and fine-tune the same architecture from random
   weights with the same tokenizer, budget and recipe: the difference is what pretraining
   bought;
5. print a summary and where the runs are.

``time_budget`` is the total *training* time: pretraining gets ``pretrain_share`` of it and
fine-tuning from the pretrained model half of the rest; fine-tuning from scratch then gets the
same number of steps. Data preparation (seconds once cached), building examples and the
evaluations come on top. The default, 240 s, fits a class demo on a 2-core
laptop; a test can run the whole thing with 20 s.

    from minibert.train.demo import run_demo
    result = run_demo(overrides={"time_budget": 120})
    print(result.summary())

The run directory:

    runs/demo/
      pretrain/               a pretraining run (run.json, metrics.jsonl, final/, ...)
      finetune-pretrained/    fine-tuning from pretrain/final
      finetune-scratch/       fine-tuning from random weights (same architecture and tokenizer)
      demo.json               the summary's numbers
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from minibert.atomic import remove_tree, write_json_atomic
from minibert.config import PRESETS
from minibert.locking import acquire_run_lock
from minibert.train.overrides import apply_overrides, config_to_dict
from minibert.train.rundir import why_not_a_run
from minibert.train.settings import check_number

__all__ = [
    "DEFAULT_FILL_MASK_SENTENCES",
    "DemoConfig",
    "DemoResult",
    "default_demo_dir",
    "run_demo",
]

logger = logging.getLogger(__name__)

DEMO_TASK = "wiki-topic"  # topic classification of Wikipedia paragraphs (6 classes), offline

# Sentences written for the demo (not taken from the corpus), about the kinds of things the
# Wikipedia excerpt covers: people, places, science, history.
DEFAULT_FILL_MASK_SENTENCES: tuple[str, ...] = (
    "The river flows through the [MASK] of the city.",
    "She was born in [MASK] and studied at the university.",
    "The war ended with a peace [MASK] in 1648.",
    "Water is made of hydrogen and [MASK].",
)


@dataclass
class DemoConfig:
    """The demo's few settings; everything else is the pretraining and fine-tuning recipes."""

    time_budget: float = 240.0  # seconds of training in total (pretraining + 2 fine-tunings)
    pretrain_share: float = 0.6  # share of time_budget spent pretraining
    preset: str = "tiny"  # model size
    seed: int = 0
    eval_limit: int | None = None  # validation/test examples in fine-tuning's evaluation
    fill_mask_sentences: list[str] = field(
        default_factory=lambda: list(DEFAULT_FILL_MASK_SENTENCES)
    )
    top_k: int = 3  # fill-mask candidates shown per sentence
    num_threads: int | None = None  # torch CPU threads (None: all cores)
    progress: bool = True  # progress bars

    def __post_init__(self) -> None:
        check_number(
            "time_budget", self.time_budget, low=0, low_open=True, fix="give seconds, e.g. 240"
        )
        check_number(
            "pretrain_share", self.pretrain_share, low=0, high=1, low_open=True, high_open=True
        )
        check_number("seed", self.seed, integer=True)
        check_number("eval_limit", self.eval_limit, low=1, integer=True, optional=True)
        check_number("num_threads", self.num_threads, low=1, integer=True, optional=True)
        if self.preset not in PRESETS:
            raise ValueError(f"preset {self.preset!r} is unknown; use one of {', '.join(PRESETS)}")
        check_number("top_k", self.top_k, low=1, integer=True)
        for sentence in self.fill_mask_sentences:
            if "[MASK]" not in sentence:
                raise ValueError(f"fill-mask sentence {sentence!r} has no [MASK] to fill")

    @property
    def pretrain_budget(self) -> float:
        return self.time_budget * self.pretrain_share

    @property
    def finetune_budget(self) -> float:
        return self.time_budget * (1.0 - self.pretrain_share) / 2.0


@dataclass
class DemoResult:
    """Everything the demo measured; :meth:`summary` is what ``minibert demo`` prints."""

    run_dir: Path
    config: DemoConfig
    data: dict[str, Any]
    pretrain: Any  # minibert.train.loop.TrainingResult
    fill_mask: list[dict[str, Any]]
    from_pretrained: Any  # minibert.train.finetune.FinetuneResult
    from_scratch: Any
    timings: dict[str, float]

    @property
    def masked_token_accuracy(self) -> float | None:
        """Held-out masked-token accuracy of the pretrained model (its last evaluation)."""
        return self.pretrain.last_eval.get("mlm_accuracy")

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "config": config_to_dict(self.config),
            "data": self.data,
            "pretrain": {
                "run_dir": str(self.pretrain.run_dir),
                "steps": self.pretrain.step,
                "tokens": self.pretrain.tokens,
                "elapsed": round(self.pretrain.elapsed, 3),
                "held_out": self.pretrain.last_eval,
            },
            "fill_mask": self.fill_mask,
            "finetune": {
                "from_pretrained": self.from_pretrained.to_dict(),
                "from_scratch": self.from_scratch.to_dict(),
            },
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def summary(self) -> str:
        pre = self.pretrain
        held = pre.last_eval
        lines = [
            f"minibert demo: {self.timings.get('total', 0.0):.0f}s in all",
            "",
            f"data      {self.data['corpus']}: {self.data['train_documents']} train / "
            f"{self.data['valid_documents']} validation documents, "
            f"{self.data['train_tokens']:,} training tokens, WordPiece vocabulary "
            f"{self.data['vocab_size']:,} ({self.timings.get('data', 0.0):.1f}s)",
            f"pretrain  {self.config.preset} BERT, {pre.step} steps in {pre.elapsed:.0f}s "
            f"({pre.tokens:,} tokens)",
        ]
        if "mlm_accuracy" in held:
            perplexity = held.get("mlm_perplexity")
            lines.append(
                f"          held-out masked-token accuracy {held['mlm_accuracy']:.3f}"
                + (f", perplexity {perplexity:.0f}" if perplexity is not None else "")
                + (
                    f", next-sentence accuracy {held['nsp_accuracy']:.3f}"
                    if "nsp_accuracy" in held
                    else ""
                )
            )
        lines.append("fill-mask (sentences the model never saw):")
        for item in self.fill_mask:
            guesses = ", ".join(f"{c['token']} ({c['score']:.3g})" for c in item["candidates"])
            lines.append(f"  {item['sentence']}\n      -> {guesses}")
        lines += [
            "",
            f"fine-tune {self.from_pretrained.task} ({len(self.from_pretrained.labels)} labels), "
            "same recipe and number of steps for both:",
            f"  {'':<18}{'val acc':>9}{'val F1':>9}{'test acc':>10}{'test F1':>9}{'steps':>7}",
        ]
        for name, result in (
            ("from pretrained", self.from_pretrained),
            ("from scratch", self.from_scratch),
        ):
            val, test = result.validation or {}, result.test or {}

            def cell(metrics: Mapping[str, float], key: str, width: int) -> str:
                return f"{metrics[key]:>{width}.3f}" if key in metrics else f"{'-':>{width}}"

            lines.append(
                f"  {name:<18}{cell(val, 'accuracy', 9)}{cell(val, 'macro_f1', 9)}"
                f"{cell(test, 'accuracy', 10)}{cell(test, 'macro_f1', 9)}{result.steps:>7}"
            )
        gain = {
            key: self.from_pretrained.validation.get(key, 0.0)
            - self.from_scratch.validation.get(key, 0.0)
            for key in ("accuracy", "macro_f1")
        }
        lines.append(
            f"  pretraining's effect on validation: accuracy {gain['accuracy']:+.3f}, macro-F1 "
            f"{gain['macro_f1']:+.3f}"
        )
        if gain["macro_f1"] <= 0.0:
            lines.append(
                "  (no gain yet: this much pretraining is too little to help; a longer "
                "--time-budget gives it more steps)"
            )
        lines += [
            "  (macro-F1 weighs the six topics equally; the test split is never used to choose "
            "weights)",
            "",
            f"runs in {self.run_dir}/: pretrain/, finetune-pretrained/, finetune-scratch/, "
            "demo.json",
            f"  look inside: minibert fill-mask --model {self.run_dir / 'pretrain'} "
            '"The [MASK] is ..."',
        ]
        return "\n".join(lines)


def default_demo_dir(root: str | Path = "runs") -> Path:
    """``runs/demo``, or ``runs/demo-2``, ``-3``... if it is taken (a demo never overwrites)."""
    from minibert.train.finetune import next_free_dir

    return next_free_dir(root, "demo")


def run_demo(
    config: DemoConfig | None = None,
    out: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    overwrite: bool = False,
    cache_dir: str | Path | None = None,
) -> DemoResult:
    """Run the demo (see the module docstring) and return what it measured.

    Args:
        config: the demo settings (default :class:`DemoConfig`).
        out: the demo directory; default ``runs/demo`` (or the next free ``runs/demo-N``).
            A given ``out`` must be missing or empty unless ``overwrite``.
        overrides: ``{key: value}`` applied on top of ``config`` (``{"time_budget": 60}``).
        overwrite: replace what ``out`` holds.
        cache_dir: the data cache (default ``$MINIBERT_CACHE`` or ``~/.cache/minibert``).
    """
    # The training stack loads here, not at the top: ``minibert demo --help`` imports this
    # module for DemoConfig and should not wait for it.

    config = apply_overrides(config or DemoConfig(), dict(overrides or {}))
    if out is None:
        out = default_demo_dir()
    out = Path(out)
    # The demo folder is locked for the whole demo (its three runs lock their own folders).
    with acquire_run_lock(out):
        _prepare_demo_dir(out, overwrite)
        return _run_demo_locked(config, out, cache_dir)


def _prepare_demo_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(
                f"--out {out} already exists and is not empty. Pass --overwrite to replace it, "
                "or choose another --out."
            )
        reason = why_not_a_run(out)
        if reason is not None:
            raise FileExistsError(
                f"--overwrite refuses to empty {out}: {reason}. It replaces only a minibert "
                "demo or run directory, or an empty one; choose another --out, or move those "
                "files away first."
            )
        remove_tree(out)  # renamed aside first: a kill midway leaves no half-deleted demo
    out.mkdir(parents=True, exist_ok=True)


def _run_demo_locked(config: DemoConfig, out: Path, cache_dir: str | Path | None) -> DemoResult:
    from minibert.data.pipeline import DataConfig, prepare_data
    from minibert.train.evaluate import fill_mask, load_masked_lm
    from minibert.train.finetune import finetune
    from minibert.train.pretrain import pretrain

    timings: dict[str, float] = {}
    started = time.perf_counter()

    logger.info("demo 1/4: preparing the data and the tokenizer")
    data = prepare_data(DataConfig(), cache_dir, progress=config.progress)
    info = data.run_info()
    data_summary = {
        "corpus": data.config.corpus,
        "train_documents": info["train_documents"],
        "valid_documents": info["valid_documents"],
        "train_tokens": info["train_tokens"],
        "vocab_size": len(data.tokenizer),
        "from_cache": data.from_cache,
    }
    timings["data"] = time.perf_counter() - started

    logger.info("demo 2/4: pretraining %s for %.0f s", config.preset, config.pretrain_budget)
    mark = time.perf_counter()
    common = {"seed": config.seed, "progress": config.progress, "num_threads": config.num_threads}
    pretrain_dir = out / "pretrain"
    pretrained = pretrain(
        out=pretrain_dir,
        overrides={"preset": config.preset, "time_budget": config.pretrain_budget, **common},
        cache_dir=cache_dir,
    )
    timings["pretrain"] = time.perf_counter() - mark

    mark = time.perf_counter()
    model, tokenizer = load_masked_lm(pretrain_dir)
    filled = []
    for sentence in config.fill_mask_sentences:
        predictions = fill_mask(model, tokenizer, sentence, config.top_k)
        filled.append(
            {
                "sentence": sentence,
                "candidates": [
                    {"token": c.token, "score": round(c.score, 4)} for c in predictions[0]
                ],
            }
        )
    timings["fill_mask"] = time.perf_counter() - mark

    finetune_settings = {
        "task": DEMO_TASK,
        "time_budget": config.finetune_budget,
        "eval_limit": config.eval_limit,
        # Train for the whole (short) budget: a tiny model often sits on the majority class
        # for a while before it improves, and early stopping would end it there. final/ still
        # holds the best evaluation's weights.
        "early_stopping.patience": 0,
        **common,
    }
    logger.info("demo 3/4: fine-tuning on %s from the pretrained model", DEMO_TASK)
    mark = time.perf_counter()
    from_pretrained = finetune(
        out=out / "finetune-pretrained",
        overrides={"init": str(pretrain_dir), **finetune_settings},
        cache_dir=cache_dir,
    )
    timings["finetune_pretrained"] = time.perf_counter() - mark
    logger.info("demo 4/4: fine-tuning on %s from random weights", DEMO_TASK)
    mark = time.perf_counter()
    # The pretraining run as tokenizer: same vocabulary and the same architecture, fresh
    # weights. The same number of steps as the pretrained model had, whatever the time they
    # take (a slower moment on a shared machine must not decide the comparison).
    from_scratch = finetune(
        out=out / "finetune-scratch",
        overrides={
            **finetune_settings,
            "init": "random",
            "tokenizer": str(pretrain_dir),
            "max_steps": max(from_pretrained.steps, 1),
            "time_budget": None,
        },
        cache_dir=cache_dir,
    )
    timings["finetune_scratch"] = time.perf_counter() - mark
    timings["total"] = time.perf_counter() - started

    result = DemoResult(
        run_dir=out,
        config=config,
        data=data_summary,
        pretrain=pretrained,
        fill_mask=filled,
        from_pretrained=from_pretrained,
        from_scratch=from_scratch,
        timings=timings,
    )
    write_json_atomic(out / "demo.json", result.to_dict())
    return result
