"""What the models return: small dataclasses with the field names `transformers` uses.

Fields that were not asked for (losses without labels, hidden states, attentions) are None.
``hidden_states`` is a tuple of num_hidden_layers + 1 tensors (B, T, H): the embedding output
and then each layer's output. ``attentions`` is a tuple with one (B, nh, T, T) tensor per layer,
the format bertviz's ``head_view``/``model_view`` take.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class BertModelOutput:
    """Output of :class:`minibert.BertModel`.

    ``last_hidden_state`` (B, T, H); ``pooler_output`` (B, H) is tanh(W h_[CLS] + b), the
    sentence vector of Devlin et al. (2019), Section 3 (None when built without a pooler).
    """

    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class BertForPreTrainingOutput:
    """Output of :class:`minibert.BertForPreTraining` (MLM + NSP, Devlin et al. 2019, 3.1).

    ``prediction_logits`` is (B, T, V) for every position, exactly like `transformers`, unless
    ``masked_positions`` (B, M) was passed: then (B, M, V), the logits at those positions only.
    The train/eval mode never changes the shape.

    ``loss`` is ``mlm_loss + nsp_loss`` when both labels are given, else whichever one is
    (`transformers` returns None unless both are given). ``seq_relationship_logits`` is (B, 2):
    index 0 = "B follows A", 1 = "B is random".
    """

    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    prediction_logits: torch.Tensor | None = None
    seq_relationship_logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class MaskedLMOutput:
    """Output of :class:`minibert.BertForMaskedLM`; ``logits`` shaped as ``prediction_logits``
    of :class:`BertForPreTrainingOutput`: (B, T, V), or (B, M, V) with ``masked_positions``."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class SequenceClassifierOutput:
    """Output of :class:`minibert.BertForSequenceClassification`; ``logits`` (B, num_labels)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class TokenClassifierOutput:
    """Output of :class:`minibert.BertForTokenClassification`; ``logits`` (B, T, num_labels)."""

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None
