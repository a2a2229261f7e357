"""minibert: a teaching kit for BERT-style pretraining and fine-tuning.

The public names are imported lazily so that ``import minibert`` stays fast in a notebook and a
data-only lesson does not pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "BertConfig": "minibert.config",
    "BertModel": "minibert.model",
    "BertForPreTraining": "minibert.heads",
    "BertForMaskedLM": "minibert.heads",
    "BertForSequenceClassification": "minibert.heads",
    "BertForTokenClassification": "minibert.heads",
    "from_hf": "minibert.hf",
    "to_hf": "minibert.hf",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minibert' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next lookup skips __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
