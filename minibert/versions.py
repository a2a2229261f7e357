"""Which versions of minibert, Python and the libraries a run or a cache entry was made with.

A run records them in its ``run.json`` so that a number read months later can be traced to the
code that produced it; the data cache keys on them so that a new parser or tokenizer release
rebuilds the entries it would have made differently. This is the one place that asks.
"""

from __future__ import annotations

import importlib.metadata
import platform
from collections.abc import Iterable

from minibert import __version__

#: The libraries whose versions can change a training run's numbers or files.
RUN_LIBRARIES = ("torch", "transformers", "tokenizers", "safetensors", "numpy", "seqeval")


def library_versions(names: Iterable[str], *, missing: str = "not installed") -> dict[str, str]:
    """``{name: installed version}`` for each distribution name; ``missing`` where it is absent.

    ``missing`` is a parameter because the data cache has always recorded ``"missing"``, and
    changing that text would change every cache key.
    """
    versions = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = missing
    return versions


def run_versions() -> dict[str, str]:
    """What a ``run.json`` records: minibert, Python and every library in :data:`RUN_LIBRARIES`."""
    return {
        "minibert": __version__,
        "python": platform.python_version(),
        **library_versions(RUN_LIBRARIES),
    }
