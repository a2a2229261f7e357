"""The errors of :mod:`minibert.inspect`: one family, each message says what to do next.

Every function of the package checks its input first and raises one of these, so a notebook or
the dashboard shows one sentence instead of a traceback from deep inside PyTorch. They derive
from ``ValueError`` (and ``IndexError`` for indices) so ordinary ``except`` clauses still work.
"""

from __future__ import annotations

__all__ = [
    "HeadIndexError",
    "InspectError",
    "InputTextError",
    "ModelSourceError",
    "NoCheckpointsError",
    "UnsupportedModelError",
]


class InspectError(ValueError):
    """Base class of every error raised on bad input by :mod:`minibert.inspect`."""


class ModelSourceError(InspectError):
    """The model source is not something we can load: a missing path, a folder that is not a
    BERT, a checkpoint still being written, a step the run does not have."""


class NoCheckpointsError(ModelSourceError):
    """The run has no complete checkpoint yet (``checkpoints/step-*/`` is empty)."""


class InputTextError(InspectError):
    """The text is unusable: empty, only whitespace, or missing a token the function needs."""


class HeadIndexError(InspectError, IndexError):
    """A layer or head index outside the model (e.g. layer 6 of a 6-layer model)."""


class UnsupportedModelError(InspectError):
    """The model lacks what the function needs (e.g. fill-mask on an encoder with no MLM head)."""
