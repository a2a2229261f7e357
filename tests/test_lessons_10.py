"""Lesson 10 (parameter-efficient fine-tuning): LoRA and adapters put into a BERT keep its
function at step 0, train only what they should, merge exactly; the shared loop trains what
it is given and nothing else.

The generic exercise tests (solution passes, blank is "not filled in", every named mistake is
named) are in tests/test_lessons_infra.py.
"""

from __future__ import annotations

import torch

from minibert.config import BertConfig
from minibert.data.tasks import SequenceExample
from minibert.heads import BertForSequenceClassification
from minibert.lessons import lesson10
from minibert.train.finetuning.data import EncodedSplit

LABELS = ["a", "b", "c"]


def tiny_classifier(seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig.preset("tiny", vocab_size=64, num_labels=len(LABELS))
    return BertForSequenceClassification(config).eval()


def toy_splits(n: int = 48) -> lesson10.TaskSplits:
    """A learnable toy task: the label is which of three token ids the text is made of."""
    g = torch.Generator().manual_seed(0)
    examples, ids, types, labels = [], [], [], []
    for i in range(n):
        label = i % 3
        length = int(torch.randint(4, 10, (1,), generator=g))
        row = [2] + [10 + label] * length + [3]
        examples.append(SequenceExample(text=f"x{i}", label=label))
        ids.append(row)
        types.append([0] * len(row))
        labels.append(label)
    split = EncodedSplit("train", examples, ids, types, labels)
    return lesson10.TaskSplits("toy", LABELS, split, split, pad_id=0)


def inputs():
    return {"input_ids": torch.tensor([[2, 11, 12, 13, 3]]), "attention_mask": torch.ones(1, 5)}


def test_lora_in_a_bert_keeps_step_0_and_counts():
    model = tiny_classifier()
    with torch.no_grad():
        before = model(**inputs()).logits
    lesson10.add_lora(model, lesson10.solution_lora_linear, r=2, alpha=4.0)
    with torch.no_grad():
        assert torch.allclose(model(**inputs()).logits, before, atol=1e-6)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all("lora_" in n or n.startswith(lesson10.HEAD_PREFIXES) for n in trainable)
    config = model.config
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    assert lora == lesson10.lora_parameter_formula(
        config.num_hidden_layers, 2, 2, config.hidden_size, config.hidden_size
    )


def test_adapters_in_a_bert_keep_step_0_and_count():
    model = tiny_classifier()
    with torch.no_grad():
        before = model(**inputs()).logits
    lesson10.add_adapters(model, lesson10.solution_adapter, bottleneck=4)
    with torch.no_grad():
        assert torch.allclose(model(**inputs()).logits, before, atol=1e-6)
    names = [n for n, _ in model.named_parameters()]
    adapter = sum(
        p.numel() for n, p in model.named_parameters() if ".down.1." in n or ".output.1." in n
    )
    assert adapter == lesson10.adapter_parameter_formula(
        model.config.num_hidden_layers, model.config.hidden_size, 4
    ), names


def test_training_moves_only_trainable_parameters_and_lora_merges_exactly():
    model = lesson10.add_lora(tiny_classifier(), lesson10.solution_lora_linear, r=2, alpha=4.0)
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    result = lesson10.train_classifier(
        model, toy_splits(), method="lora", steps=4, lr=1e-2, batch_size=8, progress=False
    )
    assert result.steps == 4 and len(result.losses) == 4
    assert result.trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(p, frozen[name]), f"{name} changed but is frozen"
    assert any(
        float(layer.attention.query.lora_B.detach().abs().max()) > 0 for layer in model.bert.layers
    )
    with torch.no_grad():
        x = torch.randn(3, model.config.hidden_size)
        for layer in model.bert.layers:
            wrapped = layer.attention.value
            merged = x @ wrapped.merged_weight().T + wrapped.base.bias
            assert torch.allclose(wrapped(x), merged, atol=1e-5)


def test_full_fine_tuning_learns_the_toy_task():
    model = tiny_classifier()
    result = lesson10.train_classifier(
        model, toy_splits(), method="full", steps=30, lr=2e-3, batch_size=16, progress=False
    )
    assert result.trainable == result.total
    assert result.losses[-1] < result.losses[0]
    assert result.accuracy > 0.9, result.row()
    assert "full" in lesson10.results_table([result])


def test_head_only_freezes_the_encoder():
    model = lesson10.freeze_all_but_head(tiny_classifier())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.startswith(lesson10.HEAD_PREFIXES) for n in trainable)
