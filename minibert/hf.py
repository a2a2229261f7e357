"""Weights in and out of `transformers`: one explicit name table, exact transfers, loud failures.

minibert names its modules for reading (``layers.0.attention.query``, ``ffn.up``); `transformers`
uses the names of the original TensorFlow checkpoint (``encoder.layer.0.attention.self.query``,
``intermediate.dense``). :data:`NAME_TABLE` below is the only place the two meet. Every
conversion goes through it and stops with a ``ValueError`` on a key it cannot place or a shape
that does not fit; nothing is dropped or filled in silently, except where documented for
``from_pretrained`` (fresh task heads on a pre-trained encoder, as `transformers` does).

``{i}`` in a name stands for the layer index. Encoder names carry a ``bert.`` prefix on both
sides inside the task-head models (``bert.layers.0...`` <-> ``bert.encoder.layer.0...``); the
bare :class:`minibert.BertModel` has none, like ``transformers.BertModel``.
"""

from __future__ import annotations

import logging
import os
import re
from typing import TYPE_CHECKING, Any

import torch

from minibert.config import ATTN_IMPLEMENTATIONS, BertConfig

if TYPE_CHECKING:
    from minibert.model import BertPreTrainedModel

logger = logging.getLogger(__name__)

#: (minibert parameter name, transformers parameter name) for the encoder.
ENCODER_NAMES: tuple[tuple[str, str], ...] = (
    ("embeddings.word.weight", "embeddings.word_embeddings.weight"),
    ("embeddings.position.weight", "embeddings.position_embeddings.weight"),
    ("embeddings.token_type.weight", "embeddings.token_type_embeddings.weight"),
    ("embeddings.norm.weight", "embeddings.LayerNorm.weight"),
    ("embeddings.norm.bias", "embeddings.LayerNorm.bias"),
    ("layers.{i}.attention.query.weight", "encoder.layer.{i}.attention.self.query.weight"),
    ("layers.{i}.attention.query.bias", "encoder.layer.{i}.attention.self.query.bias"),
    ("layers.{i}.attention.key.weight", "encoder.layer.{i}.attention.self.key.weight"),
    ("layers.{i}.attention.key.bias", "encoder.layer.{i}.attention.self.key.bias"),
    ("layers.{i}.attention.value.weight", "encoder.layer.{i}.attention.self.value.weight"),
    ("layers.{i}.attention.value.bias", "encoder.layer.{i}.attention.self.value.bias"),
    ("layers.{i}.attention.output.weight", "encoder.layer.{i}.attention.output.dense.weight"),
    ("layers.{i}.attention.output.bias", "encoder.layer.{i}.attention.output.dense.bias"),
    ("layers.{i}.attention_norm.weight", "encoder.layer.{i}.attention.output.LayerNorm.weight"),
    ("layers.{i}.attention_norm.bias", "encoder.layer.{i}.attention.output.LayerNorm.bias"),
    ("layers.{i}.ffn.up.weight", "encoder.layer.{i}.intermediate.dense.weight"),
    ("layers.{i}.ffn.up.bias", "encoder.layer.{i}.intermediate.dense.bias"),
    ("layers.{i}.ffn.down.weight", "encoder.layer.{i}.output.dense.weight"),
    ("layers.{i}.ffn.down.bias", "encoder.layer.{i}.output.dense.bias"),
    ("layers.{i}.ffn_norm.weight", "encoder.layer.{i}.output.LayerNorm.weight"),
    ("layers.{i}.ffn_norm.bias", "encoder.layer.{i}.output.LayerNorm.bias"),
    ("pooler.dense.weight", "pooler.dense.weight"),
    ("pooler.dense.bias", "pooler.dense.bias"),
)

#: (minibert parameter name, transformers parameter name) for the task heads (never prefixed).
HEAD_NAMES: tuple[tuple[str, str], ...] = (
    ("mlm.transform.weight", "cls.predictions.transform.dense.weight"),
    ("mlm.transform.bias", "cls.predictions.transform.dense.bias"),
    ("mlm.norm.weight", "cls.predictions.transform.LayerNorm.weight"),
    ("mlm.norm.bias", "cls.predictions.transform.LayerNorm.bias"),
    ("mlm.bias", "cls.predictions.bias"),
    ("nsp.weight", "cls.seq_relationship.weight"),
    ("nsp.bias", "cls.seq_relationship.bias"),
    ("classifier.weight", "classifier.weight"),
    ("classifier.bias", "classifier.bias"),
)

#: transformers keys that repeat another tensor: the MLM decoder is tied to the word embeddings
#: and its bias is ``cls.predictions.bias``. minibert stores each once.
TIED_HF_KEYS: dict[str, str] = {
    "cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
    "cls.predictions.decoder.bias": "cls.predictions.bias",
}

# Index buffers older transformers versions saved with the weights; they hold no learned values.
_HF_BUFFER_KEYS = re.compile(r"^(bert\.)?embeddings\.(position_ids|token_type_ids)$")

_PREFIX = "bert."
_HEAD_CLASS_NAMES = (
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
)
#: The classes that convert, by name (the same name in both libraries).
SUPPORTED_CLASSES = ("BertModel", *_HEAD_CLASS_NAMES)


def _compile(table: tuple[tuple[str, str], ...], src: int) -> list[tuple[re.Pattern[str], str]]:
    """Regexes from one side of the table to a format string for the other side."""
    compiled = []
    for pair in table:
        pattern = "^" + re.escape(pair[src]).replace(r"\{i\}", r"(?P<i>\d+)") + "$"
        compiled.append((re.compile(pattern), pair[1 - src]))
    return compiled


_ENCODER_TO_HF = _compile(ENCODER_NAMES, 0)
_ENCODER_FROM_HF = _compile(ENCODER_NAMES, 1)
_HEAD_TO_HF = _compile(HEAD_NAMES, 0)
_HEAD_FROM_HF = _compile(HEAD_NAMES, 1)


def _rename(name: str, encoder: list, head: list) -> str | None:
    prefix, rest = (_PREFIX, name[len(_PREFIX) :]) if name.startswith(_PREFIX) else ("", name)
    tables = encoder if prefix else encoder + head
    for pattern, target in tables:
        match = pattern.match(rest)
        if match:
            return prefix + target.replace("{i}", match.groupdict().get("i") or "")
    return None


def to_hf_key(name: str) -> str:
    """The `transformers` key of a minibert parameter name (``KeyError`` if not in the table)."""
    renamed = _rename(name, _ENCODER_TO_HF, _HEAD_TO_HF)
    if renamed is None:
        raise KeyError(
            f"minibert parameter {name!r} has no entry in the name table (minibert/hf.py)"
        )
    return renamed


def from_hf_key(name: str) -> str:
    """The minibert name of a `transformers` key (``KeyError`` if not in the table)."""
    renamed = _rename(_modernise(name), _ENCODER_FROM_HF, _HEAD_FROM_HF)
    if renamed is None:
        raise KeyError(f"transformers key {name!r} has no entry in the name table (minibert/hf.py)")
    return renamed


def _modernise(name: str) -> str:
    """Old TF-converted checkpoints call LayerNorm parameters gamma/beta."""
    if ".LayerNorm." in name:
        name = re.sub(r"\.gamma$", ".weight", name)
        name = re.sub(r"\.beta$", ".bias", name)
    return name


# -- state dicts ---------------------------------------------------------------------------


def to_hf_state_dict(
    model: BertPreTrainedModel, *, include_tied: bool = True
) -> dict[str, torch.Tensor]:
    """The model's parameters under `transformers` key names.

    With ``include_tied`` the MLM decoder keys are added (the same tensors as the word
    embeddings and the MLM bias), which ``transformers``' ``load_state_dict(strict=True)`` wants;
    without them the dict is what a `transformers` ``model.safetensors`` holds.
    """
    unmapped = []
    converted: dict[str, torch.Tensor] = {}
    for name, tensor in model.state_dict().items():
        try:
            converted[to_hf_key(name)] = tensor
        except KeyError:
            unmapped.append(name)
    if unmapped:
        raise ValueError(
            f"{type(model).__name__} has parameters the name table in minibert/hf.py does not "
            f"cover: {unmapped}; add them to ENCODER_NAMES/HEAD_NAMES."
        )
    if include_tied and "cls.predictions.bias" in converted:
        for tied, source in TIED_HF_KEYS.items():
            converted[tied] = converted[source]
    return converted


def load_hf_state_dict(
    model: BertPreTrainedModel,
    hf_state: dict[str, torch.Tensor],
    *,
    strict: bool = True,
    source: str = "the given state dict",
) -> None:
    """Copy a `transformers`-named state dict into ``model``, checking every key and shape.

    Always an error: a key the name table cannot place, a shape that does not match, a missing
    encoder weight, a tied decoder that differs from the word embeddings. With ``strict`` also
    an error: a missing head weight or a weight this model has no place for. Without it those
    are logged: missing head weights keep their fresh initialisation (a classifier on a
    pre-trained encoder), surplus weights (another head's) are skipped.
    """
    from minibert.model import BertModel

    state = _without_tied_and_buffer_keys(hf_state, source)
    mapped: dict[str, torch.Tensor] = {}
    unmapped = []
    for key, tensor in state.items():
        try:
            mapped[from_hf_key(key)] = tensor
        except KeyError:
            unmapped.append(key)
    if unmapped:
        raise ValueError(
            f"{source} holds weights minibert cannot place: {sorted(unmapped)}. It is not a "
            "BERT checkpoint minibert supports (or the name table in minibert/hf.py lacks them)."
        )

    unused: list[str] = []
    has_prefix = any(key.startswith(_PREFIX) for key in mapped)
    if isinstance(model, BertModel) and has_prefix:
        # A task model's checkpoint read into the bare encoder: keep the encoder part.
        unused = [key for key in mapped if not key.startswith(_PREFIX)]
        mapped = {key[len(_PREFIX) :]: t for key, t in mapped.items() if key.startswith(_PREFIX)}
    elif not isinstance(model, BertModel) and not has_prefix:
        # A bare encoder's checkpoint read into a task model: its weights go under "bert.".
        mapped = {(_PREFIX + key if _is_encoder_key(key) else key): t for key, t in mapped.items()}

    expected = model.state_dict()
    mismatched = [
        f"{key}: checkpoint {tuple(tensor.shape)} vs model {tuple(expected[key].shape)}"
        for key, tensor in mapped.items()
        if key in expected and tensor.shape != expected[key].shape
    ]
    if mismatched:
        raise ValueError(
            f"shapes in {source} do not match the model config: {mismatched}. The config.json and "
            "the weights disagree (or num_labels/vocab_size was overridden to a different size)."
        )
    missing = sorted(set(expected) - set(mapped))
    unused += sorted(set(mapped) - set(expected))
    missing_encoder = [key for key in missing if not _is_head_key(key)]
    if missing_encoder:
        raise ValueError(f"{source} lacks encoder weights: {missing_encoder}.")
    if strict and (missing or unused):
        raise ValueError(
            f"{source} does not match {type(model).__name__} exactly: missing {missing}, "
            f"unexpected {sorted(unused)}."
        )
    if missing:
        logger.warning(
            "%s has no weights for %s; they keep their random initialisation (train them "
            "before use).",
            source,
            missing,
        )
    if unused:
        logger.info(
            "%s: skipped weights %s has no place for: %s", source, type(model).__name__, unused
        )
    with torch.no_grad():
        for key, tensor in mapped.items():
            if key in expected:
                expected[key].copy_(tensor)


def _without_tied_and_buffer_keys(
    hf_state: dict[str, torch.Tensor], source: str
) -> dict[str, torch.Tensor]:
    state = {_modernise(key): t for key, t in hf_state.items() if not _HF_BUFFER_KEYS.match(key)}
    for tied, original in TIED_HF_KEYS.items():
        tied_tensor = state.pop(tied, None)
        if tied_tensor is None:
            continue
        original_tensor = state.setdefault(original, tied_tensor)
        if original_tensor.shape != tied_tensor.shape or not torch.equal(
            original_tensor, tied_tensor
        ):
            raise ValueError(
                f"{source}: {tied} differs from {original}. minibert always ties the MLM "
                "decoder to the word embeddings (and its bias to cls.predictions.bias), so "
                "it cannot represent this checkpoint."
            )
    return state


def _is_encoder_key(key: str) -> bool:
    return key.startswith(("embeddings.", "layers.", "pooler."))


def _is_head_key(key: str) -> bool:
    """Weights a pre-trained encoder checkpoint may legitimately lack: pooler and task heads."""
    bare = key[len(_PREFIX) :] if key.startswith(_PREFIX) else key
    return not bare.startswith(("embeddings.", "layers."))


# -- whole models --------------------------------------------------------------------------


def from_hf(model_or_path: Any) -> BertPreTrainedModel:
    """A minibert model with exactly the weights of a `transformers` BERT model.

    ``model_or_path`` is a ``transformers`` model instance (``BertModel``, ``BertForPreTraining``,
    ``BertForMaskedLM``, ``BertForSequenceClassification``, ``BertForTokenClassification``) or
    anything ``transformers``' ``from_pretrained`` accepts (a directory, or a hub id when
    online); the class is taken from the config's ``architectures``. The result is in the same
    train/eval mode, dtype and device as the source.
    """
    import transformers

    if isinstance(model_or_path, (str, os.PathLike)):
        hf_model = _load_hf_model(transformers, str(model_or_path))
    elif isinstance(model_or_path, transformers.PreTrainedModel):
        hf_model = model_or_path
    else:
        raise TypeError(
            "from_hf expects a transformers model or a path/hub id, got "
            f"{type(model_or_path).__name__}."
        )
    model_type = getattr(hf_model.config, "model_type", None)
    if model_type != "bert":
        raise ValueError(
            f"from_hf converts BERT models (model_type 'bert'); got a {model_type!r} model "
            f"({type(hf_model).__name__})."
        )
    class_name = _supported_class_name(transformers, hf_model)
    config = BertConfig.from_dict(hf_model.config.to_dict(), strict=False)
    # transformers keeps the kernel out of to_dict(); carry it over when minibert has it.
    kernel = getattr(hf_model.config, "_attn_implementation", None)
    if kernel in ATTN_IMPLEMENTATIONS:
        config = config.replace(attn_implementation=kernel)
    if class_name == "BertModel":
        model = _minibert_class(class_name)(config, add_pooling_layer=hf_model.pooler is not None)
    else:
        model = _minibert_class(class_name)(config)
    load_hf_state_dict(
        model, hf_model.state_dict(), strict=True, source=f"transformers.{class_name}"
    )
    reference = next(hf_model.parameters())
    model.to(device=reference.device, dtype=reference.dtype)
    return model.train(hf_model.training)


def to_hf(model: BertPreTrainedModel, *, attn_implementation: str | None = None) -> Any:
    """The same model as a `transformers` object of the same class name, with the same weights.

    ``attn_implementation`` is passed to `transformers` (e.g. ``"eager"`` to get attention
    weights from it); by default the model's ``config.attn_implementation``. The result is in the same train/eval mode, dtype and device as ``model``.
    """
    import transformers

    from minibert.model import BertModel, BertPreTrainedModel

    if not isinstance(model, BertPreTrainedModel):
        raise TypeError(f"to_hf expects a minibert model, got {type(model).__name__}.")
    class_name = type(model).__name__
    if class_name not in SUPPORTED_CLASSES:
        raise ValueError(f"to_hf converts {', '.join(SUPPORTED_CLASSES)}; got {class_name}.")
    hf_config = transformers.BertConfig(**hf_config_kwargs(model.config))
    if attn_implementation is not None:
        hf_config._attn_implementation = attn_implementation  # else the config's choice
    hf_class = getattr(transformers, class_name)
    if isinstance(model, BertModel):
        hf_model = hf_class(hf_config, add_pooling_layer=model.pooler is not None)
    else:
        hf_model = hf_class(hf_config)
    hf_model.load_state_dict(to_hf_state_dict(model, include_tied=True), strict=True)
    reference = next(model.parameters())
    hf_model.to(device=reference.device, dtype=reference.dtype)
    return hf_model.train(model.training)


def hf_config_kwargs(config: BertConfig) -> dict[str, Any]:
    """Keyword arguments for ``transformers.BertConfig`` describing the same model (including
    ``attn_implementation``, so the transformers model runs the same kernel)."""
    kwargs = config.to_dict()
    kwargs.update(position_embedding_type="absolute", is_decoder=False, tie_word_embeddings=True)
    return kwargs


def _load_hf_model(transformers: Any, path: str) -> Any:
    hf_config = transformers.AutoConfig.from_pretrained(path)
    if hf_config.model_type != "bert":
        raise ValueError(
            f"from_hf converts BERT models (model_type 'bert'); {path} holds a "
            f"{hf_config.model_type!r} model."
        )
    architectures = hf_config.architectures or ["BertModel"]
    class_name = architectures[0]
    if class_name not in SUPPORTED_CLASSES:
        raise ValueError(
            f"{path} holds a {class_name}; from_hf converts {', '.join(SUPPORTED_CLASSES)}. "
            "Load it with transformers as one of those classes and pass the model object."
        )
    return getattr(transformers, class_name).from_pretrained(path)


def _supported_class_name(transformers: Any, hf_model: Any) -> str:
    for name in SUPPORTED_CLASSES:
        if type(hf_model) is getattr(transformers, name):
            return name
    raise ValueError(
        f"from_hf converts {', '.join(SUPPORTED_CLASSES)}; got {type(hf_model).__name__}, "
        "whose head minibert does not implement."
    )


def _minibert_class(name: str) -> type:
    from minibert import heads, model

    return getattr(model, name) if name == "BertModel" else getattr(heads, name)
