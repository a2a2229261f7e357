"""Lesson 00, the tour: small helpers for looking at a model before and after pretraining, and
the map of the lessons that follow.

The numbers come from :mod:`minibert.inspect` and the figures from :mod:`minibert.viz`; this
module only picks what to show first and lays out comparisons.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

# Sentences the tour fills in (written for it, not taken from the corpus).
FILL_MASK_SENTENCES: tuple[str, ...] = (
    "The river flows through the [MASK] of the city.",
    "She was born in [MASK] and studied at the university.",
    "The war ended with a peace [MASK] in 1648.",
)

# "# Lesson 01 · Tokenization: ..." as it appears in a percent-format source ("# " + heading).
_TITLE = re.compile(r"^#\s+#\s+Lesson\s+(\d\d)\s*[·:\-]\s*(.+)$", re.MULTILINE)


def offset_head(result: Any, offset: int = -1) -> tuple[int, int, float]:
    """The (layer, head) that puts the most weight on the token ``offset`` positions away
    (-1: the previous token), and that mean weight, over the non-special query tokens.

    A head that attends to the previous token is the easiest pattern to see in a heatmap: a
    bright line just below the diagonal.
    """
    attentions = np.asarray(result.attentions)  # (L, nh, T, T)
    special = np.asarray(result.special_mask, dtype=bool)  # (T,)
    queries = [
        q
        for q in range(attentions.shape[-1])
        if not special[q] and 0 <= q + offset < attentions.shape[-1] and not special[q + offset]
    ]
    if not queries:
        raise ValueError("the text is too short: no two neighbouring word pieces")
    weights = np.stack([attentions[:, :, q, q + offset] for q in queries], axis=-1)  # (L, nh, Q)
    mean = weights.mean(axis=-1)  # (L, nh)
    layer, head = np.unravel_index(int(np.argmax(mean)), mean.shape)
    return int(layer), int(head), float(mean[layer, head])


def untrained_twin(loaded: Any) -> Any:
    """A model with ``loaded``'s architecture and tokenizer but fresh random weights: what the
    pretraining run started from (seeded, so every student sees the same one)."""
    import torch

    from minibert.heads import BertForMaskedLM
    from minibert.inspect import load_model

    torch.manual_seed(0)
    return load_model(BertForMaskedLM(loaded.config).eval(), tokenizer=loaded.tokenizer)


def guesses_table(results: dict[str, Sequence[Any]], top_k: int = 3) -> str:
    """An HTML table: one row per sentence, one column per model, its top guesses with their
    probabilities. ``results`` maps a model's label to its ``FillMaskResult`` per sentence."""
    labels = list(results)
    rows = []
    for i, first in enumerate(results[labels[0]]):
        cells = [f"<td style='text-align:left'>{html.escape(first.text)}</td>"]
        for label in labels:
            guesses = results[label][i].guesses[0][:top_k]
            text = ", ".join(f"<b>{html.escape(g.token)}</b> {g.probability:.0%}" for g in guesses)
            cells.append(f"<td style='text-align:left'>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(
        f"<th style='text-align:left'>{html.escape(x)}</th>" for x in ["sentence", *labels]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def chance_loss(vocab_size: int) -> float:
    """The MLM loss of a model that spreads its guess evenly over the vocabulary: ln |V|."""
    return math.log(vocab_size)


def lesson_map(folder: str | Path | None = None) -> list[tuple[str, str, str]]:
    """(number, title, notebook file) for each lesson source found in ``notebooks/``, in order.

    Read from the notebooks themselves (their ``# Lesson NN · Title`` heading), so the map is
    never out of date. Empty outside a checkout (e.g. on Colab with only one notebook).
    """
    from minibert.lessons.build import lesson_sources, notebooks_dir

    try:
        sources = lesson_sources(folder if folder is not None else notebooks_dir())
    except FileNotFoundError:
        return []
    rows = []
    for source in sources:
        found = _TITLE.search(source.read_text(encoding="utf-8"))
        title = found.group(2).strip() if found else source.stem[3:].replace("-", " ")
        rows.append((source.stem[:2], title, source.with_suffix(".ipynb").name))
    return rows


def lesson_map_markdown(folder: str | Path | None = None) -> str:
    """:func:`lesson_map` as a Markdown table with links to the notebooks."""
    rows = lesson_map(folder)
    if not rows:
        return "_(the lesson notebooks are in the repository's `notebooks/` folder)_"
    lines = ["| lesson | topic |", "|---|---|"]
    lines += [f"| {number} | [{title}]({name}) |" for number, title, name in rows]
    return "\n".join(lines)
