"""``minibert prepare-data`` and ``minibert train-tokenizer``.

Both run the cached pipeline (:func:`minibert.data.pipeline.prepare_data`) and print what it did:
corpus statistics before and after cleaning, what each step removed, the tokenizer's coverage of
the validation documents and the time per stage. Any :class:`~minibert.data.pipeline.DataConfig`
setting has an option (``--vocab-size 4096``, ``--min-words 30``,
``--near-dup-threshold 0.7``, ``--no-near-dedup``) and can also come from a YAML/JSON file
given with ``--config``.

``train-tokenizer`` writes the tokenizer of that pipeline run to ``--output``. It is the
tokenizer a ``pretrain`` run with the same data settings uses (the cache holds it), so a
vocabulary inspected in a lesson is the one the model trains with.

This module sits beside :mod:`minibert.cli`, not inside :mod:`minibert.data`: it reads settings
files with the same machinery as the training verbs (:mod:`minibert.train.overrides`), and
nothing in :mod:`minibert.data` may import :mod:`minibert.train`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import typing
from pathlib import Path
from typing import Any

from minibert.data.pipeline import DataConfig, prepare_data
from minibert.data.tokenizer import save_tokenizer, special_token_ids
from minibert.train.overrides import apply_overrides, flatten_config_mapping
from minibert.train.preflight import read_config_file

logger = logging.getLogger(__name__)

# One-line help for the settings people change most; the others show their default only.
_SETTING_HELP = {
    "corpus": "wiki-sample (offline default), lee-news, wikitext-2, wikitext-103 (online), or a "
    ".txt/.jsonl file or folder",
    "limit": "read at most this many documents",
    "vocab_size": "WordPiece vocabulary size, special tokens included",
    "lowercase": "lower-case and strip accents (BERT uncased)",
    "valid_fraction": "fraction of documents held out for validation",
    "max_seq_len": "example length the corpus must fill at least once",
    "normalization": "Unicode normal form: NFKC, NFC, NFKD, NFD or none",
    "near_dup_threshold": "MinHash-estimated Jaccard at or above which a document is a near duplicate",
}


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``prepare-data`` and ``train-tokenizer`` verbs."""
    prepare = subparsers.add_parser(
        "prepare-data",
        usage="minibert prepare-data [options] [data settings]",
        help="load, clean, deduplicate, split and tokenize a corpus (cached); print the report",
        description=(
            "Run the data pipeline: load the corpus, turn wikitext into prose, normalize, apply "
            "the C4/Gopher quality rules, remove exact and near duplicates, split by document, "
            "train a WordPiece tokenizer on the training split and encode both splits. Results "
            "are cached; a second run with the same settings loads them in seconds."
        ),
    )
    _add_common_options(prepare)
    prepare.add_argument(
        "--examples",
        action="store_true",
        help="also print, for each step that removed something, a few removed snippets",
    )
    prepare.add_argument(
        "--json", metavar="PATH", help="also write the statistics and reports as JSON to PATH"
    )
    prepare.set_defaults(func=_prepare_data_command)

    train = subparsers.add_parser(
        "train-tokenizer",
        usage="minibert train-tokenizer --output DIR [options] [data settings]",
        help="train a WordPiece tokenizer on the cleaned training split and save it",
        description=(
            "Prepare the corpus as prepare-data does (cached), train a BERT WordPiece vocabulary "
            "on the training documents only, save it to --output as a standard Hugging Face "
            "tokenizer folder (tokenizer.json, tokenizer_config.json, vocab.txt) and print its "
            "coverage of the validation documents."
        ),
    )
    train.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="folder to save the tokenizer in"
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace the files of an existing --output folder"
    )
    _add_common_options(train)
    train.set_defaults(func=_train_tokenizer_command)


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="YAML or JSON file of DataConfig settings (nested or flat)"
    )
    parser.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache folder (default: $MINIBERT_CACHE or ~/.cache/minibert)",
    )
    parser.add_argument(
        "--refresh", action="store_true", help="rebuild the cache entries even if they exist"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    _add_setting_options(parser)


def _setting_fields() -> list[tuple[str, Any, Any]]:
    """``(dotted key, type, default)`` for every leaf setting of ``DataConfig``."""

    def walk(config: Any, prefix: str) -> list[tuple[str, Any, Any]]:
        hints = typing.get_type_hints(type(config))
        leaves = []
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if dataclasses.is_dataclass(value):
                leaves.extend(walk(value, f"{prefix}{field.name}."))
            else:
                leaves.append((f"{prefix}{field.name}", hints[field.name], value))
        return leaves

    return walk(DataConfig(), "")


def _add_setting_options(parser: argparse.ArgumentParser) -> None:
    """One option per DataConfig setting (``--vocab-size``, ``--min-words``, ``--no-near-dedup``),
    generated from the dataclasses so the command line can never fall behind them."""
    group = parser.add_argument_group(
        "data settings",
        "every DataConfig / CleaningConfig field; unset options keep the --config file's value "
        "or the default shown",
    )
    for key, annotation, default in _setting_fields():
        name = key.rsplit(".", 1)[-1]
        flag = "--" + name.replace("_", "-")
        text = _SETTING_HELP.get(name, "")
        text = (
            f"{text} (default: {json.dumps(default)})"
            if text
            else f"default: {json.dumps(default)}"
        )
        if annotation is bool:
            group.add_argument(
                flag,
                dest=f"setting:{key}",
                action=argparse.BooleanOptionalAction,
                default=argparse.SUPPRESS,
                help=text,
            )
        else:
            group.add_argument(
                flag,
                dest=f"setting:{key}",
                metavar=name.upper(),
                default=argparse.SUPPRESS,
                help=text,
            )


def _config_from_args(args: argparse.Namespace) -> Any:
    """DataConfig defaults <- ``--config`` file <- the setting options given."""
    config = DataConfig()
    if args.config:
        config = apply_overrides(
            config, flatten_config_mapping(config, read_config_file(args.config))
        )
    overrides = {
        dest.split(":", 1)[1]: value
        for dest, value in vars(args).items()
        if dest.startswith("setting:")
    }
    if overrides:
        config = apply_overrides(config, overrides)
    return config


def _prepare(args: argparse.Namespace):
    config = _config_from_args(args)
    return prepare_data(
        config, cache_dir=args.cache_dir, progress=not args.no_progress, refresh=args.refresh
    )


def _prepare_data_command(args: argparse.Namespace) -> int:
    data = _prepare(args)
    print(data.summary())
    if args.examples:
        for report in data.reports:
            if report.examples:
                print()
                print(report.to_table())
    if args.json:
        payload = {
            **data.run_info(),
            "cache_path": str(data.cache_path),
            "from_cache": data.from_cache,
            "reports": [report.to_dict() for report in data.reports],
            "stats": {name: stats.to_dict() for name, stats in data.stats.items()},
            "tokenizer_report": data.tokenizer_report.to_dict() if data.tokenizer_report else None,
            "timings": data.timings,
        }
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")
        print(f"\nwrote {path}")
    return 0


def _train_tokenizer_command(args: argparse.Namespace) -> int:
    output = Path(args.output).expanduser()
    if output.exists() and not output.is_dir():
        raise FileExistsError(f"--output {output} is a file; give a folder for the tokenizer")
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        raise FileExistsError(
            f"--output {output} is not empty; choose another folder or pass --overwrite"
        )
    data = _prepare(args)
    save_tokenizer(data.tokenizer, output)
    print(
        f"WordPiece tokenizer: {len(data.tokenizer):,} entries, "
        f"lowercase={data.config.lowercase}, trained on {len(data.train_documents)} training "
        f"documents of {data.config.corpus!r} ({data.stats['train'].words:,} words)"
    )
    print(f"special tokens: {special_token_ids(data.tokenizer)}")
    if data.tokenizer_report is not None:
        print(f"\non the {len(data.valid_documents)} validation documents:")
        print(data.tokenizer_report)
    print(f"\ntokenizer fingerprint {data.tokenizer_fingerprint}")
    print(f"saved to {output}  (load with minibert.data.tokenizer.load_tokenizer or AutoTokenizer)")
    return 0
