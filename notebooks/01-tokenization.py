# %% [markdown]
# # Lesson 01 · Tokenization: from text to WordPiece pieces
#
# A BERT never sees letters or words: it sees integer ids from a fixed vocabulary. This lesson
# builds that step by hand and then measures it.
#
# **Learning objectives.** By the end you can
# 1. explain why BERT uses *subwords* rather than whole words or single characters;
# 2. pre-tokenize text the way BERT does (lower-case, split on whitespace and punctuation);
# 3. implement WordPiece's *greedy longest-match-first* split and check it against the
#    `tokenizers` library;
# 4. train a WordPiece vocabulary on our corpus and **measure** what its size buys: tokens per
#    word and the unknown-word rate;
# 5. compare our 8,192-entry vocabulary with the 30,522 entries of a real pretrained BERT
#    (MiniLM).
#
# **Prerequisites.** Python (lists, dicts, loops, `str` methods); no machine learning needed.
#
# **Time.** About 20 seconds to run on a 2-core laptop; a 50-minute class with the exercises.
#
# Exercises are marked **Exercise**: write the function in the cell, run it, then run the check
# below it. A check that fails tells you why; an exercise you skip does not stop the notebook
# (the cells after it use the reference). `lesson.solution("name")` prints one answer.

# %%
from minibert import lessons

lesson = lessons.start("01-tokenization")

# %%
from minibert.data import (
    DataConfig,
    prepare_corpus,
    prepare_data,
    tokenizer_report,
    train_wordpiece,
)
from minibert.lessons.lesson01 import (
    TOY_VOCAB,
    is_punctuation,
    minilm_tokenizer,
    oov_figure,
    show_pieces,
    sweep_figure,
    tokenizer_explorer,
    vocab_size_sweep,
    vocabulary_overlap,
    word_vocabulary_oov,
    words_of,
)

# %% [markdown]
# ## 1. The corpus
#
# Our BERT learns from a real English Wikipedia excerpt that ships inside the `gensim` package
# (so everything here runs offline). `prepare_corpus` parses the wiki markup, cleans and
# deduplicates it, and splits it by *document* into training and validation parts; it is cached
# on disk after the first run. We train vocabularies on the training documents only and measure
# them on the validation documents: text the tokenizer has never seen, like a student's essay
# would be.

# %%
corpus = prepare_corpus(DataConfig())
# Fast mode (CI) uses a few documents; the full lesson uses them all.
train_texts = [doc.text for doc in corpus.train_documents][: lesson.pick(full=None, fast=8)]
valid_texts = [doc.text for doc in corpus.valid_documents][: lesson.pick(full=None, fast=3)]
print(f"{len(train_texts)} training documents, {sum(map(len, train_texts)):,} characters")
print(f"{len(valid_texts)} validation documents, {sum(map(len, valid_texts)):,} characters")
print()
print(train_texts[0][:400], "...")

# %% [markdown]
# ## 2. Splitting text into words
#
# Before any vocabulary is involved, BERT's tokenizer *normalizes* the text (for the uncased
# models: lower-case, strip accents) and *pre-tokenizes* it: split on whitespace, and make every
# punctuation character a word of its own, so `"world!"` becomes `world` and `!`.
#
# ### Exercise 1: pre-tokenize
# Write `my_pre_tokenize(text)`: lower-case the text, split it on any run of whitespace, and
# split every punctuation character off as its own word. `is_punctuation(char)` (imported
# above) says which characters count. Leave accents alone.
#
# `my_pre_tokenize("Hello, World!")` should give `['hello', ',', 'world', '!']`.


# %% tags=["exercise"]
def my_pre_tokenize(text):
    """Lower-case `text`; split it on whitespace and around each punctuation character.

    Returns a list of str (no empty strings).
    """
    # YOUR CODE HERE (about 12 lines)
    raise NotImplementedError


# %%
pre_tokenize = lesson.check("pre_tokenize", my_pre_tokenize)
print(pre_tokenize("Hello, World! BERT's tokenizer (2019) splits this."))

# %% [markdown]
# ### Why not a vocabulary of whole words?
#
# The simplest vocabulary is the $|V|$ most frequent training words. A held-out word that is
# not among them is *out of vocabulary* (OOV) and would have to become one `[UNK]` id, losing
# everything about it. The share of held-out running words that are OOV is
#
# $$\text{OOV}(V) = \frac{\#\{\, i : w_i \notin V \,\}}{N},$$
#
# over the $N$ running words $w_1, \dots, w_N$ of the validation text.

# %%
train_words = words_of(train_texts, pre_tokenize)
valid_words = words_of(valid_texts, pre_tokenize)
print(f"{len(train_words):,} running training words, {len(set(train_words)):,} distinct")
word_rows = word_vocabulary_oov(train_words, valid_words, [1000, 2000, 4000, 8192, 16384, 32768])
oov_figure(word_rows).show()
at_8192 = next(r for r in word_rows if r["requested"] == 8192)
print(
    f"With the 8,192 most frequent training words, {at_8192['oov_rate']:.1%} of held-out "
    "running words are unknown."
)

# %% [markdown]
# Even a large word vocabulary leaves a tail of unknown words (names, numbers, rare
# inflections), and the curve flattens: each doubling buys less. The other extreme, one token
# per *character*, never meets an unknown word but makes every word several tokens long, and
# attention's cost grows with the square of the sequence length. Subwords sit in between:
# frequent words stay whole, rare words are spelled from frequent pieces.

# %%
characters_per_word = sum(map(len, valid_words)) / len(valid_words)
print(f"Character-level tokens per word on the held-out text: {characters_per_word:.2f}")

# %% [markdown]
# ## 3. WordPiece: greedy longest match first
#
# Given a vocabulary $V$, WordPiece splits one word $w = c_1 c_2 \cdots c_n$ from the left.
# At position $s$ it takes the **longest** piece that is in the vocabulary,
#
# $$e^\ast = \max \{\, e \ge s : \mathrm{piece}(s, e) \in V \,\},\qquad
# \mathrm{piece}(s, e) = \begin{cases} c_s \cdots c_e & s = 1\\
# \texttt{\#\#}\,c_s \cdots c_e & s > 1 \end{cases}$$
#
# emits $\mathrm{piece}(s, e^\ast)$ and continues at $s = e^\ast + 1$. Pieces inside a word carry
# the `##` prefix, so `able` (a word) and `##able` (a suffix) are different entries. If at some
# position *no* piece matches, the **whole word** becomes the single token `[UNK]`.
#
# BERT's example: with `un`, `##aff`, `##able` in the vocabulary, `unaffable` becomes
# `un ##aff ##able`.
#
# ### Exercise 2: WordPiece
# Write `my_wordpiece(word, vocab)` for one (already lower-cased) word; `vocab` supports
# `piece in vocab`. Return the list of pieces.


# %% tags=["exercise"]
def my_wordpiece(word, vocab):
    """Split `word` into the longest vocabulary pieces from the left ("##" inside the word).

    Returns a list of str; ["[UNK]"] if some part of the word matches no entry.
    """
    # YOUR CODE HERE (about 15 lines)
    raise NotImplementedError


# %%
wordpiece = lesson.check("wordpiece", my_wordpiece)
print(wordpiece("unaffable", TOY_VOCAB))

# %% [markdown]
# ### Your WordPiece on a real vocabulary
#
# The tokenizer our BERT is trained with has 8,192 entries, learned from the training
# documents (next section shows how). Run the WordPiece above with that vocabulary on held-out
# words and compare, word by word, with the `tokenizers` library's Rust implementation.

# %%
data = prepare_data(DataConfig())  # the corpus above plus our tokenizer (cached)
ours = data.tokenizer
backend = ours.backend_tokenizer
vocab = set(ours.get_vocab())
held_out = sorted(
    {
        word
        for text in valid_texts
        for word, _ in backend.pre_tokenizer.pre_tokenize_str(
            backend.normalizer.normalize_str(text)
        )
        if len(word) <= 100  # the library maps longer "words" to [UNK] without trying
    }
)[: lesson.pick(full=5000, fast=500)]
agree = [wordpiece(w, vocab) == [t.value for t in backend.model.tokenize(w)] for w in held_out]
print(f"same pieces as the library on {sum(agree):,} of {len(agree):,} distinct held-out words")
for word in ["tokenization", "anarchists", "photosynthesis", "unbelievably", "1648"]:
    print(f"{word:>16} -> {' '.join(wordpiece(word, vocab))}")

# %% [markdown]
# ## 4. Learning the vocabulary: the `tokenizers` trainer
#
# Where do the pieces come from? WordPiece training starts from single characters and
# repeatedly adds a merged piece $ab$ of two existing pieces until the vocabulary has the size
# asked for. The original WordPiece (Schuster & Nakajima 2012) picks the pair that most raises
# the training text's likelihood, roughly the pair with the highest
#
# $$\mathrm{score}(a, b) = \frac{f(ab)}{f(a)\, f(b)},$$
#
# where $f$ counts occurrences; the `tokenizers` library's `WordPieceTrainer` merges by pair
# frequency, like BPE, and then stores the result as a WordPiece vocabulary (with `##`
# continuation pieces), which is what `minibert.data.train_wordpiece` uses. Either way,
# frequent words end up whole and rare words are spelled from frequent pieces.
#
# Below: one sentence split by a 1,000-entry vocabulary trained right now, by ours (8,192) and
# by MiniLM's (30,522, trained by Google on Wikipedia and books). Each tile is one token;
# `[UNK]` is red.

# %%
small = train_wordpiece(train_texts, vocab_size=1000)
minilm = minilm_tokenizer()
compared = {"1,000 (just trained)": small, "8,192 (ours)": ours, "30,522 (MiniLM)": minilm}
show_pieces(compared, "The anarchists' newspapers were unbelievably influential in 1848.")

# %% [markdown]
# Try your own text (in Jupyter or VS Code, the pieces update as you type):

# %%
tokenizer_explorer(compared)

# %% [markdown]
# ## 5. Measuring a vocabulary
#
# Two numbers describe how well a vocabulary fits text. Over the $N$ running held-out words,
#
# $$\text{tokens per word} = \frac{1}{N}\sum_{i=1}^{N} \big|\mathrm{pieces}(w_i)\big|,
# \qquad
# \text{[UNK] rate} = \frac{\#\{\, i : \mathrm{pieces}(w_i) = [\texttt{[UNK]}] \,\}}{N}.$$
#
# Tokens per word ("fertility") sets how long the model's inputs are; the `[UNK]` rate is the
# share of words the model cannot read at all.
#
# ### Exercise 3: the two numbers
# Write `my_subword_stats(tokenized_words)`, where `tokenized_words` is a list with one entry
# per running word, each the list of that word's pieces. Return
# `(tokens_per_word, unk_rate)`.


# %% tags=["exercise"]
def my_subword_stats(tokenized_words):
    """(tokens per word, [UNK] rate) over the running words in `tokenized_words`."""
    # YOUR CODE HERE (about 4 lines)
    raise NotImplementedError


# %%
subword_stats = lesson.check("subword_stats", my_subword_stats)
tokenized = [
    [t.value for t in backend.model.tokenize(word)]
    for text in valid_texts
    for word, _ in backend.pre_tokenizer.pre_tokenize_str(backend.normalizer.normalize_str(text))
]
mine = subword_stats(tokenized)
library = tokenizer_report(ours, valid_texts)
print(f"your numbers: tokens per word {mine[0]:.3f}, [UNK] rate {mine[1]:.4%}")
print(
    f"minibert's:   tokens per word {library.tokens_per_word:.3f}, [UNK] rate {library.unk_word_rate:.4%}"
)

# %% [markdown]
# ### Vocabulary size against tokens per word and [UNK] rate
#
# Now train vocabularies of several sizes on the training documents and measure each on the
# held-out documents (`tokenizer_report` computes the two numbers above). Our 8,192 and
# MiniLM's 30,522 are marked; MiniLM's was trained on different text, so it is measured on
# *our* held-out text like the rest.

# %%
sizes = lesson.pick(full=[500, 1000, 2000, 4000, 8192, 16384], fast=[500, 1000, 4000])
sweep = vocab_size_sweep(train_texts, valid_texts, sizes)
ours_report = tokenizer_report(ours, valid_texts).to_dict()
minilm_report = tokenizer_report(minilm, valid_texts).to_dict()
rows = [("trained now", r) for r in sweep] + [("ours", ours_report), ("MiniLM", minilm_report)]
print(f"{'':<12} {'vocabulary':>10} {'tokens/word':>12} {'[UNK] rate':>11} {'whole words':>12}")
for label, row in rows:
    print(
        f"{label:<12} {row['vocab_size']:>10,} {row['tokens_per_word']:>12.3f} "
        f"{row['unk_word_rate']:>11.4%} {row['word_coverage']:>12.1%}"
    )
sweep_figure(sweep, {"ours (8,192)": ours_report, "MiniLM (30,522)": minilm_report}).show()

# %% [markdown]
# Read the table and the figure (the numbers are this run's own):
#
# * **Tokens per word falls as the vocabulary grows, with diminishing returns**: the first
#   thousand entries do most of the work; later entries are ever rarer words.
# * **The [UNK] rate is close to zero for every size.** Unlike a word vocabulary, WordPiece
#   keeps every character of its alphabet as a piece, so almost any word can be spelled; only
#   characters outside the alphabet (rare scripts, symbols) give `[UNK]`.
# * **Size costs parameters.** Every entry is a row of the embedding matrix (and of the MLM
#   output layer): $|V| \times H$ numbers. The cell below counts them for our tiny BERT and for
#   MiniLM.

# %%
from minibert.config import BertConfig

tiny = BertConfig.preset("tiny", vocab_size=len(ours))
for name, size, hidden in [("ours", len(ours), tiny.hidden_size), ("MiniLM", len(minilm), 384)]:
    print(
        f"{name:>7}: {size:,} entries x {hidden} dimensions = {size * hidden:,} embedding numbers"
    )

# %% [markdown]
# ## 6. Our vocabulary against MiniLM's
#
# MiniLM's vocabulary is Google's `bert-base-uncased` one: learned from a far larger corpus,
# so it holds many words our small corpus never showed often enough. How much do the two share,
# and where do they split differently?

# %%
from collections import Counter

overlap = vocabulary_overlap(ours, minilm)
print(
    f"ours: {overlap['ours']:,} entries, MiniLM: {overlap['theirs']:,}, shared: "
    f"{overlap['shared']:,} ({overlap['shared'] / overlap['ours']:.0%} of ours)"
)
# The most frequent held-out words that the two vocabularies split differently:
different = [
    word
    for word, _ in Counter(valid_words).most_common()
    if len(word) > 6 and len(ours.tokenize(word)) != len(minilm.tokenize(word))
][:8]
for word in different:
    print(
        f"{word:>18}: ours {' '.join(ours.tokenize(word)):<32} MiniLM {' '.join(minilm.tokenize(word))}"
    )

# %% [markdown]
# ## Recap
#
# * BERT reads **subwords**: frequent words whole, rare words spelled from pieces, so almost
#   nothing is unknown and inputs stay short.
# * Pre-tokenization (lower-case, whitespace, punctuation) comes first; then **WordPiece** takes
#   the longest vocabulary piece from the left, marks inner pieces with `##`, and turns a word it
#   cannot spell into one `[UNK]`.
# * A vocabulary is **learned** from the training text and **measured** on held-out text:
#   tokens per word falls with size, with diminishing returns; every entry costs $H$ embedding
#   parameters.
#
# ## Things to try
#
# 1. Train a vocabulary with `lowercase=False` (`train_wordpiece(train_texts, 8192,
#    lowercase=False)`): how much do tokens per word and the vocabulary overlap change?
# 2. Tokenize a sentence in another language, or code, with ours and with MiniLM's. Which
#    gives `[UNK]`, and why?
# 3. Measure the out-of-vocabulary rate of MiniLM's vocabulary *as whole words* on our
#    held-out text and compare it with its `[UNK]` rate.
# 4. Lesson 02 (attention) uses these ids: every piece becomes one position the model attends
#    over.

# %%
lesson.done()
