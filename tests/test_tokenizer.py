"""WordPiece training, the saved folder, special-token ids and the held-out report."""

from __future__ import annotations

import json
import pathlib

import gensim
import pytest

from minibert.data.tokenizer import (
    BERT_SPECIAL_TOKENS,
    TokenizerReport,
    load_tokenizer,
    save_tokenizer,
    special_token_ids,
    tokenizer_report,
    train_wordpiece,
)

LEE = pathlib.Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"


@pytest.fixture(scope="module")
def lee_texts() -> list[str]:
    return [line for line in LEE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def train_texts(lee_texts):
    return lee_texts[:240]


@pytest.fixture(scope="module")
def heldout_texts(lee_texts):
    return lee_texts[240:]


@pytest.fixture(scope="module")
def tokenizer(train_texts):
    return train_wordpiece(train_texts, vocab_size=2000)


def test_vocabulary_size_and_special_ids(tokenizer):
    assert len(tokenizer) == 2000
    assert special_token_ids(tokenizer) == {
        "[PAD]": 0,
        "[UNK]": 1,
        "[CLS]": 2,
        "[SEP]": 3,
        "[MASK]": 4,
    }
    assert tokenizer.pad_token_id == 0  # BertConfig.pad_token_id
    assert (
        tokenizer.unk_token,
        tokenizer.cls_token,
        tokenizer.sep_token,
        tokenizer.mask_token,
    ) == (
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
    )
    assert tokenizer.model_max_length == 512
    vocab = tokenizer.get_vocab()
    assert any(tok.startswith("##") for tok in vocab)  # WordPiece continuation pieces


def test_behaves_like_bert(tokenizer):
    enc = tokenizer("The Prime Minister spoke.", "Then he left.")
    ids, types = enc["input_ids"], enc["token_type_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens.count("[SEP]") == 2
    first_sep = tokens.index("[SEP]")
    assert types == [0] * (first_sep + 1) + [1] * (len(ids) - first_sep - 1)
    assert "prime" in tokens  # lower-cased
    mask = tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
    assert mask == [int(t in ("[CLS]", "[SEP]")) for t in tokens]
    assert (
        tokenizer.decode(ids, skip_special_tokens=True) == "the prime minister spoke. then he left."
    )
    # Accents are stripped when lower-casing, as in BERT uncased.
    assert tokenizer.tokenize("Café") == tokenizer.tokenize("cafe")


def test_cased_tokenizer_keeps_case(train_texts):
    cased = train_wordpiece(train_texts[:80], vocab_size=800, lowercase=False)
    assert "The" in cased.tokenize("The the")
    assert cased.tokenize("The the")[0] != cased.tokenize("The the")[-1]


def test_save_and_load_round_trip(tokenizer, heldout_texts, tmp_path):
    from transformers import AutoTokenizer

    folder = save_tokenizer(tokenizer, tmp_path / "tok")
    names = {p.name for p in folder.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "vocab.txt"} <= names
    vocab_lines = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert len(vocab_lines) == 2000 and vocab_lines[:5] == list(BERT_SPECIAL_TOKENS)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["mask_token"] == "[MASK]" and config["pad_token"] == "[PAD]"

    for loaded in (AutoTokenizer.from_pretrained(str(folder)), load_tokenizer(folder)):
        assert len(loaded) == 2000  # not 5: the transformers 5 pitfall
        assert loaded.get_vocab() == tokenizer.get_vocab()
        assert special_token_ids(loaded) == special_token_ids(tokenizer)
        for text in heldout_texts[:10]:
            assert loaded(text, "a second segment") == tokenizer(text, "a second segment")


def test_vocab_txt_alone_rebuilds_the_same_tokenizer(tokenizer, heldout_texts, tmp_path):
    folder = save_tokenizer(tokenizer, tmp_path / "tok")
    (folder / "tokenizer.json").unlink()
    loaded = load_tokenizer(folder)
    assert len(loaded) == 2000
    for text in heldout_texts[:10]:
        assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tokenizer(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer(tmp_path / "empty")


@pytest.mark.parametrize("vocab_size", [0, 3, 5])
def test_vocab_too_small_for_special_tokens(vocab_size):
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece(["some text here"], vocab_size=vocab_size)


def test_bad_special_tokens_and_inputs():
    with pytest.raises(ValueError, match=r"\[PAD\]' must come first"):
        train_wordpiece(["a b"], special_tokens=("[UNK]", "[PAD]", "[CLS]", "[SEP]", "[MASK]"))
    with pytest.raises(ValueError, match="lacks"):
        train_wordpiece(["a b"], special_tokens=("[PAD]", "[UNK]", "[CLS]", "[SEP]"))
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece([], vocab_size=100)
    with pytest.raises(ValueError, match="too small"):
        train_wordpiece(["", "   "], vocab_size=100)
    with pytest.raises(TypeError, match="single string"):
        train_wordpiece("one long string", vocab_size=100)


def test_extra_special_tokens_follow_the_five(train_texts):
    tok = train_wordpiece(
        train_texts[:40], vocab_size=500, special_tokens=(*BERT_SPECIAL_TOKENS, "[NUM]")
    )
    assert tok.convert_tokens_to_ids("[NUM]") == 5
    assert tok.tokenize("[NUM] apples")[0] == "[NUM]"


def test_report_counts_are_exact(tokenizer):
    texts = ["the the government", "zzqqxxj government ."]
    report = tokenizer_report(tokenizer, texts)
    assert isinstance(report, TokenizerReport)
    assert report.n_texts == 2
    assert report.n_words == 6 and report.n_word_types == 4
    pieces = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts)
    assert report.n_pieces == pieces
    assert report.tokens_per_word == pytest.approx(pieces / 6)
    # "the" x2, "government" x2 and "." are single entries; "zzqqxxj" is split.
    assert report.word_coverage == pytest.approx(5 / 6)
    assert report.type_coverage == pytest.approx(3 / 4)
    assert report.unk_word_rate == 0.0


def test_report_on_heldout_text_is_sane(tokenizer, train_texts, heldout_texts):
    heldout = tokenizer_report(tokenizer, heldout_texts)
    seen = tokenizer_report(tokenizer, train_texts)
    assert heldout.n_words > 10_000
    assert 0.6 < heldout.word_coverage < 1.0
    assert heldout.type_coverage < heldout.word_coverage  # rare words are the ones split
    assert 1.0 < heldout.tokens_per_word < 2.0
    assert heldout.unk_word_rate < 0.01
    # The vocabulary was fit on the seen text, so it covers it better.
    assert seen.word_coverage > heldout.word_coverage
    assert seen.tokens_per_word < heldout.tokens_per_word
    text = str(heldout)
    assert "tokens per word" in text and f"{heldout.tokens_per_word:.3f}" in text
    assert heldout.to_dict()["n_words"] == heldout.n_words
    json.dumps(heldout.to_dict())

    # A larger vocabulary splits held-out words less.
    larger = train_wordpiece(train_texts, vocab_size=6000)
    assert tokenizer_report(larger, heldout_texts).tokens_per_word < heldout.tokens_per_word


def test_unknown_characters_become_unk(tokenizer):
    report = tokenizer_report(tokenizer, ["plain words and \u4e2d\u6587 \u2603"])
    assert report.unk_word_rate > 0
    assert tokenizer.tokenize("\u2603") == ["[UNK]"]


def test_report_rejects_empty_input(tokenizer):
    with pytest.raises(ValueError, match="no words"):
        tokenizer_report(tokenizer, ["", "  "])


def test_saved_folder_serves_the_fill_mask_pipeline(tokenizer, tmp_path):
    """The folder, next to any BERT MLM (here a tiny random transformers one), is what
    ``pipeline("fill-mask")`` needs: the mask token and the BERT tokenizer class."""
    from transformers import BertConfig, BertForMaskedLM, pipeline

    folder = save_tokenizer(tokenizer, tmp_path / "model")
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        pad_token_id=tokenizer.pad_token_id,
    )
    BertForMaskedLM(config).save_pretrained(str(folder))
    fill = pipeline("fill-mask", model=str(folder), tokenizer=str(folder), top_k=3)
    predictions = fill("the government [MASK] today.")
    assert len(predictions) == 3
    assert all(p["sequence"].startswith("the government") for p in predictions)
