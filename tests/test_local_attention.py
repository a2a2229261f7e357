"""Offset-head initialisation (minibert/init.py): heads that start local."""

from __future__ import annotations

import pytest
import torch

from minibert.config import BertConfig
from minibert.heads import BertForMaskedLM
from minibert.init import (
    local_attention_init_,
    offset_rotation,
    subspace_sinusoids,
)
from minibert.train.pretrain import build_pretrain_config
from minibert.train.settings import InitConfig


def _tiny(**kwargs) -> BertConfig:
    return BertConfig.preset("tiny", vocab_size=300, initializer_range=0.05, **kwargs)


def test_rotation_shifts_every_position_by_the_offset():
    table, rates = subspace_sinusoids(80, 16)  # (P, 16), (8,)
    for offset in (-3, -1, 1, 2):
        rotation = offset_rotation(rates, offset)
        shifted = table[10:70] @ rotation.T  # row p: R @ P[p]
        torch.testing.assert_close(shifted, table[10 - offset : 70 - offset])
        # A rotation: lengths do not change.
        torch.testing.assert_close(rotation @ rotation.T, torch.eye(16, dtype=torch.float64))


def test_subspace_sinusoids_rates_span_the_documented_range():
    _, rates = subspace_sinusoids(4, 64)
    assert rates.max().item() == pytest.approx(3.0)
    assert rates.min().item() == pytest.approx(0.1)
    with pytest.raises(ValueError, match="even"):
        subspace_sinusoids(4, 7)


@pytest.mark.parametrize("offsets", [(-1, 1), (-1, 1, -2, 2), (2,)])
def test_offset_heads_attend_to_their_offset_at_step_zero(offsets):
    config = _tiny()
    torch.manual_seed(0)
    model = local_attention_init_(BertForMaskedLM(config).eval(), offsets, scale=1.5)
    ids = torch.randint(5, config.vocab_size, (4, 64))  # (B, T) random tokens
    with torch.no_grad():
        attentions = model(input_ids=ids, output_attentions=True).attentions  # L x (B, h, T, T)
    for index, offset in enumerate(offsets):
        layer, head = divmod(index, config.num_attention_heads)
        weights = attentions[layer][:, head]  # (B, T, T)
        on_target = torch.diagonal(weights, offset=offset, dim1=1, dim2=2)  # (B, T - |offset|)
        # Layer 0 sees the positions exactly; deeper layers through one residual update.
        assert on_target.mean().item() > (0.9 if layer == 0 else 0.5)


def test_untouched_heads_and_layout_stay_berts():
    config = _tiny()
    torch.manual_seed(0)
    plain = BertForMaskedLM(config)
    torch.manual_seed(0)
    model = local_attention_init_(BertForMaskedLM(config), (-1,))
    assert model.state_dict().keys() == plain.state_dict().keys()
    head_size = config.hidden_size // config.num_attention_heads
    mine, theirs = model.bert.layers[0].attention, plain.bert.layers[0].attention
    # Head 1 of layer 0 and everything in layer 1 keep their random start.
    torch.testing.assert_close(mine.query.weight[head_size:], theirs.query.weight[head_size:])
    torch.testing.assert_close(
        model.bert.layers[1].attention.key.weight, plain.bert.layers[1].attention.key.weight
    )
    torch.testing.assert_close(mine.value.weight, theirs.value.weight)
    # Words leave the position subspace (the last head_size dimensions) to the positions.
    words = model.bert.embeddings.word.weight
    assert not words[:, -head_size:].any()
    torch.testing.assert_close(words[:, :-head_size], plain.bert.embeddings.word.weight[:, :-head_size])
    assert not model.bert.embeddings.position.weight[:, :-head_size].any()
    assert model.bert.embeddings.position.weight.std().item() > 0


def test_bad_offsets_and_scales_are_refused():
    model = BertForMaskedLM(_tiny())
    with pytest.raises(ValueError, match="at most one offset per head"):
        local_attention_init_(model, (1, -1, 2, -2, 3))
    with pytest.raises(ValueError, match="positive"):
        local_attention_init_(model, (1,), scale=0.0)
    with pytest.raises(ValueError, match="positive"):
        InitConfig(local_attention_scale=-1.0)


def test_offsets_are_a_command_line_override():
    config = build_pretrain_config({"init.local_attention_offsets": "-1,1"})
    assert config.init.local_attention_offsets == (-1, 1)
    config = build_pretrain_config({"local_attention_offsets": "[]"})
    assert config.init.local_attention_offsets == ()


def test_the_recipe_starts_layer_zero_with_previous_and_next_token_heads():
    from minibert.data.tokenizer import train_wordpiece
    from minibert.train.pretrain import PretrainingTask

    tokenizer = train_wordpiece(["the cat sat on the mat", "a dog ran"] * 20, vocab_size=120)
    config = build_pretrain_config({"model.vocab_size": len(tokenizer)})
    assert config.init.local_attention_offsets == (-1, 1)
    torch.manual_seed(0)
    model = PretrainingTask(config, tokenizer, [], []).model.eval()
    ids = torch.randint(5, len(tokenizer), (2, 32))  # (B, T)
    with torch.no_grad():
        weights = model(input_ids=ids, output_attentions=True).attentions[0]  # (B, h, T, T)
    previous = torch.diagonal(weights[:, 0], offset=-1, dim1=1, dim2=2)  # (B, T-1)
    following = torch.diagonal(weights[:, 1], offset=1, dim1=1, dim2=2)  # (B, T-1)
    assert previous.mean().item() > 0.9 and following.mean().item() > 0.9


def test_pretrain_config_refuses_offsets_the_model_cannot_hold():
    with pytest.raises(ValueError, match="at most one offset per head"):
        build_pretrain_config({"local_attention_offsets": "1,-1,2,-2,3"})  # tiny: 2 x 2 heads
    with pytest.raises(ValueError, match="even head size"):
        build_pretrain_config({"model.hidden_size": 126, "model.num_attention_heads": 2})
    with pytest.raises(ValueError, match="beyond an input"):
        build_pretrain_config({"local_attention_offsets": "-1,200"})
    # The same model without offset heads is fine.
    build_pretrain_config(
        {"model.hidden_size": 126, "model.num_attention_heads": 2, "local_attention_offsets": []}
    )
