"""``minibert finetune`` and ``minibert demo``.

    minibert finetune --task wiki-topic --init runs/tiny --out runs/topic
    minibert finetune --task wiki-topic --init minilm --max-steps 300 --out runs/topic-minilm
    minibert finetune --task wiki-topic --init random --tokenizer runs/tiny --out runs/topic-scratch
    minibert finetune --task sentiment --init runs/tiny --out runs/sentiment   # 5-fold
    minibert finetune --config finetune.yaml --lr 3e-5 --out runs/x
    minibert demo                       # the main job: about 4 minutes on 2 cores
    minibert demo --time-budget 60 --out runs/quick-demo
    minibert demo --dashboard           # the same, with the dashboard open on it (curves grow live)

Every setting of :class:`~minibert.train.finetune.FinetuneConfig` (and of
:class:`~minibert.train.demo.DemoConfig`) is a ``--key value`` option, dotted
(``--early-stopping.patience 5``) or bare when unambiguous (``--patience 5``); ``--help`` lists
them. A ``--config`` YAML/JSON file gives settings too; the command line wins over it.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from minibert.train.cli import (
    add_config_and_cache_arguments,
    add_shortcuts,
    collect_overrides,
    run_training_call,
    settings_epilog,
)
from minibert.train.overrides import accept_overrides, describe_keys

__all__ = ["add_parser"]

logger = logging.getLogger(__name__)

# Common fine-tuning settings with their own --help line: flag -> (dotted key, metavar, help).
_FINETUNE_SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "--task": (
        "task.name",
        "NAME",
        "wiki-topic, sentiment, wiki-mentions (offline); sst2, conll2003 (hub)",
    ),
    "--init": (
        "init",
        "SPEC",
        "random, minilm, a minibert run (runs/<name>) or a BERT model folder",
    ),
    "--tokenizer": (
        "tokenizer",
        "DIR",
        "tokenizer folder or minibert run (random init; default: init's own)",
    ),
    "--preset": ("preset", "NAME", "random-init size: tiny, mini, small, base"),
    "--epochs": ("epochs", "N", "passes over the training set (default 3)"),
    "--max-steps": ("train.max_steps", "N", "stop after this many steps (instead of epochs)"),
    "--time-budget": ("train.time_budget", "SECONDS", "stop after this much training time"),
    "--batch-size": ("train.batch_size", "N", "examples per optimizer step"),
    "--lr": ("optim.lr", "LR", "peak learning rate (default 5e-4)"),
    "--patience": (
        "early_stopping.patience",
        "N",
        "evaluations without improvement before stopping (0: off)",
    ),
    "--max-seq-len": ("task.max_seq_len", "N", "WordPiece tokens per example"),
    "--train-limit": ("task.train_limit", "N", "use a random sample of N training examples"),
    "--eval-limit": ("task.eval_limit", "N", "use a random sample of N validation/test examples"),
    "--seed": ("train.seed", "N", "seed for the classifier init, data order and dropout"),
    "--num-threads": ("train.num_threads", "N", "torch CPU threads (default: all cores)"),
    "--device": ("train.device", "DEVICE", "auto, cpu, cuda, cuda:1, mps"),
}

_DEMO_SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "--time-budget": ("time_budget", "SECONDS", "total training time (default 240)"),
    "--pretrain-share": (
        "pretrain_share",
        "F",
        "share of the budget for pretraining (default 0.6)",
    ),
    "--seed": ("seed", "N", "seed of every run"),
    "--num-threads": ("num_threads", "N", "torch CPU threads (default: all cores)"),
}


def add_parser(subparsers: Any) -> None:
    """Add ``finetune`` and ``demo`` to ``minibert``'s sub-parsers."""
    _add_finetune(subparsers)
    _add_demo(subparsers)


# --------------------------------------------------------------------------------------------
# finetune
# --------------------------------------------------------------------------------------------


def _finetune_epilog() -> str:
    from minibert.data.tasks import KNOWN_TASKS
    from minibert.train.finetune import FinetuneConfig

    tasks = "\n".join(f"  {name:<14} {text}" for name, text in KNOWN_TASKS.items())
    return f"tasks:\n{tasks}\n\n" + settings_epilog(FinetuneConfig())


def _add_finetune(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="fine-tune a BERT on a classification or tagging task",
        description=(
            "Fine-tune all weights of a BERT with a fresh classifier on a downstream task "
            "(sequence classification or token tagging), selecting the weights on the "
            "validation split with early stopping. Starts from a minibert run, any BERT model "
            "folder (--init minilm: the offline all-MiniLM-L6-v2), or random weights. Writes "
            "run.json, metrics.jsonl, final/, results.json, predictions.jsonl and "
            "confusion_matrix.json to --out; the sentiment task runs k-fold cross-validation."
        ),
        epilog=_finetune_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--out", required=True, type=Path, help="the run directory to write")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (refused if --out holds anything else)",
    )
    add_config_and_cache_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print results.json instead")
    add_shortcuts(parser, _FINETUNE_SHORTCUTS)
    accept_overrides(parser)
    parser.set_defaults(func=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from minibert.train.finetune import FinetuneConfig, finetune

    overrides = collect_overrides(args, FinetuneConfig())
    _check_finetune_inputs(overrides)
    # An unreachable hub or a missing extra is reported in one line by minibert.cli.main.
    result = run_training_call(
        "finetune",
        args,
        lambda: finetune(
            out=args.out, overrides=overrides, overwrite=args.overwrite, cache_dir=args.cache_dir
        ),
    )
    if result is None:
        return 1
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.summary())
    return 0


def _check_finetune_inputs(overrides: dict[str, Any]) -> None:
    """Fail before any work on settings and files that would fail (or misbehave) later.

    Every number must be finite (NaN passes a ``value <= 0`` check), and a minibert run given
    as ``--init``/``--tokenizer`` must have a readable run.json (the message names the file).
    """
    from minibert.train.finetune import FinetuneConfig
    from minibert.train.overrides import apply_overrides
    from minibert.train.preflight import read_run_info
    from minibert.train.settings import reject_non_finite

    config = apply_overrides(FinetuneConfig(), overrides)
    reject_non_finite(config)
    for spec in (config.init, getattr(config, "tokenizer", None)):
        if isinstance(spec, str) and (Path(spec).expanduser() / "run.json").is_file():
            read_run_info(Path(spec).expanduser())


# --------------------------------------------------------------------------------------------
# demo
# --------------------------------------------------------------------------------------------


def _demo_epilog() -> str:
    from minibert.train.demo import DemoConfig

    return "settings (as --key value, or in a --config file):\n" + describe_keys(DemoConfig())


def _add_demo(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="the main job: data, tokenizer, pretraining, fine-tuning and a summary, offline",
        description=(
            "Prepare the embedded Wikipedia excerpt, train the WordPiece tokenizer, pretrain the "
            "tiny BERT for part of --time-budget, show its masked-token accuracy and fill-mask "
            "guesses on new sentences, then fine-tune it on wiki-topic and compare with the same "
            "model fine-tuned from random weights. Needs no network."
        ),
        epilog=_demo_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--out", type=Path, help="the demo directory (default runs/demo, or runs/demo-N if taken)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (refused if --out holds anything else)",
    )
    parser.add_argument(
        "--dashboard",
        action="store_true",
        help="also start the dashboard on the demo's folder and print its URL: the curves grow "
        "while the demo trains; it stays open after the demo until Ctrl-C",
    )
    parser.add_argument(
        "--port", type=int, default=None, help="the dashboard's port (default: first free from 8501)"
    )
    add_config_and_cache_arguments(parser)
    add_shortcuts(parser, _DEMO_SHORTCUTS)
    accept_overrides(parser)
    parser.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from minibert.train.demo import DemoConfig, run_demo

    overrides = collect_overrides(args, DemoConfig())
    dashboard = None
    if args.dashboard:
        dashboard, args.out = _start_demo_dashboard(args.out, args.port)
    try:
        result = run_training_call(
            "demo",
            args,
            lambda: run_demo(
                out=args.out,
                overrides=overrides,
                overwrite=args.overwrite,
                cache_dir=args.cache_dir,
            ),
        )
        if result is None:
            return 1
        print(result.summary())
        if dashboard is not None:
            print(f"\nthe dashboard stays open at {dashboard.url} (Ctrl-C to stop)", flush=True)
            dashboard.process.wait()
        return 0
    except KeyboardInterrupt:
        if dashboard is None:
            raise
        return 0
    finally:
        if dashboard is not None:
            dashboard.stop()


def _start_demo_dashboard(out: Path | None, port: int | None) -> tuple[Any, Path]:
    """Start the dashboard on the demo's folder before training, so the curve grows live.

    The folder is chosen (and created, empty) first: the dashboard shows each run of the demo
    as it appears in it.
    """
    from minibert.dashboard.launch import start, wait_until_ready
    from minibert.train.demo import default_demo_dir

    out = Path(out) if out is not None else default_demo_dir()
    out.mkdir(parents=True, exist_ok=True)
    dashboard = start(out, port=port, quiet=True)
    if wait_until_ready(dashboard, timeout=90):
        print(
            f"minibert demo: the dashboard is at {dashboard.url} (showing {out}); open it now "
            "to watch the curves grow",
            flush=True,
        )
    else:
        print(
            "minibert demo: the dashboard did not start (is streamlit installed? try "
            "`minibert dashboard --runs " + str(out) + "` in another terminal); the demo goes on",
            flush=True,
        )
    return dashboard, out
