"""The shape of a BERT model: one validated dataclass with the field names `transformers` uses.

The field names are the ones in a Hugging Face ``config.json`` so that a minibert save directory is
read by `transformers` and an HF BERT directory is read by minibert without a translation step.
The architecture sizes follow Devlin et al. (2019), Section 3 ("BERT_BASE: L=12, H=768, A=12") and
the small variants of Turc et al. (2019), "Well-Read Students Learn Better" (L/H/A grid).

Example::

    config = BertConfig.preset("tiny", vocab_size=8192)
    config.to_json_file("config.json")
    assert BertConfig.from_json_file("config.json") == config
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

#: Activation names accepted in ``hidden_act`` (the subset of HF's ``ACT2FN`` that minibert
#: implements; see ``minibert.activations``).
SUPPORTED_ACTIVATIONS = ("gelu", "gelu_new", "gelu_pytorch_tanh", "relu", "silu", "swish")

#: Named sizes: (num_hidden_layers, hidden_size, num_attention_heads). The feed-forward width is
#: always 4 * hidden_size, as in the paper.
PRESETS: dict[str, tuple[int, int, int]] = {
    "tiny": (2, 128, 2),
    "mini": (4, 256, 4),
    "small": (4, 512, 8),
    "base": (12, 768, 12),
}

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

#: Attention kernels (``attn_implementation``, HF's field name and values): "eager" runs the
#: written-out steps of ``minibert.functional.scaled_dot_product_attention``; "sdpa" hands them
#: to ``torch.nn.functional.scaled_dot_product_attention`` (fused, never builds the T x T
#: weights). Both compute the same numbers (tests/test_attention.py).
ATTN_IMPLEMENTATIONS = ("eager", "sdpa")

# Keys that every config.json carries for bookkeeping; reading them never changes the model.
_BOOKKEEPING_KEYS = frozenset(
    {
        "model_type",
        "architectures",
        "transformers_version",
        "minibert_version",
        "_name_or_path",
        "dtype",
        "torch_dtype",
    }
)

# HF options that change the network. minibert implements only the value on the right; a config
# asking for anything else describes a model minibert cannot reproduce, so reading it must fail.
_HF_REQUIRED_VALUES: dict[str, Any] = {
    "position_embedding_type": "absolute",
    "is_decoder": False,
    "add_cross_attention": False,
    "is_encoder_decoder": False,
    "chunk_size_feed_forward": 0,
}


@dataclass
class BertConfig:
    """Hyper-parameters of a BERT encoder and its task heads (HF ``BertConfig`` field names).

    Validated on construction: a bad value raises ``ValueError`` naming the field and the fix.
    ``num_labels`` may be left as ``None``: it then follows ``id2label`` (or defaults to 2, as
    in `transformers`); ``id2label``/``label2id`` are filled with ``LABEL_i`` names when absent.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    pad_token_id: int = 0
    initializer_range: float = 0.02
    # Which attention kernel runs (ATTN_IMPLEMENTATIONS). As in transformers, asking for the
    # attention weights (output_attentions=True) under "sdpa" runs that call eagerly. "eager"
    # makes training step through the written-out attention (e.g. to stop in a debugger).
    # Saved in config.json, where transformers reads it too.
    attn_implementation: str = "sdpa"
    # Fine-tuning heads (Devlin et al. 2019, Section 4).
    num_labels: int | None = None
    classifier_dropout: float | None = None
    id2label: dict[int, str] | None = field(default=None)
    label2id: dict[str, int] | None = field(default=None)
    problem_type: str | None = None

    # -- validation -----------------------------------------------------------------------

    def __post_init__(self) -> None:
        for name in (
            "vocab_size",
            "hidden_size",
            "num_hidden_layers",
            "num_attention_heads",
            "intermediate_size",
            "max_position_embeddings",
            "type_vocab_size",
        ):
            _require_positive_int(name, getattr(self, name))
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}) so that every head gets hidden_size / heads "
                "dimensions; change one of the two."
            )
        if not isinstance(self.hidden_act, str) or self.hidden_act not in SUPPORTED_ACTIVATIONS:
            raise ValueError(
                f"hidden_act={self.hidden_act!r} is not supported; use one of "
                f"{', '.join(SUPPORTED_ACTIVATIONS)}."
            )
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            _require_probability(name, getattr(self, name))
        check_attn_implementation(self.attn_implementation)
        if self.classifier_dropout is not None:
            _require_probability("classifier_dropout", self.classifier_dropout)
        for name in ("layer_norm_eps", "initializer_range"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)  # NaN passes `value <= 0`
                or value <= 0
            ):
                raise ValueError(
                    f"{name} must be a positive number, not NaN or inf; got {value!r}."
                )
        if (
            isinstance(self.pad_token_id, bool)
            or not isinstance(self.pad_token_id, int)
            or not 0 <= self.pad_token_id < self.vocab_size
        ):
            raise ValueError(
                f"pad_token_id must be an int in [0, vocab_size={self.vocab_size}), "
                f"got {self.pad_token_id!r}."
            )
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(
                f"problem_type={self.problem_type!r} is not known; use None (inferred from the "
                f"labels) or one of {', '.join(PROBLEM_TYPES)}."
            )
        self._resolve_labels()

    def _resolve_labels(self) -> None:
        if self.id2label is not None:
            if not isinstance(self.id2label, dict):
                raise TypeError(f"id2label must be a dict {{int: str}}, got {type(self.id2label)}.")
            # JSON turns int keys into strings; accept both.
            try:
                id2label = {int(k): str(v) for k, v in self.id2label.items()}
            except ValueError as err:
                raise ValueError(f"id2label keys must be integers, got {self.id2label!r}.") from err
            if sorted(id2label) != list(range(len(id2label))):
                raise ValueError(
                    f"id2label keys must be 0..{len(id2label) - 1} with none missing, "
                    f"got {sorted(id2label)}."
                )
            if self.num_labels is not None and self.num_labels != len(id2label):
                raise ValueError(
                    f"num_labels={self.num_labels} but id2label has {len(id2label)} entries; "
                    "pass only one of them or make them agree."
                )
            self.id2label = id2label
            self.num_labels = len(id2label)
        else:
            if self.num_labels is None:
                self.num_labels = 2  # the transformers default
            _require_positive_int("num_labels", self.num_labels)
            self.id2label = {i: f"LABEL_{i}" for i in range(self.num_labels)}
        if self.label2id is None:
            self.label2id = {name: i for i, name in self.id2label.items()}
        else:
            label2id = {str(k): int(v) for k, v in self.label2id.items()}
            if {v: k for k, v in label2id.items()} != self.id2label:
                raise ValueError(
                    f"label2id {label2id!r} is not the inverse of id2label {self.id2label!r}; "
                    "pass only id2label and label2id is derived."
                )
            self.label2id = label2id

    # -- presets ---------------------------------------------------------------------------

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> BertConfig:
        """A named size (``tiny``, ``mini``, ``small``, ``base``) with optional field overrides.

        ``intermediate_size`` is 4 * ``hidden_size`` (Devlin et al. 2019, Section 3, footnote:
        "the feed-forward/filter size to be 4H") unless overridden explicitly, also when
        ``hidden_size`` itself is overridden.
        """
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}.")
        layers, hidden, heads = PRESETS[name]
        _reject_unknown_fields(overrides, what="preset override")
        values: dict[str, Any] = {
            "num_hidden_layers": layers,
            "hidden_size": hidden,
            "num_attention_heads": heads,
        }
        values.update(overrides)
        values.setdefault("intermediate_size", 4 * values["hidden_size"])
        return cls(**values)

    # -- dict and JSON ---------------------------------------------------------------------

    @property
    def head_size(self) -> int:
        """Dimensions per attention head (hidden_size / num_attention_heads)."""
        return self.hidden_size // self.num_attention_heads

    def replace(self, **changes: Any) -> BertConfig:
        """A validated copy with some fields changed (unknown names raise ``ValueError``)."""
        _reject_unknown_fields(changes, what="config field")
        if "num_labels" in changes and "id2label" not in changes:
            changes.update(id2label=None, label2id=None)  # regenerate names for the new count
        elif "id2label" in changes and "label2id" not in changes:
            changes["label2id"] = None
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict with HF field names (``id2label`` keys become strings in JSON)."""
        data = dataclasses.asdict(self)
        data["id2label"] = {str(k): v for k, v in self.id2label.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = True) -> BertConfig:
        """Build a config from a dict such as a parsed ``config.json``.

        Bookkeeping keys (``model_type``, ``architectures``, ``transformers_version`` ...) are
        skipped. Other unknown keys raise ``ValueError`` when ``strict`` (a typo must not pass
        silently); with ``strict=False`` (reading a config written by `transformers`, which
        carries many generic options) they are ignored. Either way a value that changes the
        network in a way minibert does not implement (e.g. ``position_embedding_type="relative_key"``
        or ``is_decoder=True``) raises ``ValueError``.
        """
        if not isinstance(data, dict):
            raise TypeError(f"BertConfig.from_dict expects a dict, got {type(data).__name__}.")
        model_type = data.get("model_type", "bert")
        if model_type != "bert":
            raise ValueError(
                f"this config describes a {model_type!r} model, not a BERT model "
                "(model_type 'bert'); minibert only reads BERT configs."
            )
        for key, required in _HF_REQUIRED_VALUES.items():
            if key in data and data[key] != required:
                raise ValueError(
                    f"config sets {key}={data[key]!r}; minibert implements only "
                    f"{key}={required!r} (a bidirectional encoder with absolute positions)."
                )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known - _BOOKKEEPING_KEYS - set(_HF_REQUIRED_VALUES))
        if unknown:
            if strict:
                raise ValueError(
                    f"unknown config keys {unknown}; valid keys are {sorted(known)}. "
                    "Use from_dict(..., strict=False) to read a transformers config.json."
                )
            logger.debug("ignoring config keys minibert does not use: %s", unknown)
        values = {k: v for k, v in data.items() if k in known}
        kernel = values.get("attn_implementation", "sdpa")
        if kernel is None:
            values.pop("attn_implementation")  # transformers' "choose for me": our default
        elif not strict and kernel not in ATTN_IMPLEMENTATIONS:
            # Another kernel (e.g. flash_attention_2) computes the same model: read the weights
            # and run them with the default kernel instead of refusing the directory.
            logger.warning("attn_implementation=%r is not one minibert has; using 'sdpa'", kernel)
            values.pop("attn_implementation")
        return cls(**values)

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json_string(cls, text: str, *, strict: bool = True) -> BertConfig:
        return cls.from_dict(json.loads(text), strict=strict)

    def to_json_file(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_json_string())

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], *, strict: bool = True) -> BertConfig:
        with open(path, encoding="utf-8") as fh:
            return cls.from_json_string(fh.read(), strict=strict)


def check_attn_implementation(value: Any) -> None:
    """Raise ``ValueError`` unless ``value`` is one of :data:`ATTN_IMPLEMENTATIONS`."""
    if value not in ATTN_IMPLEMENTATIONS:
        raise ValueError(
            f"attn_implementation={value!r} is not supported; use 'eager' (the written-out "
            "attention, minibert.functional.scaled_dot_product_attention) or 'sdpa' (PyTorch's "
            "fused kernel)."
        )


def _require_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _require_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1), got {value!r}.")


def _reject_unknown_fields(values: dict[str, Any], *, what: str) -> None:
    known = {f.name for f in dataclasses.fields(BertConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown {what} {unknown}; valid names are {sorted(known)}.")
