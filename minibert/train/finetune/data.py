"""A task's examples as model inputs: sampled, tokenized once, padded per batch.

:func:`encode_split` tokenizes a split with the task encoders of :mod:`minibert.data.tasks` and
keeps the ids unpadded; :func:`collate` pads the examples of one batch to the longest of them,
so a batch of short sentences costs what they need. For tagging, every word is labelled on its
first WordPiece (Devlin et al. 2019, Sec. 5.3) and the other pieces get ``IGNORE_INDEX``,
which cross-entropy skips.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from minibert.constants import IGNORE_INDEX
from minibert.train.loop import derive_seed

__all__ = ["IGNORE_INDEX", "EncodedSplit", "batches", "collate", "encode_split", "sample_examples"]



def sample_examples(items: list, limit: int | None, seed: int, what: str) -> list:
    """A seeded random sample of ``limit`` items, in their original order (all if no limit)."""
    if limit is None or limit >= len(items):
        return items
    chosen = sorted(random.Random(derive_seed(seed, what)).sample(range(len(items)), limit))
    return [items[i] for i in chosen]


@dataclass
class EncodedSplit:
    """One split of a task as token ids, kept unpadded; batches are padded when built.

    ``labels[i]`` is a class id (sequence tasks) or one tag id per position, -100 off the first
    piece of each word (token tasks). ``word_positions[i]`` (token tasks) lists, for each word
    of example ``i`` that survived truncation, the position of its first piece.
    """

    name: str
    examples: list[Any]
    input_ids: list[list[int]]
    token_type_ids: list[list[int]]
    labels: list[Any]
    word_positions: list[list[int]] | None = None

    def __len__(self) -> int:
        return len(self.examples)

    def head(self, n: int) -> EncodedSplit:
        """The first ``n`` examples (all of them if there are fewer)."""
        if n >= len(self):
            return self
        return EncodedSplit(
            self.name,
            self.examples[:n],
            self.input_ids[:n],
            self.token_type_ids[:n],
            self.labels[:n],
            None if self.word_positions is None else self.word_positions[:n],
        )


def encode_split(
    name: str, examples: Sequence[Any], kind: str, tokenizer: Any, max_seq_len: int
) -> EncodedSplit:
    """Tokenize a split with :func:`~minibert.data.tasks.encode_sequence_task` or
    :func:`~minibert.data.tasks.encode_token_task` and remember where each word starts."""
    from minibert.data.tasks import encode_sequence_task, encode_token_task

    examples = list(examples)
    if kind == "sequence":
        encoded = encode_sequence_task(examples, tokenizer, max_seq_len)
        return EncodedSplit(
            name, examples, encoded["input_ids"], encoded["token_type_ids"], encoded["labels"]
        )
    encoded = encode_token_task(examples, tokenizer, max_seq_len)
    # The word behind every first piece (word_ids() of the same tokenization), so predictions
    # go back to words even if a word vanished in normalization.
    words = tokenizer(
        [list(e.words) for e in examples],
        is_split_into_words=True,
        truncation=True,
        max_length=max_seq_len,
    )
    positions: list[list[int]] = []
    for i, example in enumerate(examples):
        first = [-1] * len(example.words)
        previous = None
        for position, word in enumerate(words.word_ids(i)):
            if word is not None and word != previous:
                first[word] = position
            previous = word
        positions.append(first)
    return EncodedSplit(
        name,
        examples,
        encoded["input_ids"],
        encoded["token_type_ids"],
        encoded["labels"],
        word_positions=positions,
    )


def collate(
    split: EncodedSplit, indices: Sequence[int], pad_id: int, token_task: bool
) -> dict[str, torch.Tensor]:
    """Pad the examples at ``indices`` to the longest of them: (B, T) tensors, labels (B,) or
    (B, T) with -100 on padding; ``example_index`` (B,) says which example each row is."""
    width = max(len(split.input_ids[i]) for i in indices)
    rows = len(indices)
    input_ids = torch.full((rows, width), pad_id, dtype=torch.long)  # (B, T)
    token_type_ids = torch.zeros((rows, width), dtype=torch.long)  # (B, T)
    attention_mask = torch.zeros((rows, width), dtype=torch.long)  # (B, T)
    if token_task:
        labels = torch.full((rows, width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    else:
        labels = torch.empty(rows, dtype=torch.long)  # (B,)
    for row, i in enumerate(indices):
        ids = split.input_ids[i]
        n = len(ids)
        input_ids[row, :n] = torch.as_tensor(ids)
        token_type_ids[row, :n] = torch.as_tensor(split.token_type_ids[i])
        attention_mask[row, :n] = 1
        if token_task:
            labels[row, :n] = torch.as_tensor(split.labels[i])
        else:
            labels[row] = split.labels[i]
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "token_type_ids": token_type_ids,
        "labels": labels,
        "example_index": torch.as_tensor(list(indices), dtype=torch.long),
    }


def batches(n: int, size: int) -> list[list[int]]:
    """Indices ``0..n-1`` in consecutive batches of ``size`` (the last may be shorter)."""
    return [list(range(start, min(start + size, n))) for start in range(0, n, size)]
