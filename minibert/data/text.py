"""Text primitives every cleaning step builds on: Unicode normalization and sentence splitting.

Normalization. We default to NFKC (Unicode Standard Annex #15), not NFC. NFC only composes
characters (``e`` + combining acute -> ``é``); NFKC also folds *compatibility* variants onto
their plain form: ligatures (``ﬁ`` -> ``fi``), full-width letters, non-breaking and thin spaces,
superscripts (``²`` -> ``2``) and the one-character ellipsis (``…`` -> ``...``). A WordPiece
vocabulary trained on NFC text spends entries on such look-alikes and splits words that differ
only in them; NFKC removes that noise at the price of a few real distinctions (``x²`` becomes
``x2``). Pass ``form="NFC"`` to keep them. This is the same trade-off BERT's own tokenizer makes
when it lowercases and strips accents (Devlin et al. 2019, §A.1 / the released ``BasicTokenizer``).

Sentence splitting. BERT's next-sentence task and its documents-of-sentences input format
(Devlin et al. 2019, §3.1 and §A.2) need sentences. NLTK's punkt model is not available
offline, so :func:`split_sentences` is a small rule-based splitter: a period, question mark or
exclamation mark (and any closing quotes or brackets after it) ends a sentence when whitespace
and a capitalised word follow, except after known abbreviations (``Dr.``, ``e.g.``, ``Fig.``),
initials (``J. R. R. Tolkien``) and dotted acronyms (``U.S.``). Those last two, and
abbreviations such as ``etc.`` that can also end a sentence, split only before a word that
commonly starts one (``The``, ``It``, ``In`` ...). Decimals (``3.14``) never split because no
whitespace follows their point. Newlines are hard boundaries: a line is never joined to the next.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["NORMALIZATION_FORMS", "normalize_text", "split_sentences"]

NORMALIZATION_FORMS = ("NFC", "NFKC", "NFD", "NFKD")

# Characters removed outright: C0/C1 control characters other than newline and tab, and
# invisible "format" characters (zero-width space, soft hyphen, byte-order mark, bidi marks)
# that would otherwise glue words together or split them invisibly.
_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u2028\u2029\u202a-\u202e\u2060-\u2064\ufeff]"
)
_HORIZONTAL_SPACE = re.compile(r"[^\S\n]+")  # any whitespace except newline
_MANY_NEWLINES = re.compile(r"\n{3,}")


def normalize_text(text: str, form: str | None = "NFKC") -> str:
    """Unicode-normalize ``text`` and tidy its whitespace, keeping paragraph structure.

    Steps: the Unicode normal form ``form`` (``"NFKC"`` by default, see the module docstring;
    ``None`` skips it), ``\\r\\n`` and ``\\r`` to ``\\n``, invisible control and format
    characters removed, every run of horizontal whitespace (tabs, no-break spaces) to one space,
    each line stripped, and three or more newlines to two, so a blank line still separates
    paragraphs. Returns the stripped result.
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_text expects a str, got {type(text).__name__}")
    if form is not None:
        if form not in NORMALIZATION_FORMS:
            raise ValueError(
                f"unknown Unicode normalization form {form!r}; use one of {NORMALIZATION_FORMS} or None"
            )
        text = unicodedata.normalize(form, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _INVISIBLE.sub("", text)
    text = _HORIZONTAL_SPACE.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _MANY_NEWLINES.sub("\n\n", text)
    return text.strip()


# --- sentence splitting -------------------------------------------------------------------


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


# Abbreviations that (almost) never end a sentence: a capitalised word after them is a name or
# a noun, as in "Dr. Smith", "Fig. 3", "cf. Jones", "vs. Germany". Lower-cased, without the dot.
_NEVER_FINAL = _words(
    """
    mr mrs ms mx dr prof rev fr sr hon gen col maj capt cmdr lt sgt cpl adm gov sen rep pres
    supt insp messrs mme mlle
    e.g i.e cf vs viz approx ca c fl b d
    fig figs eq eqs ch chap sec sect art vol vols p pp nos op no v brig
    """
)

# Abbreviations that often sit at the end of a sentence too ("... and so on, etc."): split
# after them only when the next word is a typical sentence opener (see _SENTENCE_OPENERS).
_SOMETIMES_FINAL = _words(
    """
    etc al inc ltd co corp bros jr st mt ft ave blvd rd dept univ assn est
    jan feb mar apr jun jul aug sep sept oct nov dec
    a.m p.m
    """
)

# Words that start sentences far more often than they follow an abbreviation or an initial.
# Used only to break the tie after "U.S.", "etc." or "J.": "in the U.S. The next year" splits,
# "the U.S. Army" does not.
_SENTENCE_OPENERS = _words(
    """
    a an the this that these those there here it its he she his her they their them we our
    i you in on at by for from to of with as after before during since until when while
    although though however but and or so yet if because despite following according
    many most some several both each all other another one two three such no not
    following later earlier then today now thus hence therefore also
    """
)

# A sentence-final run: one or more terminators, then closing quotes/brackets, then whitespace.
# Written so that matching stays linear in the line length, however long the line: the
# lookbehind lets a match start only at the first terminator of a run ("...", "?!"), and the
# possessive quantifiers (``++``, ``*+``) never give characters back, so a long run of dots
# or quotes is scanned once instead of once per starting position.
_BOUNDARY = re.compile(r"((?<![.!?])[.!?]++|\u2026)([\"'\u2019\u201d\u00bb)\]]*+)\s+")
_NEXT_WORD = re.compile(r"\S+")  # the word after a boundary (the boundary ate the whitespace)
_DOTTED_ACRONYM = re.compile(
    r"^(?:[A-Za-z]\.){2,}$"
)  # U.S. / e.g. / p.m. after the final dot is added back
_OPENING_PUNCTUATION = "\"'([{\u201c\u2018\u00ab"


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences with the rules in the module docstring.

    Every newline ends a sentence; blank lines are skipped. Returns the stripped, non-empty
    sentences in order. Rule-based, so it errs on rare patterns ("in Appendix A. See ...")
    but needs no model download.
    """
    if not isinstance(text, str):
        raise TypeError(f"split_sentences expects a str, got {type(text).__name__}")
    sentences: list[str] = []
    for line in text.split("\n"):
        line = line.strip()
        if line:
            sentences.extend(_split_line(line))
    return sentences


def _split_line(line: str) -> list[str]:
    # Linear in len(line): each boundary looks only at the word before it (back to the previous
    # boundary at most) and the word after it, never at the whole rest of the line. (An
    # earlier version sliced ``line[match.end():]`` at every full stop: 3.5 s for a 1.6 MB
    # line, hours for 50 MB; bench/bench_sentence_split.py keeps it for comparison.)
    pieces: list[str] = []
    start = 0  # where the current sentence starts
    previous_end = 0  # where the previous boundary's whitespace ended
    for match in _BOUNDARY.finditer(line):
        next_word = _NEXT_WORD.match(line, match.end())
        if next_word is None:
            break  # only whitespace follows: the rest is the last sentence
        if _ends_sentence(line, match, next_word.group(), previous_end):
            piece = line[start : match.end(2)].strip()
            if piece:
                pieces.append(piece)
            start = match.end()
        previous_end = match.end()
    rest = line[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _ends_sentence(line: str, match: re.Match[str], next_word: str, word_floor: int) -> bool:
    """Does the boundary ``match`` end a sentence? ``next_word`` is the word after it;
    ``word_floor`` is where the search for the word before it may stop (a word never reaches
    back past the previous boundary)."""
    terminators = match.group(1)
    first = next_word.lstrip(_OPENING_PUNCTUATION)[:1]
    # A sentence begins with a capital letter or a digit (or an opening quote before one).
    # Anything else -- "e.g. hammers", "p.m. on Monday", ", and" -- continues the sentence.
    if not first or not (first.isupper() or first.isdigit()):
        return False
    if "!" in terminators or "?" in terminators:
        return True
    if terminators in ("...", "\u2026") or len(terminators) > 1:
        return True  # an ellipsis before a capital: treat as the end of a trailing-off sentence
    # A single period: look at the word it ends.
    space = line.rfind(" ", word_floor, match.start(1))
    word_start = space + 1 if space >= 0 else word_floor
    word = line[word_start : match.start(1)].lstrip(_OPENING_PUNCTUATION)
    if not word or match.group(2):
        return True  # "... end." followed by a closing quote/bracket: a sentence inside quotes
    key = word.lower()
    opener = next_word.lstrip(_OPENING_PUNCTUATION).lower() in _SENTENCE_OPENERS
    if key in _NEVER_FINAL:
        # "No. 5" is an abbreviation; "He said no. Then ..." is a sentence end.
        return key == "no" and not first.isdigit()
    if key in _SOMETIMES_FINAL:
        return opener and not first.isdigit()
    if len(word) == 1 and word.isalpha() and word.isupper():
        return opener  # an initial: "J. R. R. Tolkien" vs "... Plan B. The"
    if _DOTTED_ACRONYM.match(word + "."):
        return opener  # "the U.S. Army" vs "the U.S. The"
    return True
