"""Does 5 minutes of pretraining help downstream? Fine-tuning from scratch, from a minibert
pretraining run and from all-MiniLM-L6-v2, on topic classification and few-shot sentiment
(issue 5).

    python bench/bench_finetune_quality.py --pretrained runs/tiny          # reuse a run
    python bench/bench_finetune_quality.py --pretrain-seconds 300          # pretrain first
    python bench/bench_finetune_quality.py --pretrained runs/tiny --seeds 0 --topic-seconds 60

Arms (each through ``minibert.train.finetuning``, the library's fine-tuning, default recipe):

* ``scratch``: ``init=random`` with the pretrained run's tokenizer and size (same model, no
  pretraining), so the difference is pretraining alone;
* ``pretrained``: ``init=<the minibert run>``;
* ``minilm``: ``init=minilm`` (all-MiniLM-L6-v2, a real pretrained 6-layer BERT; its own
  tokenizer).

Tasks: ``wiki-topic`` (6 topics, split by article): test macro-F1 (validation when the task has no
test split), one run per ``--seeds`` seed, mean +- sample std. ``sentiment`` (200 movie-review
sentences): k-fold cross-validation accuracy (mean +- std over folds), one CV per arm.

Runs are long on two CPU cores (MiniLM especially): every duration is a flag
(``--topic-seconds``, ``--sentiment-seconds`` cap each run's training time; ``--topic-epochs``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ARMS = ("scratch", "pretrained", "minilm")


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _init_overrides(arm: str, run: Path) -> dict:
    if arm == "scratch":
        return {"init": "random", "tokenizer": str(run)}
    if arm == "pretrained":
        return {"init": str(run)}
    return {"init": "minilm"}


def topic_scores(args, run: Path, arm: str, root: Path) -> list[dict]:
    from minibert.train.finetuning import finetune

    scores = []
    for seed in args.seeds:
        overrides = {
            "task.name": "wiki-topic",
            "train.seed": seed,
            "epochs": args.topic_epochs,
            "train.progress": False,
            **_init_overrides(arm, run),
        }
        if args.topic_seconds:
            overrides["train.time_budget"] = args.topic_seconds
        if arm == "minilm":
            overrides["task.max_seq_len"] = args.minilm_seq_len
        started = time.perf_counter()
        result = finetune(out=root / f"topic-{arm}-{seed}", overrides=overrides, overwrite=True)
        split = "test" if result.test else "validation"
        metrics = result.test or result.validation
        scores.append(
            {
                "seed": seed,
                "split": split,
                "macro_f1": metrics["macro_f1"],
                "accuracy": metrics["accuracy"],
                "steps": result.steps,
                "seconds": time.perf_counter() - started,
            }
        )
        print(
            f"  wiki-topic {arm:10s} seed {seed}: {split} macro-F1 {100 * metrics['macro_f1']:.1f}"
            f" accuracy {100 * metrics['accuracy']:.1f} ({result.steps} steps, "
            f"{scores[-1]['seconds']:.0f} s)",
            flush=True,
        )
    return scores


def sentiment_scores(args, run: Path, arm: str, root: Path) -> dict:
    from minibert.train.finetuning import finetune

    overrides = {
        "task.name": "sentiment",
        "task.num_folds": args.folds,
        "train.seed": args.seeds[0],
        "epochs": args.sentiment_epochs,
        "train.progress": False,
        **_init_overrides(arm, run),
    }
    if args.sentiment_seconds:
        overrides["train.time_budget"] = args.sentiment_seconds
    started = time.perf_counter()
    result = finetune(out=root / f"sentiment-{arm}", overrides=overrides, overwrite=True)
    folds = [fold.validation["accuracy"] for fold in result.folds]
    mean, std = _mean_std(folds)
    print(
        f"  sentiment  {arm:10s} {args.folds}-fold accuracy {100 * mean:.1f} +- {100 * std:.1f}"
        f" ({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    return {"fold_accuracy": folds, "mean": mean, "std": std}


def pretrain_run(args, out: Path) -> Path:
    command = [
        sys.executable, "-m", "minibert", "pretrain", "--preset", "tiny",
        "--time-budget", str(args.pretrain_seconds), "--out", str(out), "--overwrite",
        "--progress", "false",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"minibert pretrain failed:\n{done.stderr[-3000:]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", type=Path, default=None, help="a minibert pretraining run")
    parser.add_argument("--pretrain-seconds", type=float, default=300.0)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--tasks", default="wiki-topic,sentiment")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--topic-epochs", type=float, default=3.0)
    parser.add_argument("--topic-seconds", type=float, default=None, help="cap per run")
    parser.add_argument("--sentiment-epochs", type=float, default=10.0)
    parser.add_argument("--sentiment-seconds", type=float, default=None, help="cap per fold")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--minilm-seq-len", type=int, default=64, help="MiniLM input length")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep run directories here")
    args = parser.parse_args()
    args.seeds = [int(s) for s in args.seeds.split(",")]
    arms = [a for a in args.arms.split(",") if a]
    unknown = set(arms) - set(ARMS)
    if unknown:
        parser.error(f"unknown arms {sorted(unknown)}; choose from {', '.join(ARMS)}")
    tasks = [t for t in args.tasks.split(",") if t]
    logging.basicConfig(level=logging.WARNING)

    results: dict = {"seeds": args.seeds, "topic": {}, "sentiment": {}}
    with tempfile.TemporaryDirectory(prefix="bench-ft-") as tmp:
        root = args.keep or Path(tmp)
        run = args.pretrained
        if run is None:
            print(f"pretraining tiny for {args.pretrain_seconds:.0f} s ...", flush=True)
            run = pretrain_run(args, root / "pretrain")
        results["pretrained_run"] = str(run)
        for arm in arms:
            if "wiki-topic" in tasks:
                results["topic"][arm] = topic_scores(args, run, arm, root)
            if "sentiment" in tasks:
                results["sentiment"][arm] = sentiment_scores(args, run, arm, root)
    print()
    if results["topic"]:
        print(f"wiki-topic macro-F1 over seeds {args.seeds} (mean +- sample std):")
        for arm, scores in results["topic"].items():
            mean, std = _mean_std([s["macro_f1"] for s in scores])
            print(f"  {arm:10s} {100 * mean:5.1f} +- {100 * std:4.1f}  ({scores[0]['split']})")
    if results["sentiment"]:
        print(f"sentiment {args.folds}-fold accuracy (mean +- std over folds):")
        for arm, score in results["sentiment"].items():
            print(f"  {arm:10s} {100 * score['mean']:5.1f} +- {100 * score['std']:4.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
