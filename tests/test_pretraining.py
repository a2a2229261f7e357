"""Document split, encoding, NSP pairs, packing and the masking collator (functional and
property tests; the large-sample statistics live in test_masking_statistics.py)."""

from __future__ import annotations

import pathlib
import random
import re

import gensim
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from minibert.constants import IGNORE_INDEX
from minibert.data.examples import (
    MaskingCollator,
    PretrainingExample,
    SpecialTokenIds,
    create_pretraining_examples,
    encode_documents,
    split_by_document,
    truncated_lengths,
)
from minibert.data.tokenizer import train_wordpiece
from minibert.functional import positions_from_labels

LEE = pathlib.Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
IDS = SpecialTokenIds(pad=0, unk=1, cls=2, sep=3, mask=4)


def _sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


@pytest.fixture(scope="module")
def lee_documents() -> list[list[str]]:
    lines = [line for line in LEE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [_sentences(line) for line in lines]


@pytest.fixture(scope="module")
def tokenizer(lee_documents):
    return train_wordpiece((" ".join(doc) for doc in lee_documents[:150]), vocab_size=1500)


def synthetic_corpus(n_docs: int, seed: int, *, max_sentences=8, max_len=40, first_id=10):
    """Documents whose token ids are all distinct and increase along the corpus, so an example
    tells exactly where its tokens came from."""
    rng = random.Random(seed)
    docs, next_id = [], first_id
    for _ in range(n_docs):
        doc = []
        for _ in range(rng.randint(1, max_sentences)):
            length = rng.randint(1, max_len)
            doc.append(list(range(next_id, next_id + length)))
            next_id += length
        docs.append(doc)
    return docs


def _locate(docs):
    """token id -> (doc index, sentence index, position in sentence)."""
    where = {}
    for d, doc in enumerate(docs):
        for s, sentence in enumerate(doc):
            for p, tok in enumerate(sentence):
                where[tok] = (d, s, p)
    return where


# -- split ----------------------------------------------------------------------------------


def test_split_by_document_is_deterministic_and_disjoint():
    docs = [f"doc-{i}" for i in range(50)]
    train, valid = split_by_document(docs, valid_fraction=0.2, seed=3)
    assert (train, valid) == split_by_document(docs, valid_fraction=0.2, seed=3)
    assert len(valid) == 10 and len(train) == 40
    assert set(train).isdisjoint(valid) and set(train) | set(valid) == set(docs)
    assert train == [d for d in docs if d in set(train)]  # input order kept
    assert split_by_document(docs, valid_fraction=0.2, seed=4)[1] != valid


def test_split_keeps_one_document_on_each_side():
    assert split_by_document([["a"], ["b"]], valid_fraction=0.01) in (
        ([["a"]], [["b"]]),
        ([["b"]], [["a"]]),
    )
    train, valid = split_by_document(list(range(3)), valid_fraction=0.99)
    assert len(train) == 1 and len(valid) == 2


def test_split_errors():
    with pytest.raises(ValueError, match="at least 2"):
        split_by_document([["only"]])
    with pytest.raises(ValueError, match="strictly between"):
        split_by_document([1, 2, 3], valid_fraction=0.0)
    with pytest.raises(ValueError, match="strictly between"):
        split_by_document([1, 2, 3], valid_fraction=1.0)


# -- encoding -------------------------------------------------------------------------------


def test_encode_documents_matches_the_tokenizer(tokenizer, lee_documents):
    docs = lee_documents[150:170] + [[], ["", "A last one."]]
    encoded = encode_documents(docs, tokenizer)
    assert [len(d) for d in encoded] == [len(d) for d in docs]
    for doc, enc in zip(docs, encoded, strict=True):
        for sentence, ids in zip(doc, enc, strict=True):
            assert ids == tokenizer(sentence, add_special_tokens=False)["input_ids"]
    assert encoded[-1][0] == []


def test_encode_documents_ignores_padding_settings(tokenizer, lee_documents):
    backend = tokenizer.backend_tokenizer
    backend.enable_padding(length=64, pad_id=0, pad_token="[PAD]")
    backend.enable_truncation(max_length=5)
    try:
        encoded = encode_documents(lee_documents[:3], tokenizer)
    finally:
        backend.no_padding()
        backend.no_truncation()
    assert encoded == encode_documents(lee_documents[:3], tokenizer)
    assert 0 not in {t for d in encoded for s in d for t in s}


def test_encode_documents_rejects_plain_strings(tokenizer):
    with pytest.raises(TypeError, match="list of sentences"):
        encode_documents(["a whole document as one string"], tokenizer)


# -- NSP pairs ------------------------------------------------------------------------------


def _reference_truncation(len_a, len_b, max_tokens):
    """BERT's truncate_seq_pair, token by token (ties cut B)."""
    while len_a + len_b > max_tokens:
        if len_a > len_b:
            len_a -= 1
        else:
            len_b -= 1
    return len_a, len_b


@given(st.integers(1, 300), st.integers(1, 300), st.integers(2, 300))
def test_truncated_lengths_match_bert_loop(len_a, len_b, max_tokens):
    assert truncated_lengths(len_a, len_b, max_tokens) == _reference_truncation(
        len_a, len_b, max_tokens
    )


def _segments(example: PretrainingExample):
    ids = example.input_ids
    assert ids[0] == IDS.cls and ids[-1] == IDS.sep
    sep = ids.index(IDS.sep)
    return ids[1:sep], ids[sep + 1 : -1]


@pytest.mark.parametrize("max_seq_len", [16, 64, 128])
def test_nsp_structure_and_provenance(max_seq_len):
    docs = synthetic_corpus(200, seed=max_seq_len)
    docs[7] = [list(range(10**6, 10**6 + 500))]  # one very long sentence alone in a document
    where = _locate(docs)
    examples = create_pretraining_examples(docs, IDS, max_seq_len=max_seq_len, seed=1)
    assert examples
    for ex in examples:
        assert len(ex.input_ids) <= max_seq_len and len(ex.token_type_ids) == len(ex.input_ids)
        assert ex.input_ids.count(IDS.sep) == 2
        a, b = _segments(ex)
        assert a and b
        assert ex.token_type_ids == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert ex.next_sentence_label in (0, 1)
        # Each segment is contiguous text of one document (the ids increase by one).
        for seg in (a, b):
            assert seg == list(range(seg[0], seg[0] + len(seg)))
            assert where[seg[0]][0] == where[seg[-1]][0]
        doc_a, doc_b = where[a[0]][0], where[b[0]][0]
        if ex.next_sentence_label == 0:
            assert doc_a == doc_b and b[0] > a[-1]
        else:
            assert doc_a != doc_b
        if len(ex.input_ids) < max_seq_len:  # not truncated: whole sentences where promised
            assert where[a[0]][2] == 0  # A starts a sentence
            d, s, p = where[a[-1]]
            if s < len(docs[d]) - 1:  # only a document's final lone sentence is ever cut in two
                assert p == len(docs[d][s]) - 1  # A ends a sentence
            if ex.next_sentence_label == 0 and where[a[-1]][1] != where[b[0]][1]:
                assert b[0] == a[-1] + 1  # the real next text, nothing skipped
            if ex.next_sentence_label == 1:
                assert where[b[0]][2] == 0


def test_nsp_uses_real_text(tokenizer, lee_documents):
    encoded = encode_documents(lee_documents[:40], tokenizer)
    examples = create_pretraining_examples(encoded, tokenizer, max_seq_len=128, seed=0)
    labels = [ex.next_sentence_label for ex in examples]
    assert 0.35 < sum(labels) / len(labels) < 0.65
    decoded = tokenizer.decode(examples[0].input_ids)
    assert decoded.startswith("[CLS] ") and decoded.endswith(" [SEP]")
    # Most inputs are (nearly) full: short ones come only from short_seq_prob and document ends.
    full = sum(len(ex.input_ids) >= 120 for ex in examples) / len(examples)
    assert full > 0.6


def test_short_seq_prob_shortens_inputs():
    docs = synthetic_corpus(300, seed=5, max_sentences=12, max_len=20)
    lengths = {
        p: [
            len(ex.input_ids)
            for ex in create_pretraining_examples(docs, IDS, max_seq_len=64, short_seq_prob=p)
        ]
        for p in (0.0, 1.0)
    }
    short = {p: sum(n < 40 for n in ls) / len(ls) for p, ls in lengths.items()}
    assert short[1.0] > short[0.0] + 0.3


def test_examples_are_deterministic_and_seeded():
    docs = synthetic_corpus(50, seed=1)
    first = create_pretraining_examples(docs, IDS, seed=7)
    assert first == create_pretraining_examples(docs, IDS, seed=7)
    assert first != create_pretraining_examples(docs, IDS, seed=8)
    assert len(create_pretraining_examples(docs, IDS, seed=7, dupe_factor=3)) > 2 * len(first)


def test_special_ids_from_tokenizer_or_mapping(tokenizer):
    docs = synthetic_corpus(5, seed=0, first_id=10)
    from_mapping = create_pretraining_examples(
        docs, {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}, seed=0
    )
    assert from_mapping == create_pretraining_examples(docs, tokenizer, seed=0)
    assert SpecialTokenIds.from_tokenizer(tokenizer) == IDS


def test_example_errors():
    docs = synthetic_corpus(5, seed=0)
    with pytest.raises(ValueError, match="at least 2 non-empty documents"):
        create_pretraining_examples([[[10, 11], [12]]], IDS)
    with pytest.raises(ValueError, match="too small for a single sequence"):
        create_pretraining_examples([[[]], []], IDS, nsp=False)
    with pytest.raises(ValueError, match="too short"):
        create_pretraining_examples(docs, IDS, max_seq_len=4)
    with pytest.raises(ValueError, match="packing"):
        create_pretraining_examples(docs, IDS, nsp=False, packing="sentences")
    with pytest.raises(ValueError, match="lacks"):
        create_pretraining_examples(docs, {"[CLS]": 2, "[SEP]": 3})


# -- packing --------------------------------------------------------------------------------


@pytest.mark.parametrize("packing", ["full_sentences", "doc_sentences", "token_stream"])
def test_packing_keeps_every_token_once(packing):
    docs = synthetic_corpus(120, seed=11, max_len=30)
    docs[3] = [list(range(10**6, 10**6 + 300))]  # longer than an input
    where = _locate(docs)
    examples = create_pretraining_examples(
        docs, IDS, max_seq_len=64, nsp=False, packing=packing, short_seq_prob=0.0, seed=2
    )
    seen = []
    for ex in examples:
        assert ex.next_sentence_label is None
        assert ex.input_ids[0] == IDS.cls and ex.input_ids[-1] == IDS.sep
        assert len(ex.input_ids) <= 64 and ex.token_type_ids == [0] * len(ex.input_ids)
        body = ex.input_ids[1:-1]
        parts, current = [], []
        for tok in body:
            if tok == IDS.sep:
                parts.append(current)
                current = []
            else:
                current.append(tok)
        parts.append(current)
        if packing == "doc_sentences":
            assert len(parts) == 1
        for part in parts:  # each part: contiguous text of one document
            assert part and part == list(range(part[0], part[0] + len(part)))
            assert where[part[0]][0] == where[part[-1]][0]
        # A boundary [SEP] separates two different documents.
        docs_in_example = [where[p[0]][0] for p in parts]
        assert len(set(docs_in_example)) == len(docs_in_example)
        seen.extend(tok for tok in body if tok != IDS.sep)
    assert sorted(seen) == sorted(where)  # nothing lost, nothing repeated
    fill = sum(len(ex.input_ids) for ex in examples) / (64 * len(examples))
    assert fill > (0.85 if packing == "full_sentences" else 0.5)
    if packing == "token_stream":  # cut from one stream: full but for a boundary [SEP]
        assert sum(len(ex.input_ids) < 63 for ex in examples) <= 1  # the stream's end
        assert fill > 0.98


def test_token_stream_follows_the_document_text_across_inputs():
    docs = synthetic_corpus(30, seed=5, max_len=25)
    examples = create_pretraining_examples(
        docs, IDS, max_seq_len=40, nsp=False, packing="token_stream", short_seq_prob=0.0, seed=3
    )
    where = _locate(docs)
    stream = [tok for ex in examples for tok in ex.input_ids[1:-1] if tok != IDS.sep]
    assert sorted(stream) == sorted(where)  # nothing lost, nothing repeated
    cut_mid_sentence = [ex for ex in examples if where[ex.input_ids[1]][2] != 0]
    assert cut_mid_sentence  # unlike the sentence packings, inputs may start mid-sentence


def test_full_sentences_crosses_documents():
    docs = synthetic_corpus(100, seed=4, max_sentences=2, max_len=10)
    examples = create_pretraining_examples(docs, IDS, max_seq_len=128, nsp=False, seed=0)
    assert any(ex.input_ids[1:-1].count(IDS.sep) >= 1 for ex in examples)


def test_packing_starts_inputs_at_sentence_starts():
    docs = synthetic_corpus(80, seed=9, max_len=20)
    where = _locate(docs)
    for packing in ("full_sentences", "doc_sentences"):
        examples = create_pretraining_examples(
            docs, IDS, max_seq_len=48, nsp=False, packing=packing, seed=1
        )
        assert all(where[ex.input_ids[1]][2] == 0 for ex in examples)


# -- collator -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nsp_examples(tokenizer, lee_documents):
    encoded = encode_documents(lee_documents[150:], tokenizer)
    return create_pretraining_examples(encoded, tokenizer, max_seq_len=128, seed=0)


def test_collator_batch_layout(tokenizer, nsp_examples):
    collator = MaskingCollator(
        tokenizer, seed=0, return_masked_positions=True, pad_to_multiple_of=8
    )
    examples = nsp_examples[:16]
    batch = collator(examples)
    assert set(batch) == {
        "input_ids",
        "attention_mask",
        "token_type_ids",
        "labels",
        "next_sentence_label",
        "masked_positions",
    }
    width = batch["input_ids"].shape[1]
    assert width % 8 == 0 and width >= max(len(ex) for ex in examples)
    for b, ex in enumerate(examples):
        n = len(ex)
        assert batch["attention_mask"][b].tolist() == [1] * n + [0] * (width - n)
        assert batch["token_type_ids"][b, :n].tolist() == ex.token_type_ids
        original = torch.tensor(ex.input_ids)
        labels = batch["labels"][b, :n]
        restored = torch.where(labels != IGNORE_INDEX, labels, batch["input_ids"][b, :n])
        assert torch.equal(restored, original)
        assert (batch["labels"][b, n:] == IGNORE_INDEX).all()
        assert (batch["input_ids"][b, n:] == tokenizer.pad_token_id).all()
    assert batch["next_sentence_label"].tolist() == [ex.next_sentence_label for ex in examples]
    assert all(t.dtype == torch.long for t in batch.values())


def test_collator_accepts_dicts_and_packed_examples(tokenizer):
    collator = MaskingCollator(tokenizer, seed=0)
    enc = [
        tokenizer("the government said"),
        tokenizer("a much longer sentence about the government"),
    ]
    batch = collator([dict(e) for e in enc])
    assert "next_sentence_label" not in batch
    assert batch["input_ids"].shape == (2, len(enc[1]["input_ids"]))
    tensors = [
        {"input_ids": torch.tensor(e["input_ids"]), "next_sentence_label": torch.tensor(1)}
        for e in enc
    ]
    assert collator(tensors)["next_sentence_label"].tolist() == [1, 1]
    with pytest.raises(ValueError, match="do not mix"):
        collator([{"input_ids": [2, 50, 3], "next_sentence_label": 0}, {"input_ids": [2, 50, 3]}])
    with pytest.raises(ValueError, match="empty"):
        collator([])


def test_seeded_collator_is_reproducible(tokenizer, nsp_examples):
    collator = MaskingCollator(tokenizer, seed=123)
    first, second = collator(nsp_examples[:8]), collator(nsp_examples[:8])
    assert not torch.equal(first["labels"], second["labels"])  # dynamic: a new mask each call
    collator.reseed(123)
    again = collator(nsp_examples[:8])
    assert torch.equal(again["input_ids"], first["input_ids"]) and torch.equal(
        again["labels"], first["labels"]
    )
    assert torch.equal(
        MaskingCollator(tokenizer, seed=123)(nsp_examples[:8])["labels"], first["labels"]
    )
    # Unseeded: torch's global generator decides.
    unseeded = MaskingCollator(tokenizer)
    torch.manual_seed(5)
    x = unseeded(nsp_examples[:8])["labels"]
    torch.manual_seed(5)
    assert torch.equal(unseeded(nsp_examples[:8])["labels"], x)


def test_fixed_count_mode(tokenizer, nsp_examples):
    collator = MaskingCollator(tokenizer, max_predictions=20, return_masked_positions=True, seed=0)
    batch = collator(nsp_examples[:64])
    assert batch["masked_positions"].shape == (64, 20)
    special = set(tokenizer.all_special_ids)
    for b, ex in enumerate(nsp_examples[:64]):
        n = sum(tok not in special for tok in ex.input_ids)
        expected = min(20, max(1, int(0.15 * n + 0.5)))
        assert int((batch["labels"][b] != IGNORE_INDEX).sum()) == expected


def test_whole_word_masking_masks_every_piece(tokenizer, nsp_examples):
    collator = MaskingCollator(tokenizer, whole_word_masking=True, seed=0)
    batch = collator(nsp_examples[:64])
    masked_whole_words = 0
    for b, ex in enumerate(nsp_examples[:64]):
        tokens = tokenizer.convert_ids_to_tokens(ex.input_ids)
        selected = (batch["labels"][b, : len(tokens)] != IGNORE_INDEX).tolist()
        out = batch["input_ids"][b, : len(tokens)].tolist()
        # group into words: a "##" piece continues the word before it
        words, current = [], []
        for i, tok in enumerate(tokens):
            if (
                tok.startswith("##")
                and current
                and tokens[i - 1] not in tokenizer.all_special_tokens
            ):
                current.append(i)
            else:
                if current:
                    words.append(current)
                current = [i]
        words.append(current)
        for word in words:
            flags = {selected[i] for i in word}
            assert len(flags) == 1, [tokens[i] for i in word]  # all or nothing
            if selected[word[0]] and len(word) > 1:
                masked_whole_words += 1
                fates = {
                    "mask"
                    if out[i] == tokenizer.mask_token_id
                    else "same"
                    if out[i] == ex.input_ids[i]
                    else "random"
                    for i in word
                }
                # one 80/10/10 draw per word (a random token equal to the original is rare)
                assert len(fates) == 1 or fates == {"random", "same"}
    assert masked_whole_words > 10


def test_whole_word_fixed_count_fits_the_budget(tokenizer, nsp_examples):
    collator = MaskingCollator(
        tokenizer, whole_word_masking=True, max_predictions=20, return_masked_positions=True, seed=1
    )
    batch = collator(nsp_examples[:64])
    special = set(tokenizer.all_special_ids)
    counts = (batch["labels"] != IGNORE_INDEX).sum(1)
    budgets = torch.tensor(
        [
            min(20, max(1, int(0.15 * sum(t not in special for t in ex.input_ids) + 0.5)))
            for ex in nsp_examples[:64]
        ]
    )
    assert (counts <= budgets).all()
    assert (counts >= budgets - 2).float().mean() > 0.9  # the greedy fill nearly always meets it


def test_masked_positions_padding_is_harmless():
    labels = torch.tensor([[-100, 7, -100, 9], [-100, -100, -100, -100], [-100, 5, 6, 8]])
    positions, real = positions_from_labels(labels)
    assert positions.tolist() == [[1, 3, 0], [0, 0, 0], [1, 2, 3]]
    assert real.tolist() == [[True, True, False], [False] * 3, [True] * 3]
    assert labels.gather(1, positions).tolist() == [[7, 9, -100], [-100, -100, -100], [5, 6, 8]]
    assert positions_from_labels(labels, 5)[0].shape == (3, 5)
    assert positions_from_labels(labels[:, :2], 3)[0].tolist() == [[1, 0, 0], [0, 0, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="num_positions"):
        positions_from_labels(labels, 2)


def test_collator_errors(tokenizer):
    with pytest.raises(ValueError, match="mlm_probability"):
        MaskingCollator(tokenizer, mlm_probability=0.0)
    with pytest.raises(ValueError, match="sum to at most 1"):
        MaskingCollator(tokenizer, mask_replace_prob=0.9, random_replace_prob=0.2)
    collator = MaskingCollator(tokenizer, return_masked_positions=True)
    with pytest.raises(ValueError, match="position 0"):
        collator([{"input_ids": [50, 51, 3]}])
    with pytest.raises(ValueError, match="outside"):
        collator([{"input_ids": [2, len(tokenizer) + 5, 3]}])


# -- property tests -------------------------------------------------------------------------


@st.composite
def batches(draw, vocab_size: int):
    """Sequences that start with [CLS] and hold any ids, specials and [PAD] included, anywhere."""
    n = draw(st.integers(1, 6))
    ids = st.integers(0, vocab_size - 1)
    special = st.sampled_from([0, 1, 2, 3, 4])
    token = st.one_of(ids, ids, ids, special)
    return [[2, *draw(st.lists(token, min_size=0, max_size=40))] for _ in range(n)]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    whole_word=st.booleans(),
    max_predictions=st.one_of(st.none(), st.integers(1, 12)),
    mlm_probability=st.floats(0.05, 1.0),
)
def test_masking_properties(tokenizer, data, whole_word, max_predictions, mlm_probability):
    vocab_size = len(tokenizer)
    rows = data.draw(batches(vocab_size))
    collator = MaskingCollator(
        tokenizer,
        mlm_probability=mlm_probability,
        whole_word_masking=whole_word,
        max_predictions=max_predictions,
        return_masked_positions=True,
        seed=data.draw(st.integers(0, 2**31)),
    )
    batch = collator([{"input_ids": r} for r in rows])
    original = collator.pad([{"input_ids": r} for r in rows])["input_ids"]
    special = torch.zeros(vocab_size, dtype=torch.bool)
    special[tokenizer.all_special_ids] = True
    selected = batch["labels"] != IGNORE_INDEX
    candidate = batch["attention_mask"].bool() & ~special[original]

    assert not (selected & ~candidate).any()  # never a special token, never padding
    assert torch.equal(batch["labels"][selected], original[selected])  # labels = original ids
    assert torch.equal(batch["input_ids"][~selected], original[~selected])  # the rest untouched
    changed = selected & (batch["input_ids"] != original)
    out = batch["input_ids"][changed]
    assert ((out == tokenizer.mask_token_id) | ~special[out]).all()  # [MASK] or a normal token

    counts = selected.sum(1)
    if max_predictions is not None:
        n = candidate.sum(1)
        budget = torch.clamp(torch.floor(n * mlm_probability + 0.5).long(), 1, max_predictions)
        budget = torch.where(n > 0, budget, torch.zeros_like(budget))
        if whole_word:
            assert (counts <= budget).all()
        else:
            assert torch.equal(counts, budget)
        assert batch["masked_positions"].shape[1] == max_predictions
    elif candidate.any():
        assert selected.any()  # the loss is always defined

    positions = batch["masked_positions"]
    for b in range(len(rows)):
        k = int(counts[b])
        assert positions[b, :k].tolist() == selected[b].nonzero().squeeze(1).tolist()
        assert (positions[b, k:] == 0).all()
    gathered = batch["labels"].gather(1, positions)
    assert int((gathered != IGNORE_INDEX).sum()) == int(selected.sum())

    if whole_word:  # a "##" piece is selected exactly when the piece before it is (same word)
        cont = torch.tensor(
            [t.startswith("##") for t in tokenizer.convert_ids_to_tokens(range(vocab_size))]
        )
        joined = cont[original[:, 1:]] & candidate[:, 1:] & candidate[:, :-1]
        assert torch.equal(selected[:, 1:][joined], selected[:, :-1][joined])
