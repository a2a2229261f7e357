"""Training sanity: every parameter gets a gradient, dropout only in training, one batch overfits."""

import pytest
import torch

from minibert import (
    BertConfig,
    BertForMaskedLM,
    BertForPreTraining,
    BertForSequenceClassification,
    BertForTokenClassification,
)


def tiny_config(**overrides):
    values = dict(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=16,
        num_labels=3,
    )
    values.update(overrides)
    return BertConfig(**values)


def make_batch(config, seed=0, batch_size=4, seq_len=12):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), generator=g)
    mask = torch.ones_like(ids)
    mask[-1, seq_len - 4 :] = 0
    ids[mask == 0] = config.pad_token_id
    segments = torch.zeros_like(ids)
    segments[:, seq_len // 2 :] = 1
    labels = torch.full_like(ids, -100)
    picked = torch.rand(ids.shape, generator=g) < 0.25
    picked[:, 1] = True
    picked &= mask.bool()
    labels[picked] = ids[picked]
    masked_ids = ids.clone()
    masked_ids[picked] = 4  # [MASK]
    return {
        "input_ids": masked_ids,
        "attention_mask": mask,
        "token_type_ids": segments,
        "labels": labels,
    }


def loss_for(model, batch):
    if isinstance(model, BertForPreTraining):
        return model(**batch, next_sentence_label=torch.tensor([0, 1, 0, 1])).loss
    if isinstance(model, BertForSequenceClassification):
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        return model(**inputs, labels=torch.tensor([0, 1, 2, 1])).loss
    if isinstance(model, BertForTokenClassification):
        labels = batch["labels"].clamp(min=-100) % 3
        labels[batch["attention_mask"] == 0] = -100
        return model(**{**batch, "labels": labels}).loss
    return model(**batch).loss


@pytest.mark.parametrize(
    "cls",
    [
        BertForPreTraining,
        BertForMaskedLM,
        BertForSequenceClassification,
        BertForTokenClassification,
    ],
)
def test_every_parameter_receives_a_gradient(cls):
    torch.manual_seed(0)
    config = tiny_config()
    model = cls(config).train()
    loss_for(model, make_batch(config)).backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None, f"{name} got no gradient"
        assert parameter.grad.abs().sum() > 0, f"{name} got an all-zero gradient"
    word = model.bert.embeddings.word.weight.grad
    if cls in (BertForSequenceClassification, BertForTokenClassification):
        # Only the lookup reaches the embeddings here, and padding_idx keeps [PAD] fixed.
        assert word[config.pad_token_id].abs().sum() == 0


def test_dropout_is_active_in_training_only():
    torch.manual_seed(1)
    config = tiny_config(hidden_dropout_prob=0.3, attention_probs_dropout_prob=0.3)
    model = BertForMaskedLM(config)
    batch = {k: v for k, v in make_batch(config).items() if k != "labels"}
    model.train()
    assert not torch.equal(model(**batch).logits, model(**batch).logits)
    model.eval()
    torch.testing.assert_close(model(**batch).logits, model(**batch).logits, rtol=0, atol=0)


def overfit(model, batch_loss, steps, lr):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    first = None
    for _ in range(steps):
        optimizer.zero_grad()
        loss = batch_loss()
        loss.backward()
        optimizer.step()
        first = loss.item() if first is None else first
    return first, loss.item()


def test_masked_lm_overfits_one_batch():
    torch.manual_seed(2)
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForPreTraining(config)
    batch = make_batch(config, seed=3)
    nsp = torch.tensor([0, 1, 1, 0])
    first, last = overfit(model, lambda: model(**batch, next_sentence_label=nsp).loss, 200, 3e-3)
    assert first > 4.0  # about ln(64) + ln(2) at the start
    assert last < 0.05, f"loss only fell from {first:.3f} to {last:.3f}"


def test_masked_positions_path_overfits_too():
    torch.manual_seed(4)
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForMaskedLM(config)
    batch = make_batch(config, seed=5)
    labels = batch["labels"]
    width = int((labels != -100).sum(1).max())
    positions = torch.zeros(labels.shape[0], width, dtype=torch.long)  # padded with [CLS]
    for row in range(labels.shape[0]):
        found = (labels[row] != -100).nonzero().squeeze(1)
        positions[row, : len(found)] = found
    first, last = overfit(model, lambda: model(**batch, masked_positions=positions).loss, 200, 3e-3)
    assert last < 0.05, f"loss only fell from {first:.3f} to {last:.3f}"


def test_sequence_classifier_overfits_one_batch():
    torch.manual_seed(6)
    config = tiny_config(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config)
    batch = {k: v for k, v in make_batch(config, seed=7).items() if k != "labels"}
    labels = torch.tensor([2, 0, 1, 2])
    first, last = overfit(model, lambda: model(**batch, labels=labels).loss, 100, 3e-3)
    assert first > 0.5
    assert last < 0.02, f"loss only fell from {first:.3f} to {last:.3f}"
