"""Task heads on top of the encoder, and their losses.

* :class:`BertForPreTraining`: masked language model + next sentence prediction, the two
  pre-training tasks of Devlin et al. (2019), Section 3.1 (Tasks #1 and #2);
* :class:`BertForMaskedLM`: the MLM task alone (e.g. without NSP, as RoBERTa argued for);
* :class:`BertForSequenceClassification` and :class:`BertForTokenClassification`: the
  fine-tuning set-ups of Section 4 (a linear layer on [CLS] or on every token).

The MLM output layer reuses the input word embeddings as its weights (weight tying, Press & Wolf
2017, as in the BERT code) plus its own bias. Vocabulary logits are the most expensive step of
pre-training a small model, so the MLM heads compute them only at ``masked_positions`` when
those are passed; without them the logits are (B, T, V), in training and in evaluation alike
(see :meth:`_BertWithMaskedLM._encode_and_predict`). The losses are the reference functions of
:mod:`minibert.functional`.

Shapes in comments: B batch, T sequence length, H hidden size, V vocabulary size, M masked
positions per row, C number of labels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from minibert.activations import get_activation
from minibert.config import BertConfig
from minibert.constants import IGNORE_INDEX
from minibert.functional import mlm_loss, nsp_loss, pretraining_loss
from minibert.model import BertModel, BertPreTrainedModel, check_positions, is_compiling
from minibert.outputs import (
    BertForPreTrainingOutput,
    BertModelOutput,
    MaskedLMOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
)
from minibert.sparse import gather_positions


class MaskedLMHead(nn.Module):
    """transform (dense -> act -> LayerNorm), then logits against the tied word embeddings.

    The decoder weight is not a parameter of this module: :meth:`forward` takes the word
    embedding matrix, so the state dict holds it once and the two can never drift apart.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.act = get_activation(config.hidden_act)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))  # output-only bias, one per token

    def forward(self, hidden_states: torch.Tensor, word_embeddings: torch.Tensor) -> torch.Tensor:
        hidden_states = self.norm(self.act(self.transform(hidden_states)))  # (..., H)
        return F.linear(hidden_states, word_embeddings, self.bias)  # (..., V)


class _BertWithMaskedLM(BertPreTrainedModel):
    """What the two masked-LM models share: the encoder, the tied MLM head and its loss."""

    bert: BertModel
    mlm: MaskedLMHead

    def _encode_and_predict(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        token_type_ids: torch.Tensor | None,
        labels: torch.Tensor | None,
        masked_positions: torch.Tensor | None,
        head_mask: torch.Tensor | None,
        output_attentions: bool,
        output_hidden_states: bool,
        sparse_last_layer: bool,
    ) -> tuple[BertModelOutput, torch.Tensor, torch.Tensor | None]:
        """Encoder, MLM logits and mean cross-entropy (Devlin et al. 2019, 3.1, Task #1).

        Which positions get vocabulary logits, whatever the train/eval mode:

        * ``masked_positions`` None: every position, logits (B, T, V), as in `transformers`;
          the loss is :func:`~minibert.functional.mlm_loss` over ``labels != -100``.
        * ``masked_positions`` (B, M): exactly those, logits (B, M, V). Rows with fewer than M
          masked tokens are padded with position 0 ([CLS], whose label is -100), so shapes stay
          static; the targets are ``labels.gather(1, masked_positions)`` and the loss is the
          same number as in the first case.

        ``sparse_last_layer=True`` (needs ``masked_positions``) also runs the last encoder layer
        only at those positions, plus [CLS] for the pooler (:mod:`minibert.sparse`): the same
        logits, loss and gradients for less work. Off by default; the trainer turns it on.

        Returns (encoder output, logits, loss or None).
        """
        if labels is not None:
            _check_token_labels(labels, input_ids.shape, self.config.vocab_size, "labels")
        if masked_positions is not None:
            check_positions(masked_positions, input_ids, "masked_positions")
        elif sparse_last_layer:
            raise ValueError(
                "sparse_last_layer=True computes the last layer only at masked_positions; pass "
                "masked_positions (B, M), e.g. minibert.functional.positions_from_labels(labels)."
            )
        with_pooler = self.bert.pooler is not None
        output_positions = None  # (B, [1 +] M) rows the last layer computes, when sparse
        if sparse_last_layer:
            output_positions = masked_positions  # (B, M)
            if with_pooler:  # the pooler reads the first listed position: make it [CLS]
                cls = masked_positions.new_zeros(masked_positions.shape[0], 1)  # (B, 1)
                output_positions = torch.cat([cls, masked_positions], dim=1)  # (B, 1 + M)
        encoded = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            output_positions=output_positions,
        )
        sequence = encoded.last_hidden_state  # (B, T, H), or (B, [1 +] M, H) when sparse
        targets = labels  # (B, T) or None
        if masked_positions is not None:
            if sparse_last_layer:
                sequence = sequence[:, 1:] if with_pooler else sequence  # (B, M, H)
            else:
                sequence = gather_positions(sequence, masked_positions)  # (B, M, H)
            if labels is not None:
                targets = labels.gather(1, masked_positions)  # (B, M)
        logits = self.mlm(sequence, self.bert.embeddings.word.weight)  # (B, T or M, V)
        loss = None if targets is None else mlm_loss(logits, targets)  # mean over labelled
        return encoded, logits, loss


class BertForPreTraining(_BertWithMaskedLM):
    """BERT with both pre-training heads: masked LM and next sentence prediction (Section 3.1).

    NSP reads the pooled [CLS] vector: label 0 = sentence B follows A, 1 = B is random.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=True)
        self.mlm = MaskedLMHead(config)
        self.nsp = nn.Linear(config.hidden_size, 2)
        self.mlm.apply(self._init_module)
        self.nsp.apply(self._init_module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        next_sentence_label: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        masked_positions: torch.Tensor | None = None,
        sparse_last_layer: bool = False,
    ) -> BertForPreTrainingOutput:
        """``labels`` (B, T): target ids at masked positions, -100 elsewhere.
        ``next_sentence_label`` (B,): 0 or 1. ``masked_positions`` (B, M) and
        ``sparse_last_layer``: see :meth:`_BertWithMaskedLM._encode_and_predict` (logits
        (B, M, V) with them, (B, T, V) without). Other arguments as in
        :meth:`BertModel.forward`."""
        encoded, prediction_logits, masked_lm_loss = self._encode_and_predict(
            input_ids,
            attention_mask,
            token_type_ids,
            labels,
            masked_positions,
            head_mask,
            output_attentions,
            output_hidden_states,
            sparse_last_layer,
        )
        seq_relationship_logits = self.nsp(encoded.pooler_output)  # (B, 2)
        next_sentence_loss = None
        if next_sentence_label is not None:
            _check_class_labels(next_sentence_label, input_ids.shape[0], 2, "next_sentence_label")
            next_sentence_loss = nsp_loss(seq_relationship_logits, next_sentence_label)
        if masked_lm_loss is not None and next_sentence_loss is not None:
            loss = pretraining_loss(masked_lm_loss, next_sentence_loss)  # sum of the two means
        else:
            loss = masked_lm_loss if masked_lm_loss is not None else next_sentence_loss
        return BertForPreTrainingOutput(
            loss=loss,
            mlm_loss=masked_lm_loss,
            nsp_loss=next_sentence_loss,
            prediction_logits=prediction_logits,
            seq_relationship_logits=seq_relationship_logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class BertForMaskedLM(_BertWithMaskedLM):
    """BERT with the masked-LM head only (no pooler, no NSP), like `transformers.BertForMaskedLM`."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.mlm = MaskedLMHead(config)
        self.mlm.apply(self._init_module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        masked_positions: torch.Tensor | None = None,
        sparse_last_layer: bool = False,
    ) -> MaskedLMOutput:
        """Arguments as in :meth:`BertForPreTraining.forward`; ``logits`` shaped as there."""
        encoded, logits, loss = self._encode_and_predict(
            input_ids,
            attention_mask,
            token_type_ids,
            labels,
            masked_positions,
            head_mask,
            output_attentions,
            output_hidden_states,
            sparse_last_layer,
        )
        return MaskedLMOutput(
            loss=loss,
            logits=logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


class BertForSequenceClassification(BertPreTrainedModel):
    """A linear classifier on the pooled [CLS] vector (Devlin et al. 2019, Section 4.1).

    The loss follows ``config.problem_type``, or when that is None the labels: one label
    (``num_labels == 1``) is regression (MSE), integer labels are single-label classification
    (cross-entropy), float labels (B, C) are multi-label (binary cross-entropy), as in
    `transformers`.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.classifier.apply(self._init_module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> SequenceClassifierOutput:
        """``labels``: (B,) class ids, (B,) floats for regression, or (B, C) multi-label 0/1."""
        encoded = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(encoded.pooler_output))  # (B, C)
        loss = None if labels is None else self._loss(logits, labels)
        return SequenceClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        num_labels = self.config.num_labels
        problem = self.config.problem_type
        if problem is None:
            if num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.int64, torch.int32):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            if num_labels == 1:
                return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
            return F.mse_loss(logits, labels.to(logits.dtype))
        if problem == "single_label_classification":
            _check_class_labels(labels, logits.shape[0], num_labels, "labels")
            return F.cross_entropy(logits.reshape(-1, num_labels), labels.reshape(-1))
        if labels.shape != logits.shape:
            raise ValueError(
                f"multi-label classification needs labels of shape {tuple(logits.shape)} "
                f"(batch, num_labels) with 0/1 floats, got {tuple(labels.shape)}; for one class "
                "per example pass integer (torch.long) labels."
            )
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


class BertForTokenClassification(BertPreTrainedModel):
    """A linear classifier on every token's final hidden state (Devlin et al. 2019, Section 4.3,
    e.g. named-entity tags); label -100 marks positions that take no part in the loss."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = nn.Dropout(_classifier_dropout(config))
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.classifier.apply(self._init_module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
    ) -> TokenClassifierOutput:
        """``labels`` (B, T): tag ids, -100 for positions to ignore (padding, sub-words)."""
        encoded = self.bert(
            input_ids,
            attention_mask=attention_mask,
            token_type_ids=token_type_ids,
            head_mask=head_mask,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
        )
        logits = self.classifier(self.dropout(encoded.last_hidden_state))  # (B, T, C)
        loss = None
        if labels is not None:
            num_labels = self.config.num_labels
            _check_token_labels(labels, input_ids.shape, num_labels, "labels")
            loss = F.cross_entropy(
                logits.reshape(-1, num_labels), labels.reshape(-1), ignore_index=IGNORE_INDEX
            )  # mean over tagged tokens
        return TokenClassifierOutput(
            loss=loss,
            logits=logits,
            hidden_states=encoded.hidden_states,
            attentions=encoded.attentions,
        )


# -- helpers ---------------------------------------------------------------------------------


def _classifier_dropout(config: BertConfig) -> float:
    """Fine-tuning dropout: ``classifier_dropout`` if set, else the hidden dropout (as in HF)."""
    if config.classifier_dropout is not None:
        return config.classifier_dropout
    return config.hidden_dropout_prob


def _check_token_labels(
    labels: torch.Tensor, shape: tuple[int, ...] | torch.Size, num_classes: int, name: str
) -> None:
    if labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be integer class ids (torch.long), got {labels.dtype}.")
    if tuple(labels.shape) != tuple(shape):
        raise ValueError(
            f"{name} must have shape {tuple(shape)} like input_ids, got {tuple(labels.shape)}."
        )
    if is_compiling():
        return
    real = labels[labels != IGNORE_INDEX]
    if real.numel() and (int(real.min()) < 0 or int(real.max()) >= num_classes):
        raise ValueError(
            f"{name} must be in [0, {num_classes}) or {IGNORE_INDEX} (ignored), found values "
            f"from {int(real.min())} to {int(real.max())}."
        )


def _check_class_labels(labels: torch.Tensor, batch: int, num_classes: int, name: str) -> None:
    if labels.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be integer class ids (torch.long), got {labels.dtype}.")
    if labels.numel() != batch:
        raise ValueError(
            f"{name} must hold one class id per example ({batch}), got shape {tuple(labels.shape)}."
        )
    if is_compiling():
        return
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(
            f"{name} must be in [0, {num_classes}), found values from {int(labels.min())} to "
            f"{int(labels.max())}."
        )
