"""Looking inside models: the numbers behind every figure, lesson and dashboard page.

Each function takes a *model source* (a run directory, a checkpoint, a saved or `transformers`
BERT folder, ``"minilm"``, or a model in memory; see :func:`load_model`) and returns a small
dataclass of numpy arrays that :mod:`minibert.viz` draws:

* :func:`attention`: every layer's and head's weights for a text or sentence pair;
* :func:`list_checkpoints`, :func:`attention_over_training`: the same text through each
  checkpoint of a run (cached on disk);
* :func:`head_statistics`, :func:`ablate_heads`, :func:`compare_attention`: what heads do, what
  switching them off costs, what fine-tuning changed;
* :func:`fill_mask`, :func:`fill_mask_over_training`, :func:`masking_lab`: the MLM's guesses;
* :func:`embed`, :func:`project`, :func:`similarity_benchmarks`: vectors and what they capture.

Bad input raises an :class:`InspectError` whose message says what to do. Names are imported
lazily, so ``import minibert.inspect`` does not import torch until a function is used.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "InspectError": "minibert.inspect.errors",
    "ModelSourceError": "minibert.inspect.errors",
    "NoCheckpointsError": "minibert.inspect.errors",
    "InputTextError": "minibert.inspect.errors",
    "HeadIndexError": "minibert.inspect.errors",
    "UnsupportedModelError": "minibert.inspect.errors",
    "ModelSource": "minibert.inspect.sources",
    "LoadedModel": "minibert.inspect.sources",
    "load_model": "minibert.inspect.sources",
    "clear_model_cache": "minibert.inspect.sources",
    "AttentionResult": "minibert.inspect.attention",
    "attention": "minibert.inspect.attention",
    "CheckpointInfo": "minibert.inspect.checkpoints",
    "AttentionOverTraining": "minibert.inspect.checkpoints",
    "list_checkpoints": "minibert.inspect.checkpoints",
    "attention_over_training": "minibert.inspect.checkpoints",
    "HEAD_CLASSES": "minibert.inspect.heads",
    "HeadStats": "minibert.inspect.heads",
    "head_statistics": "minibert.inspect.heads",
    "AblationResult": "minibert.inspect.heads",
    "ablate_heads": "minibert.inspect.heads",
    "AttentionComparison": "minibert.inspect.heads",
    "compare_attention": "minibert.inspect.heads",
    "heldout_sentences": "minibert.inspect.heldout",
    "TokenGuess": "minibert.inspect.predictions",
    "FillMaskResult": "minibert.inspect.predictions",
    "FillMaskOverTraining": "minibert.inspect.predictions",
    "fill_mask": "minibert.inspect.predictions",
    "fill_mask_over_training": "minibert.inspect.predictions",
    "MaskingLabResult": "minibert.inspect.masking",
    "masking_lab": "minibert.inspect.masking",
    "TokenVectors": "minibert.inspect.embeddings",
    "EmbeddingProjection": "minibert.inspect.embeddings",
    "embed": "minibert.inspect.embeddings",
    "token_vectors": "minibert.inspect.embeddings",
    "project": "minibert.inspect.embeddings",
    "similarity_benchmarks": "minibert.inspect.embeddings",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minibert.inspect' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
