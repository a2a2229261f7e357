"""``minibert <verb>``: one command line over the whole library.

Each verb lives in the module that owns its work; that module exposes
``add_parser(subparsers)``, which adds the verb's sub-parser and sets ``func`` on it. The verb
modules are imported only when the CLI starts, so adding a verb is one line in ``_VERB_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# Modules that add verbs, in the order they appear in ``minibert --help``.
_VERB_MODULES: list[str] = [
    "minibert.data.cli",
    "minibert.train.cli",
    "minibert.train.finetune_cli",
    "minibert.dashboard.cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="minibert",
        description="minibert: pretrain and fine-tune a from-scratch BERT, and look inside it.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level; show full tracebacks")
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>")
    for module_name in _VERB_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _version() -> str:
    from minibert import __version__

    return f"minibert {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError, ImportError) as err:
        # Bad input or a missing resource (a file, the hub while offline, an optional extra):
        # our messages say what is wrong and what to do, so one line beats a traceback.
        # --verbose keeps the traceback for whoever is debugging minibert itself.
        if args.verbose:
            raise
        print(f"minibert {args.verb}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
