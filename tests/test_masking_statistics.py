"""Large-sample statistics: the MLM selection rate and 80/10/10 split over >= 1M tokens, and the
NSP label balance (Devlin et al. 2019, Sec. 3.1). The seeds are fixed, so these tests are
deterministic; the tolerances are many standard errors wide, yet a wrong rate (say 14% or a
75/15/10 split) fails them."""

from __future__ import annotations

import pathlib
import random
import re

import gensim
import pytest
import torch

from minibert.constants import IGNORE_INDEX
from minibert.data.examples import (
    MaskingCollator,
    SpecialTokenIds,
    create_pretraining_examples,
    encode_documents,
)
from minibert.data.tokenizer import train_wordpiece

LEE = pathlib.Path(gensim.__file__).parent / "test" / "test_data" / "lee_background.cor"
MIN_TOKENS = 1_000_000


@pytest.fixture(scope="module")
def lee_documents() -> list[list[str]]:
    lines = [line for line in LEE.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [[s for s in re.split(r"(?<=[.!?])\s+", line.strip()) if s] for line in lines]


@pytest.fixture(scope="module")
def tokenizer(lee_documents):
    return train_wordpiece((" ".join(d) for d in lee_documents), vocab_size=3000)


@pytest.fixture(scope="module")
def random_batch(tokenizer):
    """~1.1M candidate tokens: [CLS] random normal tokens [SEP], padded to varied lengths."""
    generator = torch.Generator().manual_seed(0)
    n_seq, width = 14000, 128
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)))
    normal = torch.tensor([i for i in range(len(tokenizer)) if i not in set(special.tolist())])
    ids = normal[torch.randint(len(normal), (n_seq, width), generator=generator)]
    lengths = torch.randint(32, width + 1, (n_seq,), generator=generator)
    positions = torch.arange(width)[None, :]
    ids[:, 0] = tokenizer.cls_token_id
    ids = torch.where(positions == (lengths - 1)[:, None], tokenizer.sep_token_id, ids)
    attention = (positions < lengths[:, None]).long()
    ids = torch.where(attention.bool(), ids, tokenizer.pad_token_id)
    return ids, attention


@pytest.fixture(scope="module")
def text_examples(tokenizer, lee_documents):
    """Real text packed into inputs, enough passes for >= 1M tokens."""
    encoded = encode_documents(lee_documents, tokenizer)
    n_tokens = sum(len(s) for d in encoded for s in d)
    passes = MIN_TOKENS // n_tokens + 1
    return create_pretraining_examples(
        encoded, tokenizer, max_seq_len=128, nsp=False, seed=0, dupe_factor=passes
    )


def _rates(original, masked, labels, attention, tokenizer):
    special = torch.zeros(len(tokenizer), dtype=torch.bool)
    special[tokenizer.all_special_ids] = True
    candidates = attention.bool() & ~special[original]
    selected = labels != IGNORE_INDEX
    n_selected = int(selected.sum())
    to_mask = selected & (masked == tokenizer.mask_token_id)
    unchanged = selected & (masked == original)
    to_random = selected & ~to_mask & ~unchanged
    return {
        "candidates": int(candidates.sum()),
        "selected": n_selected / int(candidates.sum()),
        "mask": int(to_mask.sum()) / n_selected,
        "random": int(to_random.sum()) / n_selected,
        "unchanged": int(unchanged.sum()) / n_selected,
        "random_ids": masked[to_random],
    }


def _check_rates(rates, tokenizer):
    assert rates["candidates"] >= MIN_TOKENS
    assert abs(rates["selected"] - 0.15) <= 0.005, rates["selected"]
    assert abs(rates["mask"] - 0.80) <= 0.01, rates["mask"]
    assert abs(rates["random"] - 0.10) <= 0.01, rates["random"]
    assert abs(rates["unchanged"] - 0.10) <= 0.01, rates["unchanged"]
    special = set(tokenizer.all_special_ids)
    assert not special & set(rates["random_ids"].unique().tolist())


@pytest.mark.parametrize("max_predictions", [None, 20])
def test_token_masking_rates_over_a_million_tokens(tokenizer, random_batch, max_predictions):
    ids, attention = random_batch
    collator = MaskingCollator(tokenizer, max_predictions=max_predictions, seed=1)
    masked, labels = collator.mask_tokens(ids, attention)
    rates = _rates(ids, masked, labels, attention, tokenizer)
    _check_rates(rates, tokenizer)
    # Random replacements are spread over the whole normal vocabulary.
    n_normal = len(tokenizer) - len(set(tokenizer.all_special_ids))
    assert rates["random_ids"].unique().numel() > 0.95 * n_normal


def test_whole_word_masking_rates_over_a_million_tokens(tokenizer, text_examples):
    collator = MaskingCollator(tokenizer, whole_word_masking=True, seed=2)
    batch = collator.pad(text_examples)
    ids, attention = batch["input_ids"], batch["attention_mask"]
    masked, labels = collator.mask_tokens(ids, attention)
    rates = _rates(ids, masked, labels, attention, tokenizer)
    _check_rates(rates, tokenizer)

    # The 80/10/10 choice is made per word: count word starts (selected, not a "##" piece).
    cont = torch.tensor(
        [t.startswith("##") for t in tokenizer.convert_ids_to_tokens(range(len(tokenizer)))]
    )
    selected = labels != IGNORE_INDEX
    previous_selected = torch.nn.functional.pad(selected[:, :-1], (1, 0))
    word_start = selected & ~(cont[ids] & previous_selected)
    n_words = int(word_start.sum())
    masked_words = int((word_start & (masked == tokenizer.mask_token_id)).sum()) / n_words
    assert n_words > 100_000
    assert abs(masked_words - 0.80) <= 0.01
    # ... and holds for the multi-piece words too.
    multi = word_start & torch.nn.functional.pad(cont[ids][:, 1:] & selected[:, 1:], (0, 1))
    assert int(multi.sum()) > 10_000
    assert (
        abs(int((multi & (masked == tokenizer.mask_token_id)).sum()) / int(multi.sum()) - 0.80)
        <= 0.015
    )


def test_fixed_count_whole_word_rates(tokenizer, text_examples):
    collator = MaskingCollator(tokenizer, whole_word_masking=True, max_predictions=20, seed=3)
    batch = collator.pad(text_examples)
    masked, labels = collator.mask_tokens(batch["input_ids"], batch["attention_mask"])
    rates = _rates(batch["input_ids"], masked, labels, batch["attention_mask"], tokenizer)
    assert rates["candidates"] >= MIN_TOKENS
    # The greedy whole-word fill may fall a token short of round(0.15 n); never over.
    assert 0.14 <= rates["selected"] <= 0.1505
    assert abs(rates["mask"] - 0.80) <= 0.01


def test_nsp_labels_are_balanced():
    """~60k pairs from documents with 1-12 sentences of 1-60 tokens (lone final sentences,
    over-long sentences, short targets all occur): 50% +/- 1 point random."""
    rng = random.Random(0)
    docs, next_id = [], 10
    for _ in range(3000):
        doc = []
        for _ in range(rng.randint(1, 12)):
            length = rng.randint(1, 60)
            doc.append(list(range(next_id, next_id + length)))
            next_id += length
        docs.append(doc)
    ids = SpecialTokenIds(pad=0, unk=1, cls=2, sep=3, mask=4)
    examples = create_pretraining_examples(docs, ids, max_seq_len=64, seed=0, dupe_factor=4)
    assert len(examples) > 40_000
    random_share = sum(ex.next_sentence_label for ex in examples) / len(examples)
    assert abs(random_share - 0.5) <= 0.01, random_share


def test_collator_speed_is_reasonable(tokenizer, text_examples):
    """A 64 x 128 batch is padded and masked in milliseconds (the training loop calls it every
    step). The bound is loose; it guards against per-token Python loops (~100x slower)."""
    import time

    collator = MaskingCollator(
        tokenizer, whole_word_masking=True, max_predictions=20, return_masked_positions=True
    )
    examples = text_examples[:64]
    collator(examples)
    start = time.perf_counter()
    for _ in range(10):
        collator(examples)
    per_batch = (time.perf_counter() - start) / 10
    assert per_batch < 0.1, per_batch
