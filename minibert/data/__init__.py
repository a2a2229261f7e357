"""Data: corpora, cleaning, tokenizer, pre-training examples and downstream tasks.

Names are imported lazily (as in ``minibert/__init__.py``) so ``import minibert.data`` stays light:
a lesson that only loads a corpus does not pay for importing torch or transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> module that defines it
_EXPORTS = {
    "Document": "minibert.data.corpora",
    "KNOWN_CORPORA": "minibert.data.corpora",
    "load_corpus": "minibert.data.corpora",
    "iter_wiki_pages": "minibert.data.corpora",
    "parse_wikitext": "minibert.data.wikitext",
    "load_task": "minibert.data.tasks",
    "TaskData": "minibert.data.tasks",
    "load_similarity_benchmark": "minibert.data.tasks",
    "train_wordpiece": "minibert.data.tokenizer",
    "save_tokenizer": "minibert.data.tokenizer",
    "load_tokenizer": "minibert.data.tokenizer",
    "tokenizer_report": "minibert.data.tokenizer",
    "TokenizerReport": "minibert.data.tokenizer",
    "split_by_document": "minibert.data.examples",
    "encode_documents": "minibert.data.examples",
    "create_pretraining_examples": "minibert.data.examples",
    "PretrainingExample": "minibert.data.examples",
    "SpecialTokenIds": "minibert.data.examples",
    "MaskingCollator": "minibert.data.examples",
    "normalize_text": "minibert.data.clean",
    "split_sentences": "minibert.data.clean",
    "CleaningConfig": "minibert.data.clean",
    "CleanedCorpus": "minibert.data.clean",
    "clean_corpus": "minibert.data.clean",
    "StepReport": "minibert.data.clean",
    "CorpusStats": "minibert.data.clean",
    "format_reports": "minibert.data.clean",
    "DataConfig": "minibert.data.pipeline",
    "PreparedCorpus": "minibert.data.pipeline",
    "PreparedData": "minibert.data.pipeline",
    "prepare_corpus": "minibert.data.pipeline",
    "prepare_data": "minibert.data.pipeline",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'minibert.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # cache: the next lookup skips __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
