"""``minibert <verb>``: one command line over the whole library.

Each verb lives in the module that owns its work; that module exposes
``add_parser(subparsers)``, which adds the verb's sub-parser and sets ``func`` on it. The verb
modules are imported only when the CLI starts, so adding a verb is one line in ``_VERB_MODULES``.

Errors. Bad input (a wrong setting, a missing or damaged file, an unknown corpus, the hub while
offline) ends the command with exit status 2 and one line on stderr,
``minibert <verb>: error: <what is wrong and what to do>``; the library's messages are written
for that line. Anything else is a bug (or an input nothing checks yet): one line too, saying
so, with exit status 1. ``--verbose`` shows the full traceback of either.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from minibert import __version__

# Exceptions that mean "the input is wrong", each with a message meant for the user. ValueError
# covers the library's own checks (InputFileError, CorpusEncodingError, EmptyCorpusError, ...),
# OSError missing files and the unreachable hub, ImportError a missing optional extra.
_BAD_INPUT: tuple[type[BaseException], ...] = (ValueError, TypeError, OSError, ImportError)

# Modules that add verbs, in the order they appear in ``minibert --help``.
_VERB_MODULES: list[str] = [
    "minibert.data_cli",
    "minibert.train.cli",
    "minibert.train.finetune_cli",
    "minibert.dashboard.cli",
]


class _OneLineErrorParser(argparse.ArgumentParser):
    """argparse prints the usage block before a usage error; print the error in one line and
    point at ``--help`` instead, as every other error of the command line does."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineErrorParser(
        prog="minibert",
        description="minibert: pretrain and fine-tune a from-scratch BERT, and look inside it.",
    )
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at DEBUG level; show full tracebacks"
    )
    subparsers = parser.add_subparsers(dest="verb", metavar="<verb>")
    for module_name in _VERB_MODULES:
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def _version() -> str:
    return f"minibert {__version__}"


def main(argv: list[str] | None = None) -> int:
    from minibert.train.overrides import parse_args_with_overrides

    parser = build_parser()
    args = parse_args_with_overrides(parser, argv)  # the training verbs take --key value settings
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        if args.verbose:
            raise
        print(f"minibert {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns errors into messages
        # --verbose keeps the traceback for whoever is debugging minibert itself.
        if args.verbose:
            raise
        message, status = _describe(err)
        print(f"minibert {args.verb}: {message}", file=sys.stderr)
        return status


def _describe(err: Exception) -> tuple[str, int]:
    """One line for ``err`` and the exit status: 2 for bad input, 1 for anything else."""
    import xml.etree.ElementTree as ET

    text = " ".join(str(err).split())  # one line, whatever the message
    if isinstance(err, ET.ParseError):  # a SyntaxError, so not a ValueError
        return f"error: malformed XML ({text}); check the file is a complete XML document", 2
    if type(err).__module__.split(".")[0] == "yaml":
        return f"error: malformed YAML ({text}); fix the syntax", 2
    if isinstance(err, _BAD_INPUT):
        return f"error: {text or type(err).__name__}", 2
    return (
        f"internal error: {type(err).__name__}: {text}. This is a bug in minibert or an input it "
        "does not check yet; rerun with --verbose for the traceback and report it",
        1,
    )


if __name__ == "__main__":
    sys.exit(main())
