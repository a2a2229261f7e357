"""Where a fine-tuning run's weights and tokenizer come from (``init``, ``tokenizer``).

* ``random``: a fresh model (the "does pretraining help?" baseline). It needs a tokenizer:
  ``tokenizer`` (a tokenizer folder or a minibert run, whose architecture is then used too,
  for a like-for-like comparison) or, by default, the default data pipeline's WordPiece;
  ``preset`` picks the size;
* ``minilm``: the offline all-MiniLM-L6-v2 package (``minibert[pretrained]``), a 6-layer BERT
  without heads: the encoder loads, the classifier starts fresh;
* a minibert run directory (``runs/<name>``: its ``final/`` and ``tokenizer/``), a
  checkpoint, or any Hugging Face BERT folder (config.json + model.safetensors + tokenizer).

:func:`resolve_init` checks the setting without loading anything heavy, so a typo fails before
any data is prepared; :func:`tokenizer_for` and :func:`build_model` then load what it found.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from minibert.hf import minilm_dir
from minibert.train.loop import derive_seed

if TYPE_CHECKING:
    from minibert.train.finetuning.settings import FinetuneConfig

__all__ = ["MINILM", "InitSource", "build_model", "minilm_dir", "resolve_init", "tokenizer_for"]

logger = logging.getLogger(__name__)

MINILM = "minilm"  # --init alias for the offline all-MiniLM-L6-v2 package


@dataclass
class InitSource:
    """The resolved ``init``: what kind it is and where its weights and tokenizer are."""

    kind: str  # "random" | "minibert-run" | "model-dir"
    spec: str  # as the user wrote it
    model_dir: Path | None = None
    tokenizer_dir: Path | None = None
    architecture: str | None = None  # config.json "architectures"[0]
    run_info: dict[str, Any] | None = None  # the source run's run.json (minibert runs)

    def describe(self) -> str:
        if self.kind == "random":
            return "random initialisation"
        return f"{self.model_dir} ({self.architecture or 'BERT'})"


def _has_tokenizer(directory: Path) -> bool:
    return (directory / "tokenizer.json").is_file() or (directory / "vocab.txt").is_file()


def _has_weights(directory: Path) -> bool:
    return (directory / "model.safetensors").is_file() or (
        directory / "model.safetensors.index.json"
    ).is_file()


_INIT_HELP = (
    "Use 'random', 'minilm' (the offline all-MiniLM-L6-v2), a minibert run directory "
    "(runs/<name>, with final/ and tokenizer/) or a BERT model folder (config.json + "
    "model.safetensors, as saved by transformers or minibert)."
)


def resolve_init(init: str) -> InitSource:
    """Check ``init`` and find its weights and tokenizer, without loading anything heavy.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a folder that is not
    a BERT model or a minibert run (the message lists what is accepted), or a run whose
    ``run.json`` is damaged (:class:`~minibert.train.preflight.InputFileError`, naming it).
    """
    if init == "random":
        return InitSource(kind="random", spec=init)
    path = minilm_dir() if init == MINILM else Path(init).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"--init {init}: no such file or directory. {_INIT_HELP}")
    if not path.is_dir():
        raise ValueError(f"--init {init} is a file, not a model folder. {_INIT_HELP}")
    run_info = None
    if (path / "run.json").is_file():
        from minibert.train.evaluate import resolve_model_dir
        from minibert.train.preflight import read_run_info

        # Checked: a run.json that is not a JSON object with a config names the file.
        run_info = read_run_info(path)
        if run_info.get("kind") == "finetune-cv":
            raise ValueError(
                f"--init {init} is a cross-validation run; start from one of its folds "
                f"({path}/fold-0, ...) or from the model it was fine-tuned from"
            )
        try:
            model_dir = resolve_model_dir(path)
        except FileNotFoundError as err:
            raise ValueError(
                f"--init {init} is a minibert run without weights yet (no final/ and no "
                "checkpoint): let its training finish, or pick another run"
            ) from err
        kind = "minibert-run"
    elif (path / "config.json").is_file():
        model_dir = path
        kind = "model-dir"
    else:
        present = sorted(p.name for p in path.iterdir())[:10]
        raise ValueError(
            f"--init {init} is not a BERT model folder: it has no config.json (and no run.json, "
            f"so it is not a minibert run either); it holds {present}. {_INIT_HELP}"
        )
    try:
        model_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"--init {init}: {model_dir / 'config.json'} is not valid JSON: {err}"
        ) from err
    model_type = model_config.get("model_type", "bert")
    if model_type != "bert":
        raise ValueError(
            f"--init {init} holds a {model_type!r} model; minibert fine-tunes BERT models only. "
            f"{_INIT_HELP}"
        )
    if not _has_weights(model_dir):
        pickled = sorted(p.name for p in model_dir.glob("*.bin"))
        hint = (
            f" It holds {pickled} (pickle): load it with minibert.from_hf(folder) and "
            "save_pretrained() it to get safetensors."
            if pickled
            else ""
        )
        raise ValueError(f"--init {init}: {model_dir} has no model.safetensors.{hint}")
    architectures = model_config.get("architectures") or [None]
    tokenizer_dir = None
    for candidate in (
        model_dir,
        model_dir.parent / "tokenizer",
        model_dir.parent.parent / "tokenizer",
    ):
        if candidate.is_dir() and _has_tokenizer(candidate):
            tokenizer_dir = candidate
            break
    return InitSource(
        kind=kind,
        spec=init,
        model_dir=model_dir,
        tokenizer_dir=tokenizer_dir,
        architecture=architectures[0],
        run_info=run_info,
    )


def tokenizer_source(spec: str) -> tuple[Path, Path | None]:
    """A ``tokenizer`` setting -> (tokenizer folder, model folder of its run if it is a run)."""
    path = Path(spec).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"--tokenizer {spec}: no such directory; give a tokenizer folder (tokenizer.json or "
            "vocab.txt) or a minibert run directory"
        )
    if (path / "run.json").is_file():
        from minibert.train.evaluate import resolve_model_dir

        try:
            model_dir: Path | None = resolve_model_dir(path)
        except FileNotFoundError:
            model_dir = None
        tokenizer_dir = path / "tokenizer"
        if not _has_tokenizer(tokenizer_dir) and model_dir is not None:
            tokenizer_dir = model_dir
        return tokenizer_dir, model_dir
    return path, None


def tokenizer_for(
    config: FinetuneConfig, source: InitSource, cache_dir: Any
) -> tuple[Any, str, Path | None]:
    """The tokenizer, a description of where it came from, and (random init from a run) the
    model folder whose architecture a random model copies."""
    from minibert.data.tokenizer import load_tokenizer

    if config.tokenizer is not None:
        tokenizer_dir, run_model_dir = tokenizer_source(config.tokenizer)
        if source.kind != "random":
            # Pretrained embeddings only mean something with the vocabulary they were
            # trained with; a different tokenizer is allowed (an experiment) but flagged.
            logger.warning(
                "--tokenizer %s replaces the tokenizer of the pretrained model %s; token ids "
                "will not mean what its embeddings learned",
                tokenizer_dir,
                source.model_dir,
            )
        return load_tokenizer(tokenizer_dir), str(tokenizer_dir), run_model_dir
    if source.tokenizer_dir is not None:
        return load_tokenizer(source.tokenizer_dir), str(source.tokenizer_dir), None
    if source.kind != "random":
        raise ValueError(
            f"--init {source.spec}: no tokenizer next to {source.model_dir} (tokenizer.json or "
            "vocab.txt in it, or a tokenizer/ folder in its run); pass --tokenizer DIR"
        )
    from minibert.data.pipeline import DataConfig, prepare_data

    logger.info("random init: using the WordPiece tokenizer of the default data pipeline")
    data = prepare_data(DataConfig(), cache_dir, progress=False)
    return data.tokenizer, f"default data pipeline ({data.tokenizer_path})", None


def check_head(source: InitSource, kind: str, labels: Sequence[str]) -> None:
    """A fine-tuned model can only continue on a task of its own kind and labels."""
    heads = {"BertForSequenceClassification": "sequence", "BertForTokenClassification": "token"}
    held = heads.get(source.architecture or "")
    if held is None:
        return
    config = json.loads((source.model_dir / "config.json").read_text(encoding="utf-8"))
    trained = [v for _, v in sorted((int(k), v) for k, v in (config.get("id2label") or {}).items())]
    origin = ""
    if source.run_info and isinstance(source.run_info.get("init"), dict):
        origin = f" (it was fine-tuned from {source.run_info['init'].get('spec')})"
    if held != kind:
        raise ValueError(
            f"--init {source.spec} holds a {source.architecture}, a {held}-level classifier "
            f"fine-tuned for {trained}, but this is a {kind} task. Start from a pretrained "
            f"encoder instead{origin}."
        )
    if trained and list(trained) != list(labels):
        raise ValueError(
            f"--init {source.spec} is a classifier for labels {trained}, but this task's labels "
            f"are {list(labels)}. Start from a pretrained encoder instead{origin}."
        )


def build_model(
    config: FinetuneConfig,
    source: InitSource,
    kind: str,
    labels: Sequence[str],
    tokenizer: Any,
    architecture_dir: Path | None,
) -> nn.Module:
    """The model to fine-tune: the classifier class for ``kind`` with a fresh head for
    ``labels``, on a random encoder (``preset``, or the architecture in ``architecture_dir``)
    or the pretrained one of ``source``. Its initial weights depend on the seed alone."""
    from minibert.config import BertConfig
    from minibert.heads import BertForSequenceClassification, BertForTokenClassification

    model_class = (
        BertForSequenceClassification if kind == "sequence" else BertForTokenClassification
    )
    head = {
        "id2label": dict(enumerate(labels)),
        "label2id": {name: i for i, name in enumerate(labels)},
        "num_labels": len(labels),
    }
    if config.classifier_dropout is not None:
        head["classifier_dropout"] = config.classifier_dropout
    vocab = len(tokenizer)
    # The classifier's (and a random model's) initial weights depend on the seed alone.
    torch.manual_seed(derive_seed(config.train.seed, "init"))
    if source.kind == "random":
        if config.preset is None and architecture_dir is not None:
            base = BertConfig.from_json_file(architecture_dir / "config.json", strict=False)
            base = base.replace(vocab_size=vocab)
        else:
            base = BertConfig.preset(config.preset or "tiny", vocab_size=vocab)
        model = model_class(base.replace(**head))
    else:
        check_head(source, kind, labels)
        model = model_class.from_pretrained(source.model_dir, **head)
        if vocab > model.config.vocab_size:
            raise ValueError(
                f"the tokenizer has {vocab} tokens but the model in {source.model_dir} only "
                f"{model.config.vocab_size} embeddings: they do not belong together. Use the "
                "model's own tokenizer (drop --tokenizer)."
            )
    if config.task.max_seq_len > model.config.max_position_embeddings:
        raise ValueError(
            f"task.max_seq_len={config.task.max_seq_len} is longer than the model's "
            f"max_position_embeddings={model.config.max_position_embeddings}; lower it"
        )
    return model
