"""``minibert pretrain | evaluate | fill-mask``: the training verbs of the command line.

    minibert pretrain --corpus wiki-sample --preset tiny --time-budget 300 --out runs/tiny
    minibert pretrain --config recipe.yaml --lr 5e-4 --model.num_hidden_layers 4 --out runs/x
    minibert pretrain --resume --out runs/tiny --max-steps 4000
    minibert evaluate --run runs/tiny
    minibert fill-mask --model runs/tiny/final "The capital of France is [MASK]."

Every setting of :class:`~minibert.train.settings.PretrainConfig` is a ``--key value`` option
(dotted, ``--optim.lr``, or bare when unambiguous, ``--lr``); ``pretrain --help`` lists them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from minibert.train.overrides import (
    accept_overrides,
    describe_keys,
    flatten_config_mapping,
    parse_cli_overrides,
)
from minibert.train.preflight import read_config_file

__all__ = ["add_parser", "collect_overrides"]

logger = logging.getLogger(__name__)

# Common settings with their own --help line: flag -> (dotted key, metavar, help).
_SHORTCUTS: dict[str, tuple[str, str, str]] = {
    "--corpus": ("data.corpus", "NAME", "corpus name (wiki-sample, lee-news, ...) or a local path"),
    "--preset": ("preset", "NAME", "model size: tiny, mini, small or base"),
    "--max-steps": ("train.max_steps", "N", "stop after this many optimizer steps"),
    "--time-budget": ("train.time_budget", "SECONDS", "stop after this much training time"),
    "--batch-size": ("train.batch_size", "N", "sequences per optimizer step (global)"),
    "--lr": ("optim.lr", "LR", "peak learning rate"),
    "--seed": ("train.seed", "N", "seed for init, data order, masking and dropout"),
    "--precision": ("train.precision", "{auto,fp32,bf16}", "bf16 autocast or fp32"),
    "--num-threads": ("train.num_threads", "N", "torch CPU threads (default: all cores)"),
    "--device": ("train.device", "DEVICE", "auto, cpu, cuda, cuda:1, mps"),
}


def add_parser(subparsers: Any) -> None:
    """Add ``pretrain``, ``evaluate`` and ``fill-mask`` to ``minibert``'s sub-parsers."""
    _add_pretrain(subparsers)
    _add_evaluate(subparsers)
    _add_fill_mask(subparsers)


# --------------------------------------------------------------------------------------------
# pretrain
# --------------------------------------------------------------------------------------------


def settings_epilog(config: Any) -> str:
    """The ``--help`` epilog of a training verb: every setting of ``config`` as ``--key``."""
    return (
        "settings (any of these as --key value; bare names work when unambiguous, e.g. --lr;\n"
        "a --config file may nest them by section; command-line values win over the file):\n"
        + describe_keys(config)
    )


def add_shortcuts(parser: argparse.ArgumentParser, shortcuts: dict) -> None:
    """Flags with their own --help line that set one dotted config key (see collect_overrides)."""
    for flag, (key, metavar, text) in shortcuts.items():
        parser.add_argument(
            flag, dest=f"shortcut:{key}", metavar=metavar, default=argparse.SUPPRESS, help=text
        )


def add_config_and_cache_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config FILE`` and ``--cache-dir DIR``, which every training verb takes."""
    parser.add_argument("--config", type=Path, help="a YAML or JSON file of settings")
    parser.add_argument(
        "--cache-dir", type=Path, help="data cache (default $MINIBERT_CACHE or ~/.cache/minibert)"
    )


def _pretrain_epilog() -> str:
    from minibert.train.settings import PretrainConfig

    return settings_epilog(PretrainConfig())


def _add_pretrain(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="pretrain a BERT with MLM (optionally + NSP) and write a run directory",
        description=(
            "Pretrain a from-scratch BERT with masked language modelling on packed sentences "
            "(--nsp adds BERT's next-sentence prediction), writing runs/<name>/ (run.json, "
            "metrics.jsonl, tokenizer/, "
            "checkpoints/, final/). Stops at --max-steps or --time-budget; Ctrl-C or SIGTERM "
            "saves a checkpoint first. Under torchrun it trains data-parallel."
        ),
        epilog=_pretrain_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--out", required=True, type=Path, help="the run directory to write")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its last checkpoint"
    )
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (refused if --out holds anything that is not a run)",
    )
    add_config_and_cache_arguments(parser)
    add_shortcuts(parser, _SHORTCUTS)
    parser.add_argument(
        "--nsp",
        dest="shortcut:objective.nsp",
        action=argparse.BooleanOptionalAction,
        default=argparse.SUPPRESS,
        help="add BERT's next-sentence prediction to the MLM (default off: packed sentences)",
    )
    accept_overrides(parser)
    parser.set_defaults(func=_run_pretrain)


def collect_overrides(args: argparse.Namespace, config_template: Any) -> dict[str, Any]:
    """The settings of a verb's command line: ``--config`` file first, then the flags.

    Shared by the training verbs: ``config_template`` (a default config) guides how a nested
    file is flattened; the returned keys are checked when applied.
    """
    overrides: dict[str, Any] = {}
    if getattr(args, "config", None) is not None:
        overrides.update(flatten_config_mapping(config_template, read_config_file(args.config)))
    for name, value in vars(args).items():
        if name.startswith("shortcut:"):
            overrides[name.removeprefix("shortcut:")] = value
    overrides.update(parse_cli_overrides(getattr(args, "overrides", []) or []))
    return overrides


def _quiet_save_logs(verbose: bool) -> None:
    # Each checkpoint logs "saved model/tokenizer" at INFO; under a progress bar that is noise.
    if not verbose:
        for name in ("minibert.model", "minibert.data.tokenizer"):
            logging.getLogger(name).setLevel(logging.WARNING)


def run_training_call(verb: str, args: argparse.Namespace, call: Callable[[], Any]) -> Any | None:
    """Run a training verb's ``call()`` the way every training verb does.

    Log lines go through tqdm so they do not tear the progress bar; a non-finite loss (which
    keeps the last good checkpoint) is reported in one line and gives None, for exit status 1.
    """
    from tqdm.contrib.logging import logging_redirect_tqdm

    from minibert.train.loop import NonFiniteLossError

    _quiet_save_logs(getattr(args, "verbose", False))
    try:
        with logging_redirect_tqdm():
            return call()
    except NonFiniteLossError as err:
        print(f"minibert {verb}: stopped: {err}", file=sys.stderr)
        return None


def _run_pretrain(args: argparse.Namespace) -> int:
    from minibert.train.pretrain import pretrain
    from minibert.train.settings import PretrainConfig

    if args.resume and args.config is not None:
        raise ValueError(
            "--resume continues with the settings recorded in run.json; drop --config "
            "(only how long to train and how to report may change)"
        )
    overrides = collect_overrides(args, PretrainConfig())
    result = run_training_call(
        "pretrain",
        args,
        lambda: pretrain(
            out=args.out,
            overrides=overrides,
            resume=args.resume,
            overwrite=args.overwrite,
            cache_dir=args.cache_dir,
        ),
    )
    if result is None:
        return 1
    print(result.summary())
    if result.stop_reason.startswith("signal"):
        print(
            f"Stopped by {result.stop_reason.split(':', 1)[1]} at step {result.step}; the "
            f"checkpoint is {result.last_checkpoint}. Continue with: "
            f"minibert pretrain --resume --out {args.out}"
        )
    return 0


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def _add_evaluate(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="held-out MLM (and NSP) loss and accuracy of a pretraining run",
        description=(
            "Evaluate a pretraining run on its held-out documents with the same fixed masks as "
            "training used: MLM loss, masked-token accuracy, perplexity, and NSP loss/accuracy "
            "when the run trained with --nsp."
        ),
        allow_abbrev=False,
    )
    parser.add_argument("--run", required=True, type=Path, help="the run directory")
    parser.add_argument(
        "--checkpoint", type=Path, help="a checkpoint directory (default: the run's final/)"
    )
    parser.add_argument(
        "--examples", type=int, help="held-out examples to use (default: the run's eval_examples)"
    )
    parser.add_argument("--batch-size", type=int, help="evaluation batch size")
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        help="default: the precision the run trained with (from run.json)",
    )
    parser.add_argument("--cache-dir", type=Path, help="data cache directory")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(func=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    from minibert.train.evaluate import evaluate_run

    metrics = evaluate_run(
        args.run,
        checkpoint=args.checkpoint,
        eval_examples=args.examples,
        batch_size=args.batch_size,
        cache_dir=args.cache_dir,
        precision=args.precision,
    )
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(f"{metrics.pop('checkpoint')}  ({metrics.pop('examples')} held-out examples)")
    for key, value in metrics.items():
        print(f"  {key:<16} {value:.4f}")
    return 0


# --------------------------------------------------------------------------------------------
# fill-mask
# --------------------------------------------------------------------------------------------


def _add_fill_mask(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "fill-mask",
        help="top-k predictions for each [MASK] in a text",
        description="Print the most probable tokens for every [MASK] in each text.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "--model",
        required=True,
        type=Path,
        help="a model directory (runs/x/final, a checkpoint) or a run directory",
    )
    parser.add_argument("--top-k", type=int, default=5, help="candidates per mask (default 5)")
    parser.add_argument("texts", nargs="+", metavar="TEXT", help='e.g. "Paris is the [MASK]."')
    parser.set_defaults(func=_run_fill_mask)


def _run_fill_mask(args: argparse.Namespace) -> int:
    from minibert.train.evaluate import fill_mask, load_masked_lm

    if args.top_k < 1:
        raise ValueError(f"--top-k must be >= 1, got {args.top_k}")
    model, tokenizer = load_masked_lm(args.model)
    for text in args.texts:
        print(text)
        for index, candidates in enumerate(fill_mask(model, tokenizer, text, args.top_k), 1):
            print(f"  [MASK] #{index}")
            for rank, candidate in enumerate(candidates, 1):
                print(
                    f"    {rank}. {candidate.token:<16} {candidate.score:.4f}  {candidate.sequence}"
                )
    return 0
