"""WordPiece tokenizer training, saving, loading and a held-out quality report.

BERT (Devlin et al. 2019, Sec. 3, "Input/Output Representations") reads text as WordPiece tokens
(Wu et al. 2016) from a 30,000-entry vocabulary, lower-cased for the "uncased" models, with the
special tokens ``[CLS]`` (first position; its final state feeds the NSP/classification heads),
``[SEP]`` (ends each segment), ``[MASK]`` (the MLM corruption, Sec. 3.1), ``[PAD]`` and ``[UNK]``.

The tokenizer trained here is assembled from the same parts as Google's BERT tokenizer, so the
saved folder behaves like ``bert-base-uncased`` in ``transformers`` (token_type_ids, special
tokens mask, ``mask_token`` for the fill-mask pipeline):

* normalizer: ``BertNormalizer`` (control-character cleanup, CJK spacing, lower-casing and accent
  stripping when ``lowercase=True``);
* pre-tokenizer: ``BertPreTokenizer`` (split on whitespace and punctuation);
* model: ``WordPiece`` with the ``##`` continuation prefix;
* post-processor: ``[CLS] $A [SEP]`` and ``[CLS] $A [SEP] $B:1 [SEP]:1`` (segment B gets
  token type 1);
* decoder: ``WordPiece`` (joins ``##`` pieces back into words).

Special-token ids are fixed by their order in ``special_tokens``, which must start with
``[PAD]``; with the default order they are::

    [PAD]=0  [UNK]=1  [CLS]=2  [SEP]=3  [MASK]=4

``[PAD]`` is 0 because ``BertConfig.pad_token_id`` is 0 (the embedding row that padding uses).

transformers 5 pitfall: ``BertTokenizerFast(vocab_file=...)`` silently builds a 5-token
vocabulary. Always load a saved folder with :func:`load_tokenizer` (which calls
``AutoTokenizer.from_pretrained(dir)`` and checks the vocabulary size) or wrap a
``tokenizers.Tokenizer`` with ``tokenizer_object=``, as :func:`train_wordpiece` does.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: BERT's five special tokens, in the order that gives the ids documented above.
BERT_SPECIAL_TOKENS: tuple[str, ...] = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")

# role (the keyword transformers uses) -> the token text that must fill it
_SPECIAL_ROLES: dict[str, str] = {
    "pad_token": "[PAD]",
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "mask_token": "[MASK]",
}

# A saved folder is usable if it has the fast tokenizer file, or the BERT vocabulary file
# (from which transformers can rebuild the same WordPiece tokenizer).
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")


def _validate_training_settings(
    vocab_size: int, special_tokens: Sequence[str], min_frequency: int
) -> None:
    if isinstance(special_tokens, str):
        raise TypeError(
            "special_tokens must be a sequence of token strings such as "
            f"{BERT_SPECIAL_TOKENS!r}, not one string {special_tokens!r}."
        )
    missing = [tok for tok in BERT_SPECIAL_TOKENS if tok not in special_tokens]
    if missing:
        raise ValueError(
            f"special_tokens={tuple(special_tokens)!r} lacks {missing!r}; BERT needs all of "
            f"{BERT_SPECIAL_TOKENS!r} (extra tokens may follow them)."
        )
    if len(set(special_tokens)) != len(special_tokens):
        raise ValueError(
            f"special_tokens={tuple(special_tokens)!r} has duplicates; list each once."
        )
    if special_tokens[0] != "[PAD]":
        raise ValueError(
            f"special_tokens starts with {special_tokens[0]!r}, but '[PAD]' must come first so that "
            "its id is 0 (BertConfig.pad_token_id=0). Reorder the tuple."
        )
    if not isinstance(vocab_size, int) or isinstance(vocab_size, bool):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}.")
    if vocab_size <= len(special_tokens):
        raise ValueError(
            f"vocab_size={vocab_size} is too small: the {len(special_tokens)} special tokens "
            f"{tuple(special_tokens)!r} alone take {len(special_tokens)} ids and no room is left for "
            "word pieces. Use a vocab_size of at least a few hundred (BERT used 30,522; "
            "8,192 suits the small offline corpus)."
        )
    if min_frequency < 0:
        raise ValueError(f"min_frequency must be >= 0, got {min_frequency}.")


def _counting(texts: Iterable[str], counts: Counter) -> Iterator[str]:
    """Pass texts through, counting them and their characters (for logs and the size check)."""
    if isinstance(texts, str):
        raise TypeError(
            "texts must be an iterable of strings (one per document or line), not a single "
            "string; wrap it in a list: train_wordpiece([text])."
        )
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"texts must yield str, got {type(text).__name__}.")
        counts["texts"] += 1
        counts["chars"] += len(text)
        yield text


def train_wordpiece(
    texts: Iterable[str],
    vocab_size: int = 8192,
    lowercase: bool = True,
    min_frequency: int = 2,
    special_tokens: Sequence[str] = BERT_SPECIAL_TOKENS,
    show_progress: bool = False,
    *,
    limit_alphabet: int | None = 1000,
    model_max_length: int = 512,
) -> Any:
    """Train a BERT-style WordPiece tokenizer on ``texts`` and wrap it for ``transformers``.

    Args:
        texts: the training text, one string per document, paragraph or line (streamed once).
        vocab_size: the target vocabulary size, special tokens included. The trainer always keeps
            every character of the (limited) alphabet, so a tiny ``vocab_size`` on varied text can
            end a little larger; a warning says so.
        lowercase: lower-case and strip accents (BERT "uncased"); ``False`` keeps case and accents.
        min_frequency: a merged piece must occur at least this often to enter the vocabulary.
        special_tokens: must contain BERT's five and start with ``[PAD]`` (id 0).
        show_progress: the ``tokenizers`` trainer's own progress bar.
        limit_alphabet: keep at most this many distinct characters (rarer ones become ``[UNK]``);
            1000 is the value ``tokenizers``' BERT recipe uses. ``None`` keeps all.
        model_max_length: the longest input the model accepts (BERT: 512 positions).

    Returns:
        A ``transformers`` BERT fast tokenizer (``BertTokenizerFast``; the same class is called
        ``BertTokenizer`` in transformers 5) with pad/unk/cls/sep/mask tokens set.

    Raises:
        ValueError: ``vocab_size`` leaves no room beyond the special tokens, the special tokens
            are incomplete or misordered, or ``texts`` held no words to learn from.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers import trainers as tk_trainers

    special_tokens = tuple(special_tokens)
    _validate_training_settings(vocab_size, special_tokens, min_frequency)

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
    # strip_accents=None follows `lowercase`, as in BERT's uncased/cased models.
    backend.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=lowercase
    )
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer_kwargs: dict[str, Any] = {
        "vocab_size": vocab_size,
        "min_frequency": min_frequency,
        "special_tokens": list(special_tokens),
        "show_progress": show_progress,
        "continuing_subword_prefix": "##",
    }
    if limit_alphabet is not None:
        trainer_kwargs["limit_alphabet"] = limit_alphabet
    trainer = tk_trainers.WordPieceTrainer(**trainer_kwargs)

    counts: Counter = Counter()
    backend.train_from_iterator(_counting(texts, counts), trainer=trainer)
    learned = backend.get_vocab_size()
    if learned <= len(special_tokens):
        raise ValueError(
            f"The training text is too small: {counts['texts']} texts with {counts['chars']} "
            "characters gave no word pieces at all. Pass the cleaned corpus (an iterable of "
            "non-empty strings)."
        )
    if learned > vocab_size:
        logger.warning(
            "WordPiece vocabulary has %d entries, more than vocab_size=%d: the trainer keeps every "
            "character of the alphabet. Raise vocab_size or lower limit_alphabet.",
            learned,
            vocab_size,
        )

    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    backend.decoder = decoders.WordPiece(prefix="##")

    tokenizer = _wrap(
        backend,
        lowercase=lowercase,
        model_max_length=model_max_length,
        special_tokens=special_tokens,
    )
    logger.info(
        "Trained WordPiece: %d entries (target %d) from %d texts / %d characters; lowercase=%s",
        len(tokenizer),
        vocab_size,
        counts["texts"],
        counts["chars"],
        lowercase,
    )
    return tokenizer


def _wrap(
    backend: Any, *, lowercase: bool, model_max_length: int, special_tokens: Sequence[str]
) -> Any:
    """Wrap a ``tokenizers.Tokenizer`` as transformers' BERT fast tokenizer.

    ``tokenizer_object=`` keeps the trained vocabulary (the ``vocab_file=`` route is the
    transformers 5 pitfall). The BERT class, rather than the generic ``PreTrainedTokenizerFast``,
    returns ``token_type_ids`` by default and saves ``tokenizer_class: BertTokenizer(Fast)``.
    """
    from transformers import BertTokenizerFast

    extra = [tok for tok in special_tokens if tok not in BERT_SPECIAL_TOKENS]
    kwargs: dict[str, Any] = dict(_SPECIAL_ROLES)
    if extra:
        kwargs["additional_special_tokens"] = extra
    return BertTokenizerFast(
        tokenizer_object=backend,
        do_lower_case=lowercase,
        strip_accents=None,
        tokenize_chinese_chars=True,
        model_max_length=model_max_length,
        **kwargs,
    )


def special_token_ids(tokenizer: Any) -> dict[str, int]:
    """The id of each special token in id order, e.g. ``{"[PAD]": 0, "[UNK]": 1, ...}``."""
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in tokenizer.all_special_tokens}
    return dict(sorted(ids.items(), key=lambda item: item[1]))


def save_tokenizer(tokenizer: Any, directory: str | Path) -> Path:
    """Save ``tokenizer`` as a standard HF tokenizer folder and return the folder.

    Writes what ``save_pretrained`` writes (``tokenizer.json``, ``tokenizer_config.json``) plus
    BERT's ``vocab.txt`` (one token per line, line number = id), so the folder also works with
    tools that only read a BERT vocabulary (transformers' slow ``BertTokenizer``, the original
    TensorFlow BERT code).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(str(directory))
    vocab = tokenizer.get_vocab()
    by_id = sorted(vocab.items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise ValueError("The tokenizer's ids are not contiguous from 0; cannot write vocab.txt.")
    if any("\n" in tok for tok, _ in by_id):
        raise ValueError("A vocabulary entry contains a newline; cannot write vocab.txt.")
    (directory / "vocab.txt").write_text("".join(f"{tok}\n" for tok, _ in by_id), encoding="utf-8")
    logger.info("Saved tokenizer (%d entries) to %s", len(by_id), directory)
    return directory


def load_tokenizer(directory: str | Path) -> Any:
    """Load a tokenizer folder written by :func:`save_tokenizer` (or any BERT tokenizer folder).

    Calls ``transformers.AutoTokenizer.from_pretrained(directory)`` (local files only) and checks
    that the vocabulary is larger than the special tokens, which catches the transformers 5
    5-token pitfall.

    Raises:
        FileNotFoundError: the folder does not exist or has neither tokenizer.json nor vocab.txt.
        ValueError: the loaded tokenizer has no real vocabulary or lacks BERT's special tokens.
    """
    from transformers import AutoTokenizer

    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"Tokenizer folder {str(directory)!r} does not exist. Train one with "
            "train_wordpiece(...) and save it with save_tokenizer(tokenizer, dir)."
        )
    if not any((directory / name).is_file() for name in _TOKENIZER_FILES):
        present = sorted(p.name for p in directory.iterdir())
        raise FileNotFoundError(
            f"Tokenizer folder {str(directory)!r} has none of {list(_TOKENIZER_FILES)} "
            f"(it holds {present}). Save a tokenizer there with save_tokenizer(tokenizer, dir)."
        )
    if not (directory / "tokenizer_config.json").is_file():
        logger.warning(
            "%s has no tokenizer_config.json; special tokens and lower-casing may not be restored.",
            directory,
        )
    tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    n_special = len(tokenizer.all_special_tokens)
    if len(tokenizer) <= n_special:
        raise ValueError(
            f"The tokenizer loaded from {str(directory)!r} has only {len(tokenizer)} entries (its "
            "special tokens); the vocabulary was lost. Re-save it with save_tokenizer(...)."
        )
    missing = [role for role in _SPECIAL_ROLES if getattr(tokenizer, f"{role}_id", None) is None]
    if missing:
        raise ValueError(
            f"The tokenizer loaded from {str(directory)!r} has no {missing}; BERT pretraining needs "
            f"all of {list(_SPECIAL_ROLES)}."
        )
    return tokenizer


@dataclass
class TokenizerReport:
    """How well a vocabulary fits held-out text (Wu et al. 2016 motivate WordPiece by coverage).

    A *word* is what BERT's normalizer and pre-tokenizer produce (a run of letters/digits or a
    single punctuation character). ``*_coverage`` counts words that are one vocabulary entry,
    i.e. not split into pieces; ``unk_*_rate`` counts words WordPiece cannot spell at all (the
    whole word becomes ``[UNK]``).
    """

    vocab_size: int
    n_texts: int
    n_words: int  # running words (tokens of the pre-tokenizer)
    n_word_types: int  # distinct words
    n_pieces: int  # WordPiece tokens, specials excluded
    word_coverage: float  # fraction of running words that are a single vocab entry
    type_coverage: float  # fraction of distinct words that are a single vocab entry
    unk_word_rate: float  # fraction of running words mapped to [UNK]
    unk_type_rate: float  # fraction of distinct words mapped to [UNK]
    tokens_per_word: float  # n_pieces / n_words ("fertility")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return "\n".join(
            [
                f"vocabulary size        {self.vocab_size:,}",
                f"held-out texts         {self.n_texts:,}",
                f"words (types)          {self.n_words:,} ({self.n_word_types:,})",
                f"word pieces            {self.n_pieces:,}",
                f"word coverage          {self.word_coverage:.2%} of running words are one entry",
                f"type coverage          {self.type_coverage:.2%} of distinct words are one entry",
                f"[UNK] rate             {self.unk_word_rate:.3%} of words "
                f"({self.unk_type_rate:.3%} of types)",
                f"tokens per word        {self.tokens_per_word:.3f}",
            ]
        )


def tokenizer_report(tokenizer: Any, texts: Iterable[str]) -> TokenizerReport:
    """Measure vocabulary coverage, ``[UNK]`` rate and tokens per word on held-out ``texts``.

    Each distinct word is split by the WordPiece model once (held-out text has far fewer types
    than tokens), so the report on a few MB of text takes about a second.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of strings, not one string; wrap it in a list.")
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    normalizer, pre_tokenizer, model = backend.normalizer, backend.pre_tokenizer, backend.model
    unk_token = getattr(tokenizer, "unk_token", None) or "[UNK]"

    word_counts: Counter = Counter()
    n_texts = 0
    for text in texts:
        n_texts += 1
        if normalizer is not None:
            text = normalizer.normalize_str(text)
        words = (
            pre_tokenizer.pre_tokenize_str(text)
            if pre_tokenizer is not None
            else [(w, None) for w in text.split()]
        )
        word_counts.update(word for word, _ in words)
    if not word_counts:
        raise ValueError(
            f"The held-out texts ({n_texts} given) contain no words; pass non-empty held-out text."
        )

    n_words = n_pieces = whole_words = unk_words = 0
    whole_types = unk_types = 0
    for word, count in word_counts.items():
        pieces = [piece.value for piece in model.tokenize(word)]
        n_words += count
        n_pieces += len(pieces) * count
        if pieces == [unk_token]:
            unk_words += count
            unk_types += 1
        elif len(pieces) == 1:
            whole_words += count
            whole_types += 1
    n_types = len(word_counts)
    return TokenizerReport(
        vocab_size=len(tokenizer) if hasattr(tokenizer, "__len__") else backend.get_vocab_size(),
        n_texts=n_texts,
        n_words=n_words,
        n_word_types=n_types,
        n_pieces=n_pieces,
        word_coverage=whole_words / n_words,
        type_coverage=whole_types / n_types,
        unk_word_rate=unk_words / n_words,
        unk_type_rate=unk_types / n_types,
        tokens_per_word=n_pieces / n_words,
    )
