"""Activation functions by the names HF configs use in ``hidden_act``.

BERT uses the Gaussian Error Linear Unit (Hendrycks & Gimpel 2016; Devlin et al. 2019, Section 3.1
"we use a gelu activation rather than the standard relu"). ``"gelu"`` is the exact form
x * Phi(x) with the error function; ``"gelu_new"``/``"gelu_pytorch_tanh"`` are the tanh
approximation that the original TensorFlow code and GPT-2 used. Checkpoints were trained with a
specific one, so the name must be honoured exactly to reproduce their numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F


def gelu(x: torch.Tensor) -> torch.Tensor:
    """Exact GELU: x * Phi(x), Phi the standard normal CDF (computed with erf)."""
    return F.gelu(x)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """GELU with the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return F.gelu(x, approximate="tanh")


def gelu_new(x: torch.Tensor) -> torch.Tensor:
    """The tanh approximation written out, as in the original BERT/GPT-2 code (``gelu_new``)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3.0))))


ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": gelu,
    "gelu_new": gelu_new,
    "gelu_pytorch_tanh": gelu_tanh,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name`` (a ``ValueError`` lists the valid names)."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; use one of {', '.join(ACTIVATIONS)}."
        ) from None
