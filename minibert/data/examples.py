"""Pretraining examples: document split, encoding, NSP pairs or packing, dynamic MLM masking.

BERT is pretrained on two tasks (Devlin et al. 2019, Sec. 3.1 and Appendix A.1):

* Next Sentence Prediction (NSP): the input is ``[CLS] A [SEP] B [SEP]`` where B is the segment
  that really follows A in the document 50% of the time and a segment from another document
  otherwise. Segment A has token type 0, segment B (and its ``[SEP]``) token type 1.
* Masked LM: 15% of the token positions are chosen for prediction; a chosen position is
  replaced by ``[MASK]`` 80% of the time, by a random token 10% of the time and left unchanged
  10% of the time. Only the chosen positions are predicted.

The example builder follows the logic of Google's ``create_pretraining_data.py`` in spirit
(written anew here): segments are made of whole sentences, the sequence usually fills
``max_seq_len`` but with probability ``short_seq_prob`` aims at a shorter random length (to
lessen the mismatch with short fine-tuning inputs), and an over-long pair is cut one token at a
time from the longer segment, at its front or back at random. Where this module departs from
that script it says so (see :func:`create_pretraining_examples`).

RoBERTa (Liu et al. 2019, Sec. 4.2) dropped NSP and packed sentences into full-length inputs;
``nsp=False`` builds such inputs (FULL-SENTENCES by default, DOC-SENTENCES on request).

Masking is *dynamic* (RoBERTa Sec. 4.1): :class:`MaskingCollator` draws a fresh mask every time
a batch is built, instead of fixing masks once in the data files as BERT did.

Shapes in the collator: ``B`` = batch size, ``T`` = padded sequence length, ``M`` = masked
positions per sequence, ``V`` = vocabulary size.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from typing import Any, TypeVar

import torch

from minibert.constants import IGNORE_INDEX
from minibert.functional import TokenMasking, mask_tokens, positions_from_labels

logger = logging.getLogger(__name__)

T_item = TypeVar("T_item")


PACKING_MODES = ("full_sentences", "doc_sentences", "token_stream")


# --------------------------------------------------------------------------------------------
# Train/validation split
# --------------------------------------------------------------------------------------------


def split_by_document(
    documents: Sequence[T_item], valid_fraction: float = 0.1, seed: int = 0
) -> tuple[list[T_item], list[T_item]]:
    """Split whole documents (never lines or sentences) into a training and a validation list.

    Splitting by document keeps text from the same article out of both sides, so validation loss
    measures generalization rather than memorized neighbouring sentences. The choice depends only
    on ``len(documents)``, ``valid_fraction`` and ``seed``; both lists keep the input order.

    Returns:
        ``(train, valid)`` with ``round(valid_fraction * n)`` validation documents, clamped so
        that each side has at least one.

    Raises:
        ValueError: fewer than two documents, or ``valid_fraction`` not strictly between 0 and 1.
    """
    if isinstance(documents, (str, bytes)):
        raise TypeError("documents must be a sequence of documents, not one string.")
    documents = list(documents)
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(
            f"valid_fraction must be strictly between 0 and 1, got {valid_fraction}; "
            "0.1 keeps a tenth of the documents for validation."
        )
    n = len(documents)
    if n < 2:
        raise ValueError(
            f"Cannot split {n} document(s) into training and validation by document: at least 2 "
            "are needed. Use a larger corpus (or fewer cleaning filters)."
        )
    n_valid = min(max(round(valid_fraction * n), 1), n - 1)
    valid_indices = set(random.Random(seed).sample(range(n), n_valid))
    train = [doc for i, doc in enumerate(documents) if i not in valid_indices]
    valid = [doc for i, doc in enumerate(documents) if i in valid_indices]
    return train, valid


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _plain_backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer``, without padding or truncation."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not hasattr(backend, "encode_batch"):
        raise TypeError(
            f"encode_documents needs a fast tokenizer (transformers' *TokenizerFast or a "
            f"tokenizers.Tokenizer), got {type(tokenizer).__name__}. Load one with load_tokenizer."
        )
    if backend.padding is not None or backend.truncation is not None:
        # A saved tokenizer may carry padding/truncation settings; they would corrupt sentence ids.
        from tokenizers import Tokenizer

        backend = Tokenizer.from_str(backend.to_str())
        backend.no_padding()
        backend.no_truncation()
    return backend


def encode_documents(
    documents: Sequence[Sequence[str]],
    tokenizer: Any,
    *,
    show_progress: bool = False,
    batch_size: int = 8192,
) -> list[list[list[int]]]:
    """Token ids per document, per sentence, without special tokens.

    ``documents`` is a sequence of documents, each a sequence of sentence strings (as the
    cleaning step's sentence splitter produces). All sentences are encoded in large batches by the
    Rust tokenizer, so a 3 MB corpus takes about a second. Empty sentences give empty lists; the
    structure of the input is kept exactly.
    """
    from tqdm.auto import tqdm

    backend = _plain_backend(tokenizer)
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)  # no offsets: faster
    sizes: list[int] = []
    sentences: list[str] = []
    for index, document in enumerate(documents):
        if isinstance(document, str):
            raise TypeError(
                f"Document {index} is a string; encode_documents expects each document as a list "
                "of sentences. Split it first (minibert.data.clean.split_sentences) or wrap it "
                "in a list."
            )
        sentences.extend(document)
        sizes.append(len(document))
    for index, sentence in enumerate(sentences):
        if not isinstance(sentence, str):
            raise TypeError(f"Sentence {index} is a {type(sentence).__name__}, not a str.")

    ids: list[list[int]] = []
    for start in tqdm(
        range(0, len(sentences), batch_size), desc="encode", unit="batch", disable=not show_progress
    ):
        ids.extend(
            enc.ids
            for enc in encode(sentences[start : start + batch_size], add_special_tokens=False)
        )
    encoded: list[list[list[int]]] = []
    offset = 0
    for size in sizes:
        encoded.append(ids[offset : offset + size])
        offset += size
    logger.info(
        "Encoded %d documents, %d sentences, %d tokens",
        len(encoded),
        len(sentences),
        sum(map(len, ids)),
    )
    return encoded


# --------------------------------------------------------------------------------------------
# Examples
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecialTokenIds:
    """The ids of BERT's special tokens (see :mod:`minibert.data.tokenizer` for their values)."""

    pad: int
    unk: int
    cls: int
    sep: int
    mask: int

    @classmethod
    def from_tokenizer(cls, tokenizer: Any) -> SpecialTokenIds:
        ids = {
            role: getattr(tokenizer, f"{role}_token_id", None)
            for role in ("pad", "unk", "cls", "sep", "mask")
        }
        missing = [role for role, value in ids.items() if value is None]
        if missing:
            raise ValueError(
                f"The tokenizer has no {[f'{m}_token' for m in missing]}; BERT pretraining needs "
                "[PAD] [UNK] [CLS] [SEP] [MASK]. Train it with train_wordpiece."
            )
        return cls(**ids)

    @classmethod
    def from_any(cls, value: Any) -> SpecialTokenIds:
        """Accept a tokenizer, a ``SpecialTokenIds`` or a mapping ``{"[CLS]": 2, ...}``."""
        if isinstance(value, SpecialTokenIds):
            return value
        if isinstance(value, Mapping):
            names = {
                "pad": "[PAD]",
                "unk": "[UNK]",
                "cls": "[CLS]",
                "sep": "[SEP]",
                "mask": "[MASK]",
            }
            missing = [tok for tok in names.values() if tok not in value]
            if missing:
                raise ValueError(
                    f"The special-token mapping lacks {missing}; pass a tokenizer or a mapping "
                    "with all of [PAD] [UNK] [CLS] [SEP] [MASK] (see special_token_ids())."
                )
            return cls(**{role: int(value[tok]) for role, tok in names.items()})
        return cls.from_tokenizer(value)


@dataclass
class PretrainingExample:
    """One pretraining input before masking.

    ``next_sentence_label`` follows transformers' convention: 0 = B really follows A,
    1 = B is a random segment; ``None`` for packed (no-NSP) inputs.
    """

    input_ids: list[int]
    token_type_ids: list[int]
    next_sentence_label: int | None = None

    def __len__(self) -> int:
        return len(self.input_ids)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PretrainingExample:
        return cls(
            input_ids=list(data["input_ids"]),
            token_type_ids=list(data["token_type_ids"]),
            next_sentence_label=data.get("next_sentence_label"),
        )


def truncated_lengths(len_a: int, len_b: int, max_tokens: int) -> tuple[int, int]:
    """Segment lengths after BERT's pair truncation, without the token-by-token loop.

    BERT removes one token at a time from the longer segment (from B on a tie) until the pair
    fits in ``max_tokens``; the result depends only on the lengths, so it has a closed form:
    shorten the longer segment down to the other's length, then split what is left to remove,
    B taking the odd token.
    """
    excess = len_a + len_b - max_tokens
    if excess <= 0:
        return len_a, len_b
    if len_a > len_b:
        first = min(excess, len_a - len_b)
        len_a -= first
    else:
        first = min(excess, len_b - len_a)
        len_b -= first
    rest = excess - first
    return len_a - rest // 2, len_b - (rest - rest // 2)


def _trim(tokens: list[int], new_length: int, rng: random.Random) -> list[int]:
    """Cut ``tokens`` to ``new_length``, each removed token taken from the front or the back with
    probability 1/2 (as BERT does, to avoid always cutting the same end).

    The number cut from the front is Binomial(k, 1/2), drawn exactly as the popcount of k random
    bits.
    """
    removed = len(tokens) - new_length
    if removed <= 0:
        return tokens
    from_front = bin(rng.getrandbits(removed)).count("1")
    return tokens[from_front : from_front + new_length]


def _target_length(max_tokens: int, short_seq_prob: float, rng: random.Random) -> int:
    if rng.random() < short_seq_prob:
        return rng.randint(2, max_tokens) if max_tokens >= 2 else max_tokens
    return max_tokens


def _nsp_examples_from_document(
    documents: list[list[list[int]]],
    doc_index: int,
    *,
    max_seq_len: int,
    short_seq_prob: float,
    ids: SpecialTokenIds,
    rng: random.Random,
) -> list[PretrainingExample]:
    """BERT's NSP instances from one document (sentences are lists of ids, none empty)."""
    document = documents[doc_index]
    max_tokens = max_seq_len - 3  # [CLS] A [SEP] B [SEP]
    examples: list[PretrainingExample] = []
    target = _target_length(max_tokens, short_seq_prob, rng)
    chunk: list[list[int]] = []
    chunk_len = 0
    i = 0
    while i < len(document):
        chunk.append(document[i])
        chunk_len += len(document[i])
        if i == len(document) - 1 or chunk_len >= target:
            # The coin is tossed first and then honoured whenever the document allows it, so the
            # labels are 50/50 (BERT's script forces "random" for every one-sentence chunk, which
            # skews its labels towards random by a few points).
            is_random_next = rng.random() < 0.5
            if not is_random_next and len(chunk) == 1 and i + 1 < len(document):
                i += 1  # a real B needs a second segment: take the following sentence
                chunk.append(document[i])
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = list(chain.from_iterable(chunk[:a_end]))
            if not is_random_next and len(chunk) == 1:
                # The document's last, lone sentence: its second half is still the real next text.
                if len(tokens_a) >= 2:
                    cut = rng.randint(1, len(tokens_a) - 1)
                    tokens_a, tokens_b = tokens_a[:cut], tokens_a[cut:]
                else:
                    is_random_next = True  # a one-token sentence cannot be split
            elif not is_random_next:
                tokens_b = list(chain.from_iterable(chunk[a_end:]))
            if is_random_next:
                target_b = target - len(tokens_a)
                other = rng.randrange(len(documents) - 1)
                other += other >= doc_index  # any document but this one, uniformly
                random_document = documents[other]
                tokens_b = []
                for sentence in random_document[rng.randrange(len(random_document)) :]:
                    tokens_b.extend(sentence)
                    if len(tokens_b) >= target_b:
                        break
                # The unused sentences of the chunk go back to be read again (as in BERT).
                i -= len(chunk) - a_end
            len_a, len_b = truncated_lengths(len(tokens_a), len(tokens_b), max_tokens)
            tokens_a = _trim(tokens_a, len_a, rng)
            tokens_b = _trim(tokens_b, len_b, rng)
            examples.append(
                PretrainingExample(
                    input_ids=[ids.cls, *tokens_a, ids.sep, *tokens_b, ids.sep],
                    token_type_ids=[0] * (len_a + 2) + [1] * (len_b + 1),
                    next_sentence_label=int(is_random_next),
                )
            )
            chunk, chunk_len = [], 0
            target = _target_length(max_tokens, short_seq_prob, rng)
        i += 1
    return examples


def _packed_examples(
    documents: list[list[list[int]]],
    order: Sequence[int],
    *,
    max_seq_len: int,
    short_seq_prob: float,
    cross_documents: bool,
    ids: SpecialTokenIds,
    rng: random.Random,
) -> list[PretrainingExample]:
    """RoBERTa-style inputs ``[CLS] s1 s2 ... [SEP]`` of whole sentences, without NSP."""
    capacity = max_seq_len - 2  # [CLS] ... [SEP]
    examples: list[PretrainingExample] = []
    buffer: list[int] = []
    target = _target_length(capacity, short_seq_prob, rng)

    def emit() -> None:
        nonlocal buffer, target
        if buffer:
            tokens = [ids.cls, *buffer, ids.sep]
            examples.append(PretrainingExample(tokens, [0] * len(tokens), None))
        buffer = []
        target = _target_length(capacity, short_seq_prob, rng)

    for position, doc_index in enumerate(order):
        new_document = position > 0
        for sentence in documents[doc_index]:
            # A sentence longer than a whole input is spread over consecutive inputs.
            for start in range(0, len(sentence), capacity):
                piece = sentence[start : start + capacity]
                separator = 1 if (new_document and buffer) else 0
                if buffer and len(buffer) + separator + len(piece) > target:
                    emit()
                    separator = 0
                if separator:
                    buffer.append(ids.sep)  # FULL-SENTENCES: mark the document boundary
                buffer.extend(piece)
                new_document = False
                if len(buffer) >= target:
                    emit()
        if not cross_documents:
            emit()
    emit()
    return examples


def _stream_examples(
    documents: list[list[list[int]]],
    order: Sequence[int],
    *,
    max_seq_len: int,
    short_seq_prob: float,
    ids: SpecialTokenIds,
    rng: random.Random,
) -> list[PretrainingExample]:
    """Inputs cut from one token stream: ``[CLS] <the next capacity tokens> [SEP]``.

    The documents (in ``order``, a ``[SEP]`` between two) form one stream that is cut at
    exactly the target length, mid-sentence if need be, so every input but the last is full
    (as GPT-2 and Cramming, Geiping & Goldstein 2022, pack their inputs). Whole-sentence packing
    leaves the end of most inputs empty because the next sentence does not fit; that padding
    costs compute and teaches nothing.
    """
    capacity = max_seq_len - 2  # [CLS] ... [SEP]
    stream: list[int] = []
    for position, doc_index in enumerate(order):
        if position > 0:
            stream.append(ids.sep)  # the document boundary, as in FULL-SENTENCES
        for sentence in documents[doc_index]:
            stream.extend(sentence)
    examples: list[PretrainingExample] = []
    start = 0
    while start < len(stream):
        if stream[start] == ids.sep:  # no input starts at a document boundary...
            start += 1
            continue
        piece = stream[start : start + _target_length(capacity, short_seq_prob, rng)]
        if piece[-1] == ids.sep:  # ...or ends on one (its own [SEP] follows)
            piece.pop()
        start += len(piece)
        tokens = [ids.cls, *piece, ids.sep]
        examples.append(PretrainingExample(tokens, [0] * len(tokens), None))
    return examples


def create_pretraining_examples(
    encoded_documents: Sequence[Sequence[Sequence[int]]],
    tokenizer_or_special_ids: Any,
    *,
    max_seq_len: int = 128,
    nsp: bool = True,
    short_seq_prob: float = 0.1,
    seed: int = 0,
    dupe_factor: int = 1,
    packing: str = "full_sentences",
) -> list[PretrainingExample]:
    """Build (unmasked) pretraining inputs from encoded documents.

    Args:
        encoded_documents: per document, per sentence, token ids without specials
            (:func:`encode_documents`). Empty sentences and documents are skipped.
        tokenizer_or_special_ids: a tokenizer, a :class:`SpecialTokenIds`, or a mapping
            ``{"[CLS]": 2, "[SEP]": 3, ...}``.
        max_seq_len: the length of every input including ``[CLS]``/``[SEP]`` (at most this).
        nsp: ``True`` builds BERT's ``[CLS] A [SEP] B [SEP]`` pairs with ``next_sentence_label``;
            ``False`` packs sentences without NSP (see ``packing``).
        short_seq_prob: the chance that an input aims at a random length in
            ``[2, max_seq_len - 3]`` instead of the full length (BERT: 0.1). Drawn afresh for
            every input (BERT's script draws it once per document).
        seed: every random choice comes from ``random.Random(seed)``: same inputs, same output.
        dupe_factor: how many passes over the data, each with different random segmentations
            (BERT used 10 with static masks; with dynamic masking 1 is usual).
        packing: for ``nsp=False``. ``"full_sentences"`` (RoBERTa's FULL-SENTENCES) fills each
            input with consecutive whole sentences and may cross into the next document, with
            a ``[SEP]`` marking the boundary; the document order is shuffled on each pass.
            ``"doc_sentences"`` (DOC-SENTENCES) never crosses a document boundary, so a
            document's last input may be short. A sentence longer than an input is split over
            consecutive inputs. ``"token_stream"`` concatenates the (shuffled) documents and
            cuts the stream into full inputs regardless of sentence boundaries: no padding.

    NSP details (Devlin et al. 2019, Sec. 3.1): sentences are gathered into a chunk until it
    reaches the target length; A is the first 1..n-1 sentences of the chunk; B is the rest of the
    chunk (label 0) or, with probability 1/2, sentences from a random other document starting at
    a random sentence (label 1), in which case the unused chunk sentences are read again. The
    label coin is honoured whenever possible (BERT's script forces "random" for one-sentence
    chunks): a one-sentence chunk takes the next sentence as B, and a document's final lone
    sentence is cut in two. The pair is then truncated from the longer segment, front or back at
    random.

    Returns:
        The examples, shuffled (seeded).

    Raises:
        ValueError: settings out of range, fewer than two non-empty documents with ``nsp=True``
            (a random B needs another document), or no tokens at all.
    """
    if packing not in PACKING_MODES:
        raise ValueError(f"packing must be one of {PACKING_MODES}, got {packing!r}.")
    min_len = 5 if nsp else 3  # room for one token per segment besides the specials
    if max_seq_len < min_len:
        raise ValueError(
            f"max_seq_len={max_seq_len} is too short: {'[CLS] A [SEP] B [SEP]' if nsp else '[CLS] x [SEP]'} "
            f"needs at least {min_len} positions. BERT used 128 and 512."
        )
    if not 0.0 <= short_seq_prob <= 1.0:
        raise ValueError(f"short_seq_prob must be in [0, 1], got {short_seq_prob}.")
    if dupe_factor < 1:
        raise ValueError(f"dupe_factor must be >= 1, got {dupe_factor}.")
    if isinstance(encoded_documents, (str, bytes)):
        raise TypeError("encoded_documents must be per-document lists of per-sentence id lists.")
    ids = SpecialTokenIds.from_any(tokenizer_or_special_ids)

    documents: list[list[list[int]]] = []
    for document in encoded_documents:
        sentences = [list(sentence) for sentence in document if len(sentence) > 0]
        if sentences:
            documents.append(sentences)
    n_tokens = sum(len(s) for d in documents for s in d)
    if n_tokens == 0:
        raise ValueError(
            f"The input is too small for a single sequence: the {len(encoded_documents)} "
            "documents hold no tokens. Check the corpus and the cleaning filters."
        )
    if nsp and len(documents) < 2:
        raise ValueError(
            f"NSP needs at least 2 non-empty documents (to draw random next segments), got "
            f"{len(documents)}. Use more text, or nsp=False to pack sentences without NSP."
        )

    rng = random.Random(seed)
    examples: list[PretrainingExample] = []
    for _ in range(dupe_factor):
        if nsp:
            for doc_index in range(len(documents)):
                examples.extend(
                    _nsp_examples_from_document(
                        documents,
                        doc_index,
                        max_seq_len=max_seq_len,
                        short_seq_prob=short_seq_prob,
                        ids=ids,
                        rng=rng,
                    )
                )
        else:
            order = list(range(len(documents)))
            if packing != "doc_sentences":
                rng.shuffle(order)
            if packing == "token_stream":
                examples.extend(
                    _stream_examples(
                        documents,
                        order,
                        max_seq_len=max_seq_len,
                        short_seq_prob=short_seq_prob,
                        ids=ids,
                        rng=rng,
                    )
                )
                continue
            examples.extend(
                _packed_examples(
                    documents,
                    order,
                    max_seq_len=max_seq_len,
                    short_seq_prob=short_seq_prob,
                    cross_documents=packing == "full_sentences",
                    ids=ids,
                    rng=rng,
                )
            )
    rng.shuffle(examples)
    logger.info(
        "Built %d %s examples (max_seq_len=%d) from %d documents / %d tokens",
        len(examples),
        "NSP" if nsp else packing,
        max_seq_len,
        len(documents),
        n_tokens,
    )
    return examples


# --------------------------------------------------------------------------------------------
# Dynamic masking
# --------------------------------------------------------------------------------------------


class MaskingCollator:
    """Pad a list of examples into a batch and mask it for MLM, anew on every call.

    BERT's recipe (Devlin et al. 2019, Sec. 3.1, Appendix C.2): of the tokens that are neither
    special (``[CLS]``, ``[SEP]``, ``[PAD]``, ``[UNK]``, ``[MASK]``) nor padding, a fraction
    ``mlm_probability`` is *selected*; a selected token becomes ``[MASK]`` with probability
    ``mask_replace_prob``, a random non-special token with probability ``random_replace_prob``,
    and stays itself otherwise. ``labels`` holds the original id at selected positions and -100
    elsewhere. The masking itself is :func:`minibert.functional.mask_tokens` (the reference a
    lesson checks against); this class pads, finds the special tokens and words, keeps the
    random stream, and adds ``masked_positions``.

    Selection modes:

    * default (``max_predictions=None``): every candidate (or word) is selected independently
      with probability ``mlm_probability`` (as transformers' collator and RoBERTa do), so 15% is
      exact in expectation for any sequence length. Should a whole batch come out with no
      selection at all (only plausible for a handful of very short inputs), one random candidate
      is selected so that the loss is defined.
    * fixed count (``max_predictions=M``, static shapes, as BERT's ``max_predictions_per_seq``):
      each sequence with ``n`` candidates gets exactly ``k = min(M, max(1, round(p * n)))``
      selected tokens (round half up), chosen uniformly without replacement; ``masked_positions``
      is then always ``(B, M)``. BERT used M=20 for 128 tokens (0.15 * 128 = 19.2).
    * ``whole_word_masking=True``: a word is a non-``##`` piece plus the ``##`` pieces after it
      (BERT's released whole-word-masking models). Whole words are selected (independently with
      ``mlm_probability``; in fixed-count mode, in random order while they fit into the budget of
      ``k`` tokens, skipping words that would overflow it, as BERT's script does), and the
      80/10/10 choice is made once per word: all its pieces become ``[MASK]``, or all become
      random tokens, or all stay.

    Randomness: with ``seed=None`` the collator draws from torch's global generator (so
    ``torch.manual_seed`` governs it, and DataLoader workers each get their own stream). With a
    ``seed`` it owns a ``torch.Generator``, which makes evaluation masks reproducible; call
    :meth:`reseed` to start the same sequence of masks again (e.g. before every evaluation).
    Do not give a seeded collator to a DataLoader with several workers: each worker would copy
    the same generator and draw the same masks.
    """

    def __init__(
        self,
        tokenizer: Any,
        *,
        mlm_probability: float = 0.15,
        mask_replace_prob: float = 0.8,
        random_replace_prob: float = 0.1,
        whole_word_masking: bool = False,
        max_predictions: int | None = None,
        return_masked_positions: bool = False,
        pad_to_multiple_of: int | None = None,
        seed: int | None = None,
    ) -> None:
        if not 0.0 < mlm_probability <= 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1], got {mlm_probability}.")
        if (
            mask_replace_prob < 0
            or random_replace_prob < 0
            or (mask_replace_prob + random_replace_prob > 1.0 + 1e-9)
        ):
            raise ValueError(
                f"mask_replace_prob={mask_replace_prob} and random_replace_prob="
                f"{random_replace_prob} must be >= 0 and sum to at most 1 (BERT: 0.8 and 0.1)."
            )
        if max_predictions is not None and max_predictions < 1:
            raise ValueError(
                f"max_predictions must be a positive int or None, got {max_predictions}."
            )
        if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
            raise ValueError(f"pad_to_multiple_of must be >= 1, got {pad_to_multiple_of}.")

        self.tokenizer = tokenizer
        self.special_ids = SpecialTokenIds.from_tokenizer(tokenizer)
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.whole_word_masking = whole_word_masking
        self.max_predictions = max_predictions
        self.return_masked_positions = return_masked_positions
        self.pad_to_multiple_of = pad_to_multiple_of

        vocab = tokenizer.get_vocab()
        self.vocab_size = max(len(tokenizer), max(vocab.values()) + 1)
        special = sorted(
            set(tokenizer.all_special_ids)
            | {
                self.special_ids.pad,
                self.special_ids.unk,
                self.special_ids.cls,
                self.special_ids.sep,
                self.special_ids.mask,
            }
        )
        self._is_special = torch.zeros(self.vocab_size, dtype=torch.bool)  # (V,)
        self._is_special[special] = True
        # Random replacements never produce a special token (it would teach nothing and could
        # fake a segment boundary).
        self._replacement_ids = (~self._is_special).nonzero().squeeze(1)  # (V - n_special,)
        if self._replacement_ids.numel() == 0:
            raise ValueError("The tokenizer has no non-special tokens to use as replacements.")
        self._is_continuation = torch.zeros(self.vocab_size, dtype=torch.bool)  # (V,)
        if whole_word_masking:
            continuation = [i for tok, i in vocab.items() if tok.startswith("##")]
            if not continuation:
                logger.warning(
                    "whole_word_masking=True but the vocabulary has no '##' pieces; every token "
                    "counts as a word of its own."
                )
            self._is_continuation[continuation] = True
        self.seed = seed
        self._generator: torch.Generator | None = None
        if seed is not None:
            self.reseed(seed)

    def reseed(self, seed: int) -> None:
        """Restart this collator's own random stream at ``seed`` (reproducible masks)."""
        self.seed = seed
        self._generator = torch.Generator().manual_seed(seed)

    # -- padding -----------------------------------------------------------------------------

    @staticmethod
    def _fields(example: Any) -> tuple[list[int], list[int] | None, list[int] | None, Any]:
        if isinstance(example, PretrainingExample):
            return example.input_ids, example.token_type_ids, None, example.next_sentence_label
        if isinstance(example, Mapping):
            if "input_ids" not in example:
                raise KeyError(f"An example has no 'input_ids' (keys: {sorted(example)}).")

            def as_list(value: Any) -> list[int] | None:
                return value.tolist() if hasattr(value, "tolist") else value

            label = example.get("next_sentence_label")
            if hasattr(label, "item"):
                label = label.item()
            return (
                as_list(example["input_ids"]),
                as_list(example.get("token_type_ids")),
                as_list(example.get("attention_mask")),
                label,
            )
        raise TypeError(
            f"MaskingCollator takes PretrainingExample objects or dicts with 'input_ids', got "
            f"{type(example).__name__}."
        )

    def pad(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Right-pad ``examples`` into ``input_ids``, ``attention_mask``, ``token_type_ids``
        (and ``next_sentence_label`` when every example has one); no masking."""
        if len(examples) == 0:
            raise ValueError("Cannot collate an empty list of examples.")
        rows = [self._fields(example) for example in examples]
        lengths = torch.tensor([len(row[0]) for row in rows])  # (B,)
        if int(lengths.min()) == 0:
            raise ValueError("An example has no input_ids; drop empty examples before collating.")
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = math.ceil(width / self.pad_to_multiple_of) * self.pad_to_multiple_of
        filled = torch.arange(width)[None, :] < lengths[:, None]  # (B, T); row-major = concat order
        batch_size = len(rows)

        input_ids = torch.full((batch_size, width), self.special_ids.pad, dtype=torch.long)
        input_ids[filled] = torch.tensor(
            list(chain.from_iterable(row[0] for row in rows)), dtype=torch.long
        )
        token_type_ids = torch.zeros((batch_size, width), dtype=torch.long)
        if all(row[1] is not None for row in rows):
            if any(len(row[1]) != len(row[0]) for row in rows):
                raise ValueError("token_type_ids and input_ids differ in length in an example.")
            token_type_ids[filled] = torch.tensor(
                list(chain.from_iterable(row[1] for row in rows)), dtype=torch.long
            )
        attention_mask = filled.long()
        if any(row[2] is not None for row in rows):  # a given mask wins (pre-padded inputs)
            for b, row in enumerate(rows):
                if row[2] is not None:
                    attention_mask[b, : len(row[2])] = torch.as_tensor(row[2], dtype=torch.long)
        batch = {
            "input_ids": input_ids,  # (B, T)
            "attention_mask": attention_mask,  # (B, T)
            "token_type_ids": token_type_ids,  # (B, T)
        }
        labels = [row[3] for row in rows]
        has_label = [label is not None for label in labels]
        if all(has_label):
            batch["next_sentence_label"] = torch.tensor(labels, dtype=torch.long)  # (B,)
        elif any(has_label):
            raise ValueError(
                "Some examples have a next_sentence_label and some do not; do not mix NSP and "
                "packed examples in one batch."
            )
        return batch

    # -- masking -----------------------------------------------------------------------------

    def mask(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> TokenMasking:
        """Mask a padded batch with :func:`minibert.functional.mask_tokens` and this collator's
        settings; returns its :class:`~minibert.functional.TokenMasking` (inputs, labels and
        which of MASK / RANDOM / KEPT each selected position got). ``input_ids`` is not
        modified."""
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}.")
        input_ids = input_ids.long()
        if input_ids.numel() and (
            int(input_ids.max()) >= self.vocab_size or int(input_ids.min()) < 0
        ):
            raise ValueError(
                f"input_ids hold ids outside the tokenizer's range [0, {self.vocab_size}); were "
                "they made with another tokenizer?"
            )
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        not_selectable = ~attention_mask.bool() | self._is_special[input_ids]  # (B, T)
        word_ids = None
        if self.whole_word_masking:
            # A "##" piece continues the word before it; every other token starts a new one.
            word_ids = torch.cumsum(~self._is_continuation[input_ids], dim=1)  # (B, T)
        return mask_tokens(
            input_ids,
            not_selectable,
            vocab_size=self.vocab_size,
            mask_token_id=self.special_ids.mask,
            mlm_probability=self.mlm_probability,
            mask_replace_prob=self.mask_replace_prob,
            random_replace_prob=self.random_replace_prob,
            word_ids=word_ids,
            generator=self._generator,
            max_predictions=self.max_predictions,
            replacement_ids=self._replacement_ids,
        )

    def mask_tokens(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mask a padded batch. Returns ``(masked_input_ids, labels)``, both ``(B, T)``
        (see :meth:`mask` for which kind of corruption each position got)."""
        masking = self.mask(input_ids, attention_mask)
        return masking.input_ids, masking.labels

    def __call__(self, examples: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Pad and mask ``examples``: ``input_ids``, ``attention_mask``, ``token_type_ids``,
        ``labels`` (B, T), ``next_sentence_label`` (B,) when every example has one, and
        ``masked_positions`` (B, M) when ``return_masked_positions``."""
        batch = self.pad(examples)
        original = batch["input_ids"]
        if self.return_masked_positions:
            first_is_special = self._is_special[original[:, 0].clamp(0, self.vocab_size - 1)]
            if not bool(first_is_special.all()):
                raise ValueError(
                    "masked_positions are padded with position 0, which must hold [CLS] (a "
                    "special token, never masked); some examples do not start with a special "
                    "token."
                )
        batch["input_ids"], batch["labels"] = self.mask_tokens(original, batch["attention_mask"])
        if self.return_masked_positions:
            # At least one column, so a batch with nothing to predict still has a (B, 1) shape.
            most = int((batch["labels"] != IGNORE_INDEX).sum(dim=1).max())
            width = self.max_predictions if self.max_predictions is not None else max(most, 1)
            batch["masked_positions"], _ = positions_from_labels(batch["labels"], width)  # (B, M)
        return batch

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(mlm_probability={self.mlm_probability}, "
            f"mask_replace_prob={self.mask_replace_prob}, "
            f"random_replace_prob={self.random_replace_prob}, "
            f"whole_word_masking={self.whole_word_masking}, "
            f"max_predictions={self.max_predictions}, "
            f"return_masked_positions={self.return_masked_positions}, seed={self.seed})"
        )
