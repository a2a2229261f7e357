"""A run's checkpoints, and the same text through each of them (how attention forms in training).

Each checkpoint's ``trainer_state.json`` (minibert/train/checkpoint.py) records its step, the
tokens seen so far and the seconds of training so far. Checkpoints still being written (a
``.tmp-`` folder) are never listed. Results are cached on disk per checkpoint
(:mod:`minibert.inspect.cache`), so looking again, even from a new process, reads files only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minibert.inspect.attention_maps import AttentionResult, attention_from_encoded
from minibert.inspect.cache import DiskCache
from minibert.inspect.errors import ModelSourceError, NoCheckpointsError
from minibert.inspect.sources import LoadedModel, ModelSource, load_model
from minibert.inspect.tokens import encode_text

__all__ = [
    "AttentionOverTraining",
    "CheckpointInfo",
    "attention_over_training",
    "list_checkpoints",
    "load_checkpoints",
]

logger = logging.getLogger(__name__)


@dataclass
class CheckpointInfo:
    """One complete checkpoint: its step, folder, tokens seen and seconds of training so far."""

    step: int
    path: Path
    tokens_seen: int | None
    wall_time: float | None  # seconds of training since the run started (summed over resumes)


def _run_dir(run_dir: str | Path) -> Path:
    path = Path(run_dir).expanduser()
    if not path.is_dir():
        raise ModelSourceError(f"{path} is not a run directory (it does not exist)")
    if not ((path / "run.json").is_file() or (path / "checkpoints").is_dir()):
        raise ModelSourceError(
            f"{path} is not a minibert run directory (no run.json, no checkpoints/); give "
            "runs/<name> as written by `minibert pretrain` or `minibert finetune`"
        )
    return path


def _checkpoint_info(step: int, path: Path) -> CheckpointInfo:
    tokens = elapsed = None
    state_path = path / "trainer_state.json"
    if state_path.is_file():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
            step = int(state.get("step", step))
            tokens = int(state["tokens"]) if state.get("tokens") is not None else None
            elapsed = float(state["elapsed"]) if state.get("elapsed") is not None else None
        except (ValueError, TypeError, json.JSONDecodeError) as err:
            logger.warning("%s is unreadable (%s); using the folder name's step", state_path, err)
    return CheckpointInfo(step=step, path=path, tokens_seen=tokens, wall_time=elapsed)


def list_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    """The complete checkpoints of a run, oldest first (empty while it has none yet).

    ``.tmp-`` folders (a save in progress or killed) are skipped. ``final/`` is not listed:
    it is a copy of the last checkpoint (or of the best one, for a fine-tuning run).
    """
    from minibert.train.rundir import RunDirectory

    run = RunDirectory(_run_dir(run_dir))
    return [
        _checkpoint_info(step, path)
        for step, path in run.checkpoints()
        if (path / "config.json").is_file()
    ]


def _require_checkpoints(run_dir: str | Path) -> list[CheckpointInfo]:
    found = list_checkpoints(run_dir)
    if not found:
        raise NoCheckpointsError(
            f"{run_dir} has no complete checkpoint yet (checkpoints/step-*/ is empty): wait "
            "for training to save one (train.checkpoint_every), or pick another run"
        )
    return found


def load_checkpoints(run_dir: str | Path) -> tuple[list[CheckpointInfo], list[LoadedModel]]:
    """Every checkpoint of the run, loaded (through the shared model cache)."""
    checkpoints = _require_checkpoints(run_dir)
    return checkpoints, [load_model(info.path) for info in checkpoints]


@dataclass
class AttentionOverTraining:
    """The same text through every checkpoint: ``results[i]`` belongs to ``checkpoints[i]``."""

    checkpoints: list[CheckpointInfo]
    results: list[AttentionResult]

    @property
    def steps(self) -> list[int]:
        return [info.step for info in self.checkpoints]

    def stacked(self) -> np.ndarray:
        """All weights in one array: (checkpoints, L, nh, T, T)."""
        return np.stack([result.attentions for result in self.results])


def _result_meta(result: AttentionResult) -> dict:
    return {
        "tokens": result.tokens,
        "word_ids": result.word_ids,
        "words": result.words,
        "special_mask": result.special_mask,
        "token_type_ids": result.token_type_ids,
        "truncated": result.truncated,
        "num_tokens_before_truncation": result.num_tokens_before_truncation,
    }


def _source_for(info: CheckpointInfo, run: Path) -> ModelSource:
    return ModelSource(
        path=info.path, kind="checkpoint", run=run, step=info.step,
        label=f"{run.name} @ step {info.step}",
    )  # fmt: skip


def attention_over_training(
    run_dir: str | Path,
    text: str,
    text_pair: str | None = None,
    *,
    max_length: int | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> AttentionOverTraining:
    """:func:`~minibert.inspect.attention` of ``text`` at every checkpoint of the run.

    Every checkpoint shares the run's tokenizer, so all results have the same tokens.
    Results are cached on disk (``cache_dir``, default :func:`~minibert.inspect.cache.
    default_cache_dir`) keyed on checkpoint folder + modification time + text + options.

    Raises:
        NoCheckpointsError: the run has no complete checkpoint. InputTextError: empty text.
    """
    run = _run_dir(run_dir)
    checkpoints = _require_checkpoints(run)
    cache = DiskCache(cache_dir) if use_cache else None
    question = {"what": "attention", "text": text, "text_pair": text_pair, "max": max_length}
    results: list[AttentionResult | None] = [None] * len(checkpoints)
    keys: list[str | None] = [None] * len(checkpoints)
    for index, info in enumerate(checkpoints):
        if cache is None:
            continue
        keys[index] = cache.key(info.path, question)
        hit = cache.get(keys[index])
        if hit is None:
            continue
        arrays, meta = hit
        results[index] = AttentionResult(
            attentions=arrays["attentions"],
            text=text,
            text_pair=text_pair,
            source=_source_for(info, run),
            **meta,
        )
    encoded = None
    for index, info in enumerate(checkpoints):
        if results[index] is not None:
            continue
        loaded = load_model(info.path)
        if encoded is None:  # the run's tokenizer: the same for every checkpoint
            encoded = encode_text(
                loaded.tokenizer, loaded.config, text, text_pair, max_length=max_length
            )
        result = attention_from_encoded(loaded, encoded, text, text_pair)
        result.source = _source_for(info, run)
        results[index] = result
        if cache is not None:
            cache.put(keys[index], {"attentions": result.attentions}, _result_meta(result))
    return AttentionOverTraining(checkpoints=checkpoints, results=list(results))
