"""Checks of the files a user points a verb at, before any slow work starts.

A run directory and its checkpoints are written by minibert, but they get copied, edited by
hand, cut short by a full disk or a killed save. Reading them with a bare ``json.loads`` or
``torch.load`` then fails deep inside training with a message that names no file. The checks
here read each file once, early, and raise :class:`InputFileError` (a ``ValueError``, so the
command line prints it as one line) saying which file is wrong and what to do about it.

* :func:`read_config_file`: a ``--config`` YAML/JSON file; a syntax error names the file,
  line and column.
* :func:`read_run_info`: ``run.json`` as a dict, checked to be valid JSON, a mapping, of the
  expected ``kind`` and with a ``config`` section.
* :func:`check_resumable_checkpoint`: every file a resume reads (trainer state, optimizer
  state, weights, model config) opens.
* :func:`resumable_checkpoint`: the newest checkpoint of a run if it is readable; otherwise the
  error names the previous checkpoint that is, and how to resume from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = [
    "InputFileError",
    "check_resumable_checkpoint",
    "read_config_file",
    "read_json_file",
    "read_run_info",
    "resumable_checkpoint",
]

RUN_JSON = "run.json"
# What a resumable checkpoint holds (minibert.train.checkpoint writes them).
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "config.json", "model.safetensors")


class InputFileError(ValueError):
    """A file the user pointed minibert at (run.json, a checkpoint, a --config file) is missing,
    unreadable or not what it should be; the message names it and says what to do."""


def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json_file(path: str | Path, *, what: str = "file") -> Any:
    """Parse the JSON file ``path``; a syntax error names the file, line and column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{what} {path} is not UTF-8 text ({_one_line(err)})") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno}, column "
            f"{err.colno}; fix or restore the file"
        ) from err


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A ``--config`` file's settings (see :func:`minibert.train.overrides.load_config_file`);
    a YAML or JSON syntax error becomes an :class:`InputFileError` naming file, line and column."""
    from minibert.train.overrides import load_config_file

    fix = "fix the syntax: settings are 'key: value' lines, a section's keys indented under it"
    try:
        return load_config_file(path)
    except json.JSONDecodeError as err:
        raise InputFileError(
            f"--config {path} is not valid JSON: {err.msg} at line {err.lineno}, column "
            f"{err.colno}; fix the syntax"
        ) from err
    except UnicodeDecodeError as err:
        raise InputFileError(f"--config {path} is not UTF-8 text ({_one_line(err)})") from err
    except Exception as err:
        # yaml.YAMLError; yaml is imported only when a .yaml file is read, so match by module.
        if type(err).__module__.split(".")[0] != "yaml":
            raise
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or _one_line(err)
        raise InputFileError(f"--config {path} is not valid YAML: {problem}{where}; {fix}") from err


def read_run_info(run_dir: str | Path, *, kind: str | None = None) -> dict[str, Any]:
    """``run_dir``'s ``run.json``, checked: a JSON object with a ``config`` object (and, when
    ``kind`` is given, that ``kind``). Raises :class:`InputFileError` naming the file."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir} is not a directory; give a minibert run directory")
    path = run_dir / RUN_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} has no {RUN_JSON}; is it a minibert run directory?")
    info = read_json_file(path, what="run file")
    restore = "restore it from a backup or start the run again (minibert writes this file itself)"
    if not isinstance(info, dict):
        raise InputFileError(
            f"run file {path} holds a JSON {type(info).__name__}, not an object with the run's "
            f"settings; {restore}"
        )
    if kind is not None and info.get("kind") != kind:
        raise InputFileError(
            f"{run_dir} is not a {kind} run: {path} says kind {info.get('kind')!r}; give the "
            f"directory of a {kind} run"
        )
    config = info.get("config")
    if not isinstance(config, dict):
        problem = (
            "has no 'config' section"
            if config is None
            else f"has a 'config' that is a {type(config).__name__}, not an object"
        )
        raise InputFileError(f"run file {path} {problem}; {restore}")
    return info


def check_resumable_checkpoint(checkpoint: str | Path) -> None:
    """Open every file a resume reads from ``checkpoint``; raise :class:`InputFileError` naming
    the first one that is missing or unreadable (truncated, corrupt, not what it should be)."""
    import torch

    checkpoint = Path(checkpoint)
    for name in CHECKPOINT_FILES:
        path = checkpoint / name
        if name == "model.safetensors" and not path.is_file():
            # Sharded weights: the index must be a JSON object (the shards load with the model).
            name = "model.safetensors.index.json"
            path = checkpoint / name
        if not path.is_file():
            raise InputFileError(f"checkpoint {checkpoint} has no {name}")
        try:
            if name.endswith(".json"):
                if not isinstance(read_json_file(path), dict):
                    raise ValueError("not a JSON object")
            elif name.endswith(".pt"):
                # weights_only: nothing is unpickled; mmap: the tensors are not read into memory.
                torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            else:
                from safetensors import safe_open

                with safe_open(str(path), framework="pt") as weights:
                    weights.keys()
        except Exception as err:  # any failure to read means the same thing: the file is bad
            raise InputFileError(
                f"checkpoint {checkpoint} is damaged: {name} cannot be read "
                f"({_one_line(err).split('. ')[0]})"
            ) from err


def resumable_checkpoint(checkpoints: list[tuple[int, Path]], command: str) -> Path:
    """The newest of ``checkpoints`` (``(step, path)``, oldest first) if it reads fine.

    Otherwise raise :class:`InputFileError` saying what is damaged and, when an older checkpoint
    reads fine, how to resume from it: move the damaged folder aside (a folder not named
    ``step-N`` is not a checkpoint, so it is kept but never picked) and run ``command`` again.
    """
    if not checkpoints:
        raise FileNotFoundError("the run has no checkpoint to resume from")
    step, latest = checkpoints[-1]
    try:
        check_resumable_checkpoint(latest)
        return latest
    except InputFileError as err:
        damaged = err
    aside = latest.with_name(f"damaged-{latest.name}")
    for previous_step, previous in reversed(checkpoints[:-1]):
        try:
            check_resumable_checkpoint(previous)
        except InputFileError:
            continue
        raise InputFileError(
            f"{damaged}. The previous checkpoint {previous} (step {previous_step}) reads fine: "
            f"move the damaged one aside (mv {latest} {aside}) and run {command} again to resume "
            f"from step {previous_step}"
        ) from damaged
    raise InputFileError(
        f"{damaged}. No earlier checkpoint reads fine, so the run cannot be resumed; start it "
        "again with --overwrite instead of --resume"
    ) from damaged
