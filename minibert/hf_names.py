"""The one name table between minibert and `transformers`, and state dicts renamed through it.

minibert names its modules for reading (``layers.0.attention.query``, ``ffn.up``); `transformers`
uses the names of the original TensorFlow checkpoint (``encoder.layer.0.attention.self.query``,
``intermediate.dense``). The tables below are the only place the two meet. Every conversion goes
through them and stops with a ``ValueError`` on a key it cannot place or a shape that does not
fit; nothing is dropped or filled in silently, except where documented for
:func:`load_hf_state_dict` with ``strict=False`` (fresh task heads on a pre-trained encoder, as
`transformers` does).

``{i}`` in a name stands for the layer index. Encoder names carry a ``bert.`` prefix on both
sides inside the task-head models (``bert.layers.0...`` <-> ``bert.encoder.layer.0...``); the
bare :class:`minibert.BertModel` has none, like ``transformers.BertModel``.

This module imports nothing of minibert: it works on state dicts (and on whatever object has a
``state_dict()``), so :mod:`minibert.model` can save and load through it while
:mod:`minibert.hf`, which converts whole models to and from `transformers`, builds on both.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

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
            f"minibert parameter {name!r} has no entry in the name table (minibert/hf_names.py)"
        )
    return renamed


def from_hf_key(name: str) -> str:
    """The minibert name of a `transformers` key (``KeyError`` if not in the table)."""
    renamed = _rename(_modernise(name), _ENCODER_FROM_HF, _HEAD_FROM_HF)
    if renamed is None:
        raise KeyError(
            f"transformers key {name!r} has no entry in the name table (minibert/hf_names.py)"
        )
    return renamed


def _modernise(name: str) -> str:
    """Old TF-converted checkpoints call LayerNorm parameters gamma/beta."""
    if ".LayerNorm." in name:
        name = re.sub(r"\.gamma$", ".weight", name)
        name = re.sub(r"\.beta$", ".bias", name)
    return name


# -- state dicts ---------------------------------------------------------------------------


def to_hf_state_dict(model: nn.Module, *, include_tied: bool = True) -> dict[str, torch.Tensor]:
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
            f"{type(model).__name__} has parameters the name table in minibert/hf_names.py does "
            f"not cover: {unmapped}; add them to ENCODER_NAMES/HEAD_NAMES."
        )
    if include_tied and "cls.predictions.bias" in converted:
        for tied, source in TIED_HF_KEYS.items():
            converted[tied] = converted[source]
    return converted


def load_hf_state_dict(
    model: nn.Module,
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
    expected = model.state_dict()
    # The bare encoder (minibert.BertModel) is the one model whose own names have no "bert."
    # prefix; every task model keeps its encoder under "bert.".
    bare_encoder = not any(key.startswith(_PREFIX) for key in expected)
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
            "BERT checkpoint minibert supports (or the name table in minibert/hf_names.py lacks "
            "them)."
        )

    unused: list[str] = []
    has_prefix = any(key.startswith(_PREFIX) for key in mapped)
    if bare_encoder and has_prefix:
        # A task model's checkpoint read into the bare encoder: keep the encoder part.
        unused = [key for key in mapped if not key.startswith(_PREFIX)]
        mapped = {key[len(_PREFIX) :]: t for key, t in mapped.items() if key.startswith(_PREFIX)}
    elif not bare_encoder and not has_prefix:
        # A bare encoder's checkpoint read into a task model: its weights go under "bert.".
        mapped = {(_PREFIX + key if _is_encoder_key(key) else key): t for key, t in mapped.items()}

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
