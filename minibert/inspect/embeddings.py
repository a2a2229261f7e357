"""Vectors from a model: token and sentence embeddings, a 2-D map, and what they capture.

* :func:`token_vectors`: one vector per word piece of a text, from any layer;
* :func:`embed`: one vector per text, mean-pooled over its tokens (what all-MiniLM-L6-v2 was
  trained for, Reimers & Gurevych 2019, Sec. 3), the [CLS] vector, or BERT's pooler output;
* :func:`project`: those vectors in 2-D (PCA; UMAP when ``umap-learn`` is installed);
* :func:`similarity_benchmarks`: how well cosine similarity of the vectors agrees with people,
  on WordSim353 (Finkelstein et al. 2002) and SimLex-999 (Hill et al. 2015) word pairs
  (Spearman's rho, the datasets' usual score) and the Lee et al. (2005) document-similarity
  judgments (Pearson's r over the 1,225 document pairs, as gensim's tutorials report it). The
  data are the copies inside gensim's wheel, read in place.

A word is embedded alone (``[CLS] word [SEP]``), as the mean of its pieces' last-layer vectors:
BERT has no context-free word vector, and this is the simplest honest stand-in (Bommasani et
al. 2020 compare better ones).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minibert.inspect.errors import InputTextError, InspectError
from minibert.inspect.heldout import check_texts
from minibert.inspect.sources import (
    LoadedModel,
    encoder_of,
    evaluating,
    load_model,
    model_inputs,
)
from minibert.inspect.tokens import encode_text, model_max_length

__all__ = [
    "POOLINGS",
    "EmbeddingProjection",
    "TokenVectors",
    "embed",
    "project",
    "similarity_benchmarks",
    "token_vectors",
]

logger = logging.getLogger(__name__)

POOLINGS = ("mean", "cls", "pooler")


@dataclass
class TokenVectors:
    tokens: list[str]
    vectors: np.ndarray  # (T, H)
    layer: int  # 0 = embeddings output, L = last layer


def _check_layer(layer: int, loaded: LoadedModel) -> int:
    from minibert.inspect.errors import HeadIndexError

    layers = loaded.config.num_hidden_layers
    index = layer if layer >= 0 else layers + 1 + layer
    if not 0 <= index <= layers:
        raise HeadIndexError(
            f"layer {layer} does not exist: hidden states are numbered 0 (embeddings) to "
            f"{layers} (last layer), or -1 for the last"
        )
    return index


def token_vectors(
    model_source: str | Path | torch.nn.Module | LoadedModel, text: str, *, layer: int = -1
) -> TokenVectors:
    """Every word piece's vector (T, H) at ``layer`` (0 = embeddings, -1 = last layer)."""
    loaded = load_model(model_source)
    index = _check_layer(layer, loaded)
    encoded = encode_text(loaded.tokenizer, loaded.config, text)
    with evaluating(loaded.model):
        encoder = encoder_of(loaded.model)
        out = encoder(
            **model_inputs(
                encoder,
                input_ids=encoded.input_ids,
                attention_mask=encoded.attention_mask,
                token_type_ids=encoded.token_type_ids,
            ),
            output_hidden_states=True,
        )
        vectors = out.hidden_states[index][0].float().cpu().numpy()  # (T, H)
    return TokenVectors(tokens=encoded.tokens, vectors=vectors, layer=index)


def _embed_loaded(
    loaded: LoadedModel,
    texts: Sequence[str],
    pooling: str,
    batch_size: int,
    max_length: int | None,
    drop_specials: bool = False,
) -> np.ndarray:
    if pooling not in POOLINGS:
        raise InputTextError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    encoder = encoder_of(loaded.model)
    if pooling == "pooler" and getattr(encoder, "pooler", None) is None:
        raise InspectError(
            f"{loaded.source.label} has no pooler (a BertForMaskedLM drops it); use "
            "pooling='mean' or 'cls'"
        )
    limit = model_max_length(loaded.config, loaded.tokenizer, max_length)
    special_ids = torch.tensor(sorted(set(loaded.tokenizer.all_special_ids)))
    out_vectors = []
    with evaluating(loaded.model):
        for start in range(0, len(texts), batch_size):
            encoded = loaded.tokenizer(
                list(texts[start : start + batch_size]),
                padding=True,
                truncation=True,
                max_length=limit,
                return_tensors="pt",
            )
            out = encoder(
                **model_inputs(
                    encoder,
                    input_ids=encoded["input_ids"],
                    attention_mask=encoded["attention_mask"],
                    token_type_ids=encoded.get("token_type_ids"),
                )
            )
            hidden = out.last_hidden_state.float().cpu()  # (B, T, H)
            if pooling == "cls":
                vectors = hidden[:, 0]  # (B, H)
            elif pooling == "pooler":
                vectors = out.pooler_output.float().cpu()  # (B, H)
            else:
                weights = encoded["attention_mask"].float()  # (B, T)
                if drop_specials:
                    weights = weights * ~torch.isin(encoded["input_ids"], special_ids)
                weights = weights.unsqueeze(-1)  # (B, T, 1)
                vectors = (hidden * weights).sum(1) / weights.sum(1).clamp_min(1e-9)  # (B, H)
            out_vectors.append(vectors.numpy())
    return np.concatenate(out_vectors)


def embed(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    texts: Sequence[str],
    *,
    pooling: str = "mean",
    batch_size: int = 32,
    max_length: int | None = None,
) -> np.ndarray:
    """One vector per text, (N, H) float32: ``pooling`` "mean" over tokens (padding
    excluded), "cls" (the [CLS] vector) or "pooler" (tanh layer on [CLS], when the model has
    one). Texts longer than the model's positions are truncated."""
    loaded = load_model(model_source)
    texts = check_texts(texts)
    return _embed_loaded(loaded, texts, pooling, batch_size, max_length)


@dataclass
class EmbeddingProjection:
    labels: list[str]
    vectors: np.ndarray  # (N, H)
    points: np.ndarray  # (N, 2)
    method: str  # "pca" or "umap"
    explained_variance: list[float] | None = None  # PCA: share of variance per axis


def project(
    vectors: np.ndarray, labels: Sequence[str], method: str = "pca", *, seed: int = 0
) -> EmbeddingProjection:
    """Vectors (N, H) -> points (N, 2) by PCA (centred SVD), or UMAP if installed."""
    vectors = np.asarray(vectors, dtype=np.float64)
    labels = [str(label) for label in labels]
    if vectors.ndim != 2 or len(vectors) != len(labels):
        raise InputTextError(
            f"give one label per vector: vectors {vectors.shape}, {len(labels)} labels"
        )
    if len(vectors) < 2:
        raise InputTextError("a projection needs at least two vectors")
    if method == "pca":
        centred = vectors - vectors.mean(axis=0)
        _, singular, axes = np.linalg.svd(centred, full_matrices=False)
        points = centred @ axes[:2].T  # (N, <=2)
        if points.shape[1] < 2:
            points = np.pad(points, ((0, 0), (0, 2 - points.shape[1])))
        variance = singular**2
        share = (variance[:2] / variance.sum()).tolist() if variance.sum() > 0 else [0.0, 0.0]
        return EmbeddingProjection(labels, vectors, points, "pca", share)
    if method == "umap":
        try:
            import umap
        except ImportError as err:
            raise InspectError(
                "method='umap' needs umap-learn (pip install umap-learn); method='pca' works "
                "without it"
            ) from err
        reducer = umap.UMAP(n_components=2, random_state=seed, n_neighbors=min(15, len(labels) - 1))
        points = reducer.fit_transform(vectors)
        return EmbeddingProjection(labels, vectors, np.asarray(points), "umap")
    raise InputTextError(f"method must be 'pca' or 'umap', got {method!r}")


# --------------------------------------------------------------------------------------------
# Similarity benchmarks
# --------------------------------------------------------------------------------------------


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True).clip(1e-12)
    return (a * b).sum(-1)


def similarity_benchmarks(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    *,
    pooling: str = "mean",
    batch_size: int = 64,
) -> dict[str, float]:
    """Correlations with human similarity judgments: ``wordsim353``, ``simlex999`` (Spearman),
    ``lee`` (Pearson) and ``lee_spearman``; see the module docstring. The data come from
    :func:`minibert.data.tasks.load_similarity_benchmark`. MiniLM reads about 1,400 words and 50
    documents here (measured: 24 s on a busy shared 2-core machine)."""
    from scipy.stats import pearsonr, spearmanr

    from minibert.data.tasks import load_similarity_benchmark

    loaded = load_model(model_source)
    results: dict[str, float] = {}
    for name in ("wordsim353", "simlex999"):
        pairs = load_similarity_benchmark(name).pairs
        words = sorted({w for pair in pairs for w in (pair.first, pair.second)})
        vectors = _embed_loaded(loaded, words, "mean", batch_size, 16, drop_specials=True)
        index = {word: i for i, word in enumerate(words)}
        first = vectors[[index[pair.first] for pair in pairs]]
        second = vectors[[index[pair.second] for pair in pairs]]
        human = [pair.score for pair in pairs]
        results[name] = float(spearmanr(_cosine(first, second), human)[0])
    lee = load_similarity_benchmark("lee")
    vectors = _embed_loaded(loaded, lee.documents, pooling, 8, None)
    first = vectors[[pair.first_index for pair in lee.pairs]]
    second = vectors[[pair.second_index for pair in lee.pairs]]
    similarity = _cosine(first, second)
    human = [pair.score for pair in lee.pairs]
    results["lee"] = float(pearsonr(similarity, human)[0])
    results["lee_spearman"] = float(spearmanr(similarity, human)[0])
    return results
