"""Fill-mask: BERT's cloze test (Devlin et al. 2019, Sec. 3.1, Task #1) for one model, or for
every checkpoint of a run, to watch the guesses change as it trains.

All ``[MASK]`` tokens are predicted from one forward pass (the others stay masked), as
`transformers`' fill-mask pipeline does; vocabulary logits are computed at the masked positions
only (``masked_positions``), the rest of the vocabulary projection is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from minibert.inspect.cache import DiskCache
from minibert.inspect.errors import InputTextError, UnsupportedModelError
from minibert.inspect.sources import (
    LoadedModel,
    ModelSource,
    evaluating,
    load_model,
    model_inputs,
)
from minibert.inspect.tokens import EncodedText, encode_text

__all__ = [
    "FillMaskOverTraining",
    "FillMaskResult",
    "TokenGuess",
    "fill_mask",
    "fill_mask_over_training",
    "masked_lm_logits",
]


@dataclass
class TokenGuess:
    token: str
    token_id: int
    probability: float


@dataclass
class FillMaskResult:
    """The top-k guesses for each ``[MASK]`` of ``text``, in mask order."""

    text: str
    tokens: list[str]
    mask_positions: list[int]
    guesses: list[list[TokenGuess]]
    source: ModelSource
    truncated: bool = False


def require_masked_lm(loaded: LoadedModel) -> None:
    """UnsupportedModelError unless the model has BERT's MLM head."""
    if not loaded.has_mlm_head:
        raise UnsupportedModelError(
            f"{loaded.source.label} is a {type(loaded.model).__name__}, which has no masked-LM "
            "head to guess tokens with (all-MiniLM-L6-v2 ships without one). Use a minibert "
            "pretraining run (runs/<name>) or a BertForMaskedLM/BertForPreTraining folder."
        )


def masked_lm_logits(
    loaded: LoadedModel,
    input_ids: torch.Tensor,
    positions: torch.Tensor,
    *,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
    head_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """MLM logits (B, M, V) at ``positions`` (B, M), float32 on the CPU: the one place inspect
    calls the MLM head. Only those positions get vocabulary logits (``masked_positions``).
    """
    require_masked_lm(loaded)
    with evaluating(loaded.model):
        out = loaded.model(
            **model_inputs(
                loaded.model,
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=token_type_ids,
                head_mask=head_mask,
                masked_positions=positions,
            )
        )
        logits = out.logits if hasattr(out, "logits") else out.prediction_logits
        return logits.float().cpu()


def _guesses(
    loaded: LoadedModel,
    encoded: EncodedText,
    top_k: int,
    head_mask: torch.Tensor | None = None,
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """Mask positions, and the top-k ids (M, k) and probabilities (M, k) at each."""
    mask_id = loaded.tokenizer.mask_token_id
    positions = (encoded.input_ids[0] == mask_id).nonzero().flatten()  # (M,)
    if positions.numel() == 0:
        raise InputTextError(
            f"the text has no {loaded.tokenizer.mask_token} to fill"
            + (" (after truncation to the model's length)" if encoded.truncated else "")
            + f"; write one where a word should be guessed, e.g. 'The cat sat on the "
            f"{loaded.tokenizer.mask_token}.'"
        )
    logits = masked_lm_logits(
        loaded,
        encoded.input_ids,
        positions[None, :],
        attention_mask=encoded.attention_mask,
        token_type_ids=encoded.token_type_ids,
        head_mask=head_mask,
    )[0]  # (M, V)
    probabilities = logits.float().softmax(dim=-1)  # (M, V)
    top = probabilities.topk(min(top_k, probabilities.shape[-1]), dim=-1)
    return positions.tolist(), top.indices.numpy(), top.values.numpy()


def _result(
    text: str,
    tokens: list[str],
    positions: list[int],
    guess_tokens: list[list[str]],
    ids: np.ndarray,
    probs: np.ndarray,
    source: ModelSource,
    truncated: bool,
) -> FillMaskResult:
    guesses = [
        [
            TokenGuess(token=token, token_id=int(i), probability=float(p))
            for token, i, p in zip(row_tokens, row_ids, row_p, strict=True)
        ]
        for row_tokens, row_ids, row_p in zip(guess_tokens, ids, probs, strict=True)
    ]
    return FillMaskResult(
        text=text,
        tokens=tokens,
        mask_positions=list(positions),
        guesses=guesses,
        source=source,
        truncated=truncated,
    )


def _names(tokenizer, ids: np.ndarray) -> list[list[str]]:
    return [tokenizer.convert_ids_to_tokens(row.tolist()) for row in ids]


def _check_top_k(top_k: int) -> None:
    if not isinstance(top_k, int) or top_k < 1:
        raise InputTextError(f"top_k must be a positive whole number, got {top_k!r}")


def heads_off_mask(loaded: LoadedModel, heads_off: Sequence[tuple[int, int]]) -> torch.Tensor:
    """A ``head_mask`` (L, nh) with the listed (layer, head) pairs switched off, checked."""
    from minibert.inspect.attention import check_head

    config = loaded.config
    mask = torch.ones(config.num_hidden_layers, config.num_attention_heads)  # (L, nh)
    for layer, head in heads_off:
        check_head(layer, head, config.num_hidden_layers, config.num_attention_heads)
        mask[int(layer), int(head)] = 0.0
    return mask


def fill_mask(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    text: str,
    *,
    top_k: int = 5,
    heads_off: Sequence[tuple[int, int]] = (),
) -> FillMaskResult:
    """The ``top_k`` most probable tokens, with probabilities, for every ``[MASK]`` in ``text``.

    ``heads_off``: (layer, head) pairs switched off through ``head_mask`` (what does the model
    guess without them?).

    Raises:
        InputTextError: empty text, or no [MASK] in it. UnsupportedModelError: no MLM head.
        HeadIndexError: a head in ``heads_off`` outside the model.
    """
    _check_top_k(top_k)
    loaded = load_model(model_source)
    require_masked_lm(loaded)
    head_mask = heads_off_mask(loaded, heads_off) if heads_off else None
    encoded = encode_text(loaded.tokenizer, loaded.config, text)
    positions, ids, probs = _guesses(loaded, encoded, top_k, head_mask)
    names = _names(loaded.tokenizer, ids)
    return _result(
        text, encoded.tokens, positions, names, ids, probs, loaded.source, encoded.truncated
    )


@dataclass
class FillMaskOverTraining:
    """``results[i]``: the guesses of ``checkpoints[i]`` for the same text."""

    checkpoints: list
    results: list[FillMaskResult]

    @property
    def steps(self) -> list[int]:
        return [info.step for info in self.checkpoints]

    def probability_of(self, token: str, mask_index: int = 0) -> list[float | None]:
        """The probability of ``token`` at one mask over the checkpoints (None: not in top-k)."""
        found = []
        for result in self.results:
            match = [g.probability for g in result.guesses[mask_index] if g.token == token]
            found.append(match[0] if match else None)
        return found


def fill_mask_over_training(
    run_dir: str | Path,
    text: str,
    *,
    top_k: int = 5,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> FillMaskOverTraining:
    """:func:`fill_mask` at every checkpoint of a run, cached on disk per checkpoint.

    Raises:
        NoCheckpointsError: the run has none yet. InputTextError, UnsupportedModelError: as
        :func:`fill_mask`.
    """
    from minibert.inspect.checkpoints import _require_checkpoints, _run_dir, _source_for

    _check_top_k(top_k)
    run = _run_dir(run_dir)
    checkpoints = _require_checkpoints(run)
    cache = DiskCache(cache_dir) if use_cache else None
    question = {"what": "fill-mask", "text": text, "top_k": top_k}
    results = []
    for info in checkpoints:
        source = _source_for(info, run)
        key = cache.key(info.path, question) if cache is not None else None
        hit = cache.get(key) if cache is not None else None
        if hit is None:
            loaded = load_model(info.path)
            require_masked_lm(loaded)
            encoded = encode_text(loaded.tokenizer, loaded.config, text)
            positions, ids, probs = _guesses(loaded, encoded, top_k)
            meta = {
                "tokens": encoded.tokens,
                "positions": positions,
                "guess_tokens": _names(loaded.tokenizer, ids),
                "truncated": encoded.truncated,
            }
            arrays = {"ids": ids, "probabilities": probs}
            if cache is not None:
                cache.put(key, arrays, meta)
        else:
            arrays, meta = hit
        results.append(
            _result(
                text,
                meta["tokens"],
                meta["positions"],
                meta["guess_tokens"],
                arrays["ids"],
                arrays["probabilities"],
                source,
                meta["truncated"],
            )  # fmt: skip
        )
    return FillMaskOverTraining(checkpoints=checkpoints, results=results)
