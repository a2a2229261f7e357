"""The masking lab: what BERT's masking does to one text, and how the model copes with each kind.

BERT selects 15% of the (non-special) tokens; of those, 80% become ``[MASK]``, 10% a random
token and 10% stay as they are (Devlin et al. 2019, Sec. 3.1 and Appendix C.2). The model must
predict the original token at every selected position. The lab shows, for one text and a seed,
which positions were selected, what each became, the model's guess and loss there, and the
accuracy by kind: the split docs/recipe.md reports (kept tokens are easy, [MASK] is the real
task, random tokens are hardest because the input lies).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from minibert.inspect.errors import InputTextError
from minibert.inspect.predictions import masked_lm_logits, require_masked_lm
from minibert.inspect.sources import LoadedModel, ModelSource, load_model
from minibert.inspect.tokens import encode_text

__all__ = ["KINDS", "MaskingLabResult", "apply_bert_masking", "masking_lab"]

KINDS = ("none", "mask", "random", "kept")  # index = MaskKind value of minibert.functional
_SELECTED_KINDS = ("mask", "random", "kept")


@dataclass
class MaskingLabResult:
    """One text through BERT's masking and the model; lists are per position (T of them)."""

    tokens: list[str]  # original word pieces
    inputs: list[str]  # what the model saw after masking
    kind: list[str]  # "none" | "mask" | "random" | "kept"
    predictions: list[str | None]  # the model's top guess at selected positions
    losses: list[float | None]  # cross-entropy (nats) at selected positions
    correct: list[bool | None]
    accuracy_by_kind: dict[str, float]  # "mask", "random", "kept", "all" (NaN when none)
    count_by_kind: dict[str, int]  # "mask", "random", "kept", "all"
    seed: int
    source: ModelSource
    mlm_probability: float = 0.15
    truncated: bool = False


def apply_bert_masking(
    tokenizer: Any,
    input_ids: torch.Tensor,
    *,
    seed: int,
    mlm_probability: float = 0.15,
    attention_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT's 80/10/10 masking of ``input_ids`` (B, T) with a seed: (masked ids, labels, kind).

    ``kind`` (B, T) holds indices into :data:`KINDS` (0 none, 1 [MASK], 2 random, 3 kept).

    This is the one place the lab calls the masking code: the pretraining collator's settings
    (:class:`minibert.data.examples.MaskingCollator`, seeded) applied through
    :func:`minibert.functional.mask_tokens`, which reports the kind of every position itself,
    so a random replacement that happens to draw the original token still counts as random.
    """
    from minibert.data.examples import MaskingCollator

    collator = MaskingCollator(tokenizer, mlm_probability=mlm_probability, seed=seed)
    masking = collator.mask(input_ids, attention_mask)
    return masking.input_ids, masking.labels, masking.kind.long()  # MaskKind order = KINDS


def _check_probability(mlm_probability: float) -> None:
    if not 0.0 < mlm_probability <= 1.0:
        raise InputTextError(f"mlm_probability must be in (0, 1], got {mlm_probability}")


def masking_lab(
    model_source: str | Path | torch.nn.Module | LoadedModel,
    text: str,
    *,
    seed: int = 0,
    mlm_probability: float = 0.15,
) -> MaskingLabResult:
    """Mask ``text`` as BERT's pretraining would (with ``seed``), then predict every selected
    position with the model; see the module docstring.

    Raises:
        InputTextError: empty text or a bad probability. UnsupportedModelError: no MLM head.
    """
    _check_probability(mlm_probability)
    loaded = load_model(model_source)
    require_masked_lm(loaded)
    tokenizer = loaded.tokenizer
    encoded = encode_text(tokenizer, loaded.config, text)
    masked, labels, kind = apply_bert_masking(
        tokenizer, encoded.input_ids, seed=seed, mlm_probability=mlm_probability
    )
    positions = (labels[0] != -100).nonzero().flatten()  # (M,)
    predictions: list[str | None] = [None] * len(encoded.tokens)
    losses: list[float | None] = [None] * len(encoded.tokens)
    correct: list[bool | None] = [None] * len(encoded.tokens)
    if positions.numel():
        logits = masked_lm_logits(
            loaded,
            masked,
            positions[None, :],
            attention_mask=encoded.attention_mask,
            token_type_ids=encoded.token_type_ids,
        )[0].float()  # (M, V)
        targets = labels[0, positions]  # (M,)
        loss = F.cross_entropy(logits, targets, reduction="none")  # (M,)
        guess = logits.argmax(dim=-1)  # (M,)
        names = tokenizer.convert_ids_to_tokens(guess.tolist())
        for index, position in enumerate(positions.tolist()):
            predictions[position] = names[index]
            losses[position] = float(loss[index])
            correct[position] = bool(guess[index] == targets[index])
    kinds = [KINDS[k] for k in kind[0].tolist()]
    counts, accuracy = summarize_kinds(kinds, correct)
    return MaskingLabResult(
        tokens=encoded.tokens,
        inputs=tokenizer.convert_ids_to_tokens(masked[0].tolist()),
        kind=kinds,
        predictions=predictions,
        losses=losses,
        correct=correct,
        accuracy_by_kind=accuracy,
        count_by_kind=counts,
        seed=seed,
        source=loaded.source,
        mlm_probability=mlm_probability,
        truncated=encoded.truncated,
    )


def summarize_kinds(
    kinds: Sequence[str], correct: Sequence[bool | None]
) -> tuple[dict[str, int], dict[str, float]]:
    """Counts and accuracy per kind ("mask", "random", "kept", "all"); NaN accuracy for none."""
    counts: dict[str, int] = {}
    accuracy: dict[str, float] = {}
    for name in (*_SELECTED_KINDS, "all"):
        hits = [
            c
            for k, c in zip(kinds, correct, strict=True)
            if (k == name or (name == "all" and k != "none"))
        ]
        counts[name] = len(hits)
        accuracy[name] = sum(bool(h) for h in hits) / len(hits) if hits else float("nan")
    return counts, accuracy
