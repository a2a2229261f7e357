"""The pretraining recipe's mechanisms (issue 5): sinusoidal position init, fixed eval masking."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from minibert.config import BertConfig
from minibert.heads import BertForMaskedLM
from minibert.init import sinusoidal_position_init_
from minibert.train.pretrain import build_pretrain_config
from minibert.train.settings import InitConfig, ObjectiveConfig, PretrainConfig


@pytest.fixture(scope="module")
def tiny_tokenizer():
    from minibert.data.tokenizer import train_wordpiece

    texts = ["the cat sat on the mat", "a dog ran in the park", "birds fly over the hills"] * 20
    return train_wordpiece(texts, vocab_size=120, min_frequency=1)


def test_sinusoidal_table_matches_vaswani_formula_and_requested_std():
    embedding = nn.Embedding(64, 16)
    sinusoidal_position_init_(embedding, std=0.05)
    table = embedding.weight.detach().double()  # (P, H)
    assert table.std().item() == pytest.approx(0.05, rel=1e-5)
    scale = table[0, 1].item()  # cos(0) = 1 times the scale
    pos, i = 7, 3
    angle = pos / 10000 ** (2 * i / 16)
    assert table[pos, 2 * i].item() == pytest.approx(scale * math.sin(angle), rel=1e-5)
    assert table[pos, 2 * i + 1].item() == pytest.approx(scale * math.cos(angle), rel=1e-5)
    # Dot products depend on the offset only (the reason for the init): <p, p+k> is the same
    # for every p.
    dots = [(table[p] @ table[p + 5]).item() for p in (0, 10, 40)]
    assert dots == pytest.approx([dots[0]] * 3, rel=1e-6)
    assert embedding.weight.requires_grad  # still a learned table


def test_sinusoidal_init_odd_hidden_size_and_bad_std():
    embedding = nn.Embedding(10, 7)
    sinusoidal_position_init_(embedding)
    assert torch.isfinite(embedding.weight).all()
    with pytest.raises(ValueError, match="positive"):
        sinusoidal_position_init_(embedding, std=0.0)


def test_init_config_validates_and_is_an_override():
    with pytest.raises(ValueError, match="sinusoidal"):
        InitConfig(position_init="learned-ish")
    config = build_pretrain_config({"init.position_init": "normal", "position_init_std": 0.1})
    assert config.init == InitConfig(position_init="normal", position_init_std=0.1)
    assert build_pretrain_config({"preset": "mini"}).init == PretrainConfig().init


def test_pretraining_task_applies_position_init_and_keeps_state_dict_layout(tiny_tokenizer):
    from minibert.train.pretrain import PretrainingTask

    base = build_pretrain_config(
        {"preset": "tiny", "nsp": False, "position_init": "normal", "local_attention_offsets": []}
    )
    base = build_pretrain_config({"model.vocab_size": len(tiny_tokenizer)}, base)
    sinus = build_pretrain_config({"position_init": "sinusoidal"}, base)
    torch.manual_seed(0)
    plain = PretrainingTask(base, tiny_tokenizer, [], []).model
    torch.manual_seed(0)
    task = PretrainingTask(sinus, tiny_tokenizer, [], [])
    model = task.model
    assert isinstance(model, BertForMaskedLM)
    assert plain.state_dict().keys() == model.state_dict().keys()
    expected = nn.Embedding(*model.bert.embeddings.position.weight.shape)
    sinusoidal_position_init_(expected, std=sinus.init.position_init_std)
    torch.testing.assert_close(model.bert.embeddings.position.weight, expected.weight)
    # Everything else is the plain init with the same seed.
    torch.testing.assert_close(model.bert.embeddings.word.weight, plain.bert.embeddings.word.weight)


def test_eval_masking_stays_bert_standard_when_training_masks_more(tiny_tokenizer):
    from minibert.train.pretrain import PretrainingTask

    config = build_pretrain_config(
        {"mlm_probability": 0.4, "max_predictions": 52, "model.vocab_size": len(tiny_tokenizer)}
    )
    task = PretrainingTask(config, tiny_tokenizer, [], [])
    assert task.collator.mlm_probability == 0.4
    assert task.eval_collator.mlm_probability == ObjectiveConfig().eval_mlm_probability == 0.15
    assert task.eval_collator.max_predictions == 20


def test_unigram_log_prior_counts_inputs_and_leaves_specials_at_the_floor():
    from minibert.data.examples import PretrainingExample
    from minibert.init import unigram_log_prior

    examples = [
        PretrainingExample(input_ids=[2, 7, 7, 9, 3], token_type_ids=[0] * 5),
        PretrainingExample(input_ids=[2, 7, 3], token_type_ids=[0] * 3),
    ]
    prior = unigram_log_prior(examples, vocab_size=10, never_targets=[0, 2, 3, 4])
    probs = prior.exp()
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    # counts with add-one smoothing: token 7 -> 3 + 1, token 9 -> 1 + 1, specials -> 1.
    assert (probs[7] / probs[9]).item() == pytest.approx(2.0, rel=1e-5)
    assert probs[2].item() == pytest.approx(probs[5].item()) == pytest.approx(probs[0].item())


def test_pretraining_task_starts_at_the_unigram_prior(tiny_tokenizer):
    from minibert.data.examples import PretrainingExample
    from minibert.init import unigram_log_prior
    from minibert.train.pretrain import PretrainingTask

    ids = tiny_tokenizer("the cat sat on the mat")["input_ids"]
    examples = [PretrainingExample(input_ids=ids, token_type_ids=[0] * len(ids))] * 3
    config = build_pretrain_config(
        {"nsp": False, "mlm_bias_init": "unigram", "model.vocab_size": len(tiny_tokenizer)}
    )
    model = PretrainingTask(config, tiny_tokenizer, examples, []).model
    specials = [
        tiny_tokenizer.convert_tokens_to_ids(t) for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")
    ]
    expected = unigram_log_prior(examples, len(tiny_tokenizer), never_targets=specials)
    torch.testing.assert_close(model.mlm.bias.detach(), expected)
    zeros = build_pretrain_config({"mlm_bias_init": "zeros"}, config)
    assert not PretrainingTask(zeros, tiny_tokenizer, examples, []).model.mlm.bias.any()
    with pytest.raises(ValueError, match="unigram"):
        build_pretrain_config({"mlm_bias_init": "learned"})


def test_identity_query_key_init_adds_scaled_identity_only_to_query_and_key():
    from minibert.init import identity_query_key_init_

    config = BertConfig.preset("tiny", vocab_size=50)
    torch.manual_seed(0)
    plain = BertForMaskedLM(config)
    torch.manual_seed(0)
    model = identity_query_key_init_(BertForMaskedLM(config), scale=0.5)
    eye = 0.5 * torch.eye(config.hidden_size)
    for mine, theirs in zip(model.bert.layers, plain.bert.layers, strict=True):
        for name in ("query", "key"):
            got = getattr(mine.attention, name).weight
            torch.testing.assert_close(got, getattr(theirs.attention, name).weight + eye)
        torch.testing.assert_close(mine.attention.value.weight, theirs.attention.value.weight)
    assert model.state_dict().keys() == plain.state_dict().keys()
