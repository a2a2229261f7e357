# %% [markdown]
# # Lesson 04 · Pretraining data: what the model reads decides what it learns
#
# A BERT learns only from the text it is given. Which text, how much, how varied and how clean
# is the decision everything else in this kit rests on. This lesson walks a real Wikipedia dump
# from raw markup to the clean, deduplicated text our BERT trains on, and then **measures**
# what the cleaning changes.
#
# **Learning objectives.** By the end you can
# 1. say where BERT-style pretraining text comes from and why scale, diversity and quality
#    matter;
# 2. follow raw wikitext to plain prose, and read a cleaning report: each quality rule, what it
#    removed, with examples;
# 3. write a quality rule (Gopher's stop-word test) and check it;
# 4. find exact and near duplicates: word shingles, Jaccard similarity, MinHash signatures and
#    locality-sensitive hashing, on duplicates you plant yourself;
# 5. read corpus statistics before and after cleaning;
# 6. run a small, fair experiment: the same pretraining budget on raw, duplicated and cleaned
#    text, measured on the same held-out text.
#
# **Prerequisites.** Python (sets, dicts, list comprehensions); lesson 01 (tokenization) helps.
# Probability at the level of "the chance that two events both happen".
#
# **Time.** About 3 minutes to run on a 2-core laptop (six small pretraining runs); a 50-minute
# class with the exercises.
# Exercises are marked **Exercise**; a check below each one explains what is wrong, and a
# skipped exercise never stops the notebook. `lesson.solution("name")` prints one answer.

# %%
from minibert import lessons

lesson = lessons.start("04-pretraining-data")

# %%
import random
import re  # for exercise 2

from minibert.data import dedup
from minibert.data.clean import CleaningConfig, clean_corpus
from minibert.data.corpora import load_corpus
from minibert.data.pipeline import DataConfig, prepare_data
from minibert.data.stats import compare_stats, snippet
from minibert.data.wikitext import parse_wikitext
from minibert.lessons.lesson04 import (
    MERSENNE_PRIME,
    STOP_WORDS,
    STRIP,
    ablation_config,
    ablation_figure,
    ablation_table,
    band_probability,
    base_hash,
    deduplicate,
    duplicated_corpus,
    encode_texts,
    estimate_jaccard,
    hash_params,
    lsh_candidates,
    lsh_curve_figure,
    plant_duplicates,
    raw_training_texts,
    removal_rows,
    reports_figure,
    train_arm,
    web_like_documents,
    what_removed,
)

# %% [markdown]
# ## 1. Where pretraining text comes from
#
# BERT (Devlin et al. 2019, §3.1) pretrained on **BooksCorpus** (800M words) and **English
# Wikipedia** (2,500M words, "text passages only, ignoring lists, tables and headers"), and
# stressed that a *document-level* corpus matters: sentence pairs and long spans must come from
# one coherent text, not shuffled sentences. RoBERTa (Liu et al. 2019) added news, web text and
# stories, 160 GB in all, and found more data alone improved every task. T5's C4 (Raffel et al.
# 2020) and Gopher's MassiveText (Rae et al. 2021) filtered hundreds of gigabytes of web crawl
# with simple, published rules; those rules are the ones in `minibert.data.filters`.
#
# Three properties decide what a model can learn from a corpus:
# * **scale**: more distinct text, more facts and patterns (and more compute to use them);
# * **diversity**: topics, styles and registers the model will later meet;
# * **quality**: prose rather than markup, menus, spam or the same page a thousand times.
#
# Our corpus is tiny but real: an excerpt of an English Wikipedia XML dump that ships inside
# the `gensim` package (read in place, offline). Here is one article exactly as the dump
# stores it: **wikitext**, with templates `{{...}}`, links `[[...]]`, references and tables.

# %%
raw_documents = list(load_corpus("wiki-sample", raw_markup=True))
raw_chars = sum(len(doc.text) for doc in raw_documents)
print(f"{len(raw_documents)} articles, {raw_chars:,} characters of raw wikitext")
article = raw_documents[0]
print(f"\n--- {article.title} (raw, first 700 characters) ---")
print(article.text[:700])

# %% [markdown]
# ## 2. From raw wikitext to clean text
#
# `parse_wikitext` turns one page into paragraphs of plain prose: it keeps a link's visible
# text, drops templates, references, tables, files, HTML, maths and the reference-type
# sections at the end ("References", "External links", ...), and counts everything it cut.

# %%
parsed = parse_wikitext(article.text)
plain = "\n\n".join(p.text for p in parsed.paragraphs)
print(f"{article.title}: {parsed.source_chars:,} characters of wikitext -> {len(plain):,} of prose")
print("what was cut (count):", dict(parsed.removed.most_common(8)))
print(f"\n--- {article.title} (parsed, first 700 characters) ---")
print(plain[:700])

# %% [markdown]
# ## 3. Quality filters, one rule at a time
#
# After parsing, the cleaning chain (`minibert.data.clean`) runs line rules from C4 (drop lines
# without terminal punctuation, boilerplate such as cookie notices, citation markers) and
# document rules from C4 and Gopher (too few sentences or words, odd mean word length, too many
# symbols or digits, too few stop words, repeated lines, "lorem ipsum", curly brackets), then
# exact and near-duplicate removal. Every step reports what it removed, with examples.
# `prepare_data` runs the whole pipeline on our corpus (cached after the first run; the first
# run takes about a minute).

# %%
data = prepare_data(DataConfig())
print(data.report_table())

# %% [markdown]
# Read the table from the top: the `wikitext` step does most of the work (markup is most of
# the bytes); the rules after it remove little, because Wikipedia is edited prose. Below, each
# step that removed or changed something, with one example of what it caught, and the number
# of documents and bytes left after each step.

# %%
for row in removal_rows(data.reports):
    print(
        f"{row['step']:<22} removed {row['docs removed']:>3} docs, changed {row['docs changed']:>3},"
        f" {row['bytes removed']:>10,} bytes"
    )
    if row["example"]:
        print(f"    e.g. {snippet(row['example'], 150)}")
reports_figure(data.reports).show()

# %% [markdown]
# A web crawl is another matter. Below are eight short documents of the kinds a crawl is full
# of (written for this lesson, one per rule) run through the **same** chain:

# %%
web = web_like_documents()
web_cleaned = clean_corpus(web, CleaningConfig(max_examples=50))
for doc_id, verdict in what_removed(web_cleaned.reports, [d.id for d in web]).items():
    print(f"{doc_id:<20} {snippet(verdict, 110)}")

# %% [markdown]
# ### Exercise 1: a quality rule
#
# Gopher (Rae et al. 2021, App. A.1.1) keeps a document only if it contains at least two of
# eight English stop words, a cheap test for "is this running English prose?":
#
# $$\text{remove}(d) \iff \big|\, \{\, \mathrm{norm}(w) : w \in d \,\} \cap S \,\big| < k,
# \qquad S = \{\text{the, be, to, of, and, that, have, with}\},\; k = 2,$$
#
# where $w$ runs over the whitespace-separated words of $d$ and $\mathrm{norm}$ lower-cases a
# word and strips punctuation from both ends (`word.strip(STRIP).lower()`). Write
# `my_too_few_stop_words(text, min_count=2)`, returning `True` when the document should be
# **removed**. `STOP_WORDS` and `STRIP` are imported above.


# %% tags=["exercise"]
def my_too_few_stop_words(text, min_count=2):
    """True if `text` contains fewer than `min_count` *distinct* Gopher stop words."""
    # YOUR CODE HERE (about 3 lines)
    raise NotImplementedError


# %%
too_few_stop_words = lesson.check("too_few_stop_words", my_too_few_stop_words)
removed = [doc.id for doc in web if too_few_stop_words(doc.text)]
kept_wiki = sum(not too_few_stop_words(doc.text) for doc in data.train_documents)
print(f"your rule removes these web documents: {removed}")
print(f"and keeps {kept_wiki} of {len(data.train_documents)} cleaned Wikipedia articles")

# %% [markdown]
# ## 4. Duplicates
#
# Crawls repeat themselves: mirrors, syndicated news, templates, boilerplate pages. Lee et al.
# (2022) found near-duplicates in every large corpus they examined, and that models trained on
# deduplicated data emit memorised text far less often; Hernandez et al. (2022) found that
# repeating a small part of the data many times hurts more than its share.
#
# **Exact duplicates** are easy: hash a canonical form of each text (case-folded, whitespace
# collapsed) and keep the first text with each hash (`dedup.exact_duplicates`).
#
# **Near duplicates** need a similarity. Cut each text into **shingles**, the set of its
# overlapping word $n$-grams ($n = 5$ here), and compare sets with the **Jaccard similarity**
#
# $$J(A, B) = \frac{|A \cap B|}{|A \cup B|} \in [0, 1].$$
#
# One changed word changes at most $n$ shingles, so a lightly edited copy keeps a high $J$.
#
# ### Exercise 2: Jaccard similarity of shingle sets
# Write `my_shingle_jaccard(text_a, text_b, n=5)`: lower-case each text, take its words with
# `re.findall(r"\w+", text)` (letters and digits; punctuation dropped), build the set of word
# $n$-grams (each joined with single spaces), and return $J$. Two empty sets have similarity 0.


# %% tags=["exercise"]
def my_shingle_jaccard(text_a, text_b, n=5):
    """Jaccard similarity of the sets of lower-cased word n-grams of two texts."""
    # YOUR CODE HERE (about 6 lines)
    raise NotImplementedError


# %%
shingle_jaccard = lesson.check("shingle_jaccard", my_shingle_jaccard)
first, second = data.train_documents[0].text, data.train_documents[1].text
print(f"J(article 0, itself)     = {shingle_jaccard(first, first):.3f}")
print(f"J(article 0, article 1)  = {shingle_jaccard(first, second):.4f}")
print(
    f"the library's dedup.jaccard on the same pair: "
    f"{dedup.jaccard(dedup.shingles(first), dedup.shingles(second)):.4f}"
)

# %% [markdown]
# ### MinHash: comparing sets without comparing sets
#
# Comparing every pair of $N$ documents costs $N^2/2$ set intersections: impossible for
# billions of pages. **MinHash** (Broder 1997) shrinks each set to a short **signature**. Take a
# random hash function $h$ that orders all shingles randomly; the shingle of $A \cup B$ that
# comes first is equally likely to be any of them, and it is the first of both $A$ and $B$
# exactly when it lies in $A \cap B$, so
#
# $$\Pr\big[\min_{x \in A} h(x) = \min_{x \in B} h(x)\big] = \frac{|A \cap B|}{|A \cup B|} = J(A, B).$$
#
# With $K$ independent hash functions $h_1, \dots, h_K$ the signature is
# $\mathrm{sig}(A) = \big(\min_{x\in A} h_1(x), \dots, \min_{x\in A} h_K(x)\big)$, and the share of
# positions where two signatures agree estimates $J$ with standard error
# $\sqrt{J(1-J)/K}$.
#
# We use the universal hash family $h_i(x) = (a_i\,x + b_i) \bmod p$ with the prime
# $p = 2^{61} - 1$ (`MERSENNE_PRIME`) and a stable integer $x$ for each shingle
# (`base_hash(shingle)`); `hash_params(K, seed)` gives the $K$ pairs $(a_i, b_i)$.
#
# ### Exercise 3: a MinHash signature
# Write `my_minhash(shingle_set, params)`: for each $(a, b)$ in `params`, the minimum over the
# shingles $s$ of `(a * base_hash(s) + b) % MERSENNE_PRIME`. Return the list of $K$ minima.


# %% tags=["exercise"]
def my_minhash(shingle_set, params):
    """MinHash signature: [min over s of (a * base_hash(s) + b) % MERSENNE_PRIME for (a, b)]."""
    # YOUR CODE HERE (about 4 lines)
    raise NotImplementedError


# %%
minhash = lesson.check("minhash", my_minhash)

# %% [markdown]
# ### Plant duplicates, then find them
#
# Take the first 2,000 characters of each cleaned training article (pure Python hashing is
# slow; the library uses `datasketch`), and plant copies of a few of them at random places:
# an exact copy (in capitals, with extra spaces), near copies with 1% and 10% of words
# replaced, and a copy with a paragraph of another article appended. Then find them again.
#
# **Locality-sensitive hashing.** Cut each $K = br$ signature into $b$ **bands** of $r$ rows.
# Two documents become a **candidate pair** if they agree on all $r$ rows of at least one
# band. For a pair with Jaccard $s$ that happens with probability
#
# $$P(s) = 1 - \left(1 - s^{r}\right)^{b},$$
#
# an S-shaped curve that is near 0 for dissimilar pairs and near 1 for similar ones; its steep
# part sits around $s \approx (1/b)^{1/r}$. Only candidates get their similarity estimated.

# %%
n_docs = lesson.pick(full=len(data.train_documents), fast=20)
base_texts = [doc.text[:2000] for doc in data.train_documents[:n_docs]]
texts, planted = plant_duplicates(base_texts, copies=lesson.pick(full=8, fast=4), seed=0)
print(f"{len(base_texts)} texts + {len(planted)} planted copies = {len(texts)} texts")

K, bands, rows = 64, 16, 4
params = hash_params(K, seed=1)
signatures = [minhash(dedup.shingles(text, 5), params) for text in texts]
candidates = lsh_candidates(signatures, bands, rows)
threshold = 0.8
found = {pair: estimate_jaccard(signatures[pair[0]], signatures[pair[1]]) for pair in candidates}
flagged = {pair for pair, estimate in found.items() if estimate >= threshold}
all_pairs = len(texts) * (len(texts) - 1) // 2
print(f"b={bands} bands x r={rows} rows: steep part near s = {(1 / bands) ** (1 / rows):.2f}")
print(f"{len(candidates)} candidate pairs out of {all_pairs:,} ({len(candidates) / all_pairs:.2%})")
print(f"{len(flagged)} pairs with estimated Jaccard >= {threshold}\n")
print(f"{'planted copy':<32} {'true J':>7} {'MinHash est.':>12} {'P(cand.)':>9}  found?")
for copy in planted:
    pair = (copy.original, copy.index)
    true_j = dedup.jaccard(dedup.shingles(texts[pair[0]]), dedup.shingles(texts[pair[1]]))
    estimate = estimate_jaccard(signatures[pair[0]], signatures[pair[1]])
    verdict = "yes" if pair in flagged else ("candidate, below" if pair in candidates else "no")
    print(
        f"{copy.kind:<32} {true_j:>7.3f} {estimate:>12.3f} "
        f"{band_probability(true_j, rows, bands):>9.3f}  {verdict}"
    )
false_positives = flagged - {(c.original, c.index) for c in planted}
print(f"\nflagged pairs that were not planted: {len(false_positives)}")

# %% [markdown]
# The library does the same with `datasketch` (128 permutations, bands tuned to the
# threshold), keeping the first copy of each group. Does it remove the same texts?

# %%
kept, removed_near = dedup.near_duplicates(texts, threshold=threshold)
print(f"library near-dedup removes {sorted(m.index for m in removed_near)}")
print(f"your MinHash flags copies  {sorted(j for _, j in flagged)}")
print(f"planted copies at          {sorted(c.index for c in planted)}")
# The S-curve with every pair of our texts placed at its true Jaccard (a sample of the
# dissimilar pairs, which are almost all of them).
rng = random.Random(0)
pair_points = []
for i in range(len(texts)):
    for j in range(i + 1, len(texts)):
        if (i, j) in candidates or rng.random() < 0.05:
            true_j = dedup.jaccard(dedup.shingles(texts[i]), dedup.shingles(texts[j]))
            pair_points.append((true_j, (i, j) in candidates))
lsh_curve_figure(rows, bands, threshold, pair_points).show()

# %% [markdown]
# Look at the planted copies that were *not* found. A 10% word edit breaks most 5-word
# shingles (a shingle survives only if none of its 5 words changed: about $0.9^5 \approx 0.59$
# of them), so its Jaccard falls well below 0.8; an appended paragraph grows the union. Whether
# such copies *should* count as duplicates is a choice: a lower threshold or shorter shingles
# find more, and also flag more genuinely different texts.
#
# ## 5. Corpus statistics
#
# What did cleaning change in the whole corpus? `data.stats` holds statistics after parsing
# (`parsed`), after cleaning (`cleaned`) and of the two splits.

# %%
print(compare_stats(data.stats["parsed"], data.stats["cleaned"], ("parsed", "cleaned")))
print()
print(compare_stats(data.stats["train"], data.stats["valid"], ("train", "valid")))
print(
    f"\nraw wikitext {raw_chars:,} characters -> cleaned {data.stats['cleaned'].characters:,} "
    f"({data.stats['cleaned'].characters / raw_chars:.0%} kept)"
)

# %% [markdown]
# For scale: BERT's 3.3 billion words are about 8,000 times the words printed above for our
# corpus. Everything in this kit is sized so that a laptop can *see* each effect; the same
# code runs on a larger corpus (`minibert prepare --corpus wikitext-103` when online).
#
# ## 6. The measured effect: same budget, different text
#
# Does cleaning matter for a model? We train three tiny BERTs, identical in everything
# (architecture, initial weights, optimizer, number of steps, batch size, masking seed) except
# the **training text**:
#
# 1. **raw wikitext**: the training articles as the dump stores them, markup and all;
# 2. **cleaned, with duplicates**: the cleaned training articles plus repeated copies of 10% of
#    them (each 10 more times, half exact, half with 1% of words changed), the way a crawl
#    repeats a few pages many times;
# 3. **cleaned + deduplicated**: corpus 2 after the library's exact and MinHash near-duplicate
#    passes.
#
# All three use one tokenizer (ours, from lesson 01) and are measured on the **same held-out
# examples**: masked tokens of the cleaned, deduplicated *validation* articles, which none of
# them trained on. The metric is held-out masked-token accuracy (and MLM loss):
#
# $$\text{acc} = \frac{1}{|M|}\sum_{i \in M} \mathbb{1}\big[\arg\max_v p_\theta(v \mid
# x_{\setminus M})_i = x_i\big].$$
#
# Each arm is trained twice, with two **seeds** (other initial weights, data order and masks):
# the gap between a seed's two numbers is the run-to-run noise that any difference between
# arms has to beat. **Fast mode** (CI) trains each arm for a handful of steps, once: its
# numbers are noise. The full lesson trains 300 steps per arm, still a *tiny* budget.

# %%
valid_ids = {doc.id for doc in data.valid_documents}
raw_train = raw_training_texts(raw_documents, valid_ids)
clean_train = [doc.text for doc in data.train_documents]
limit = lesson.pick(full=None, fast=8)  # fast mode: a few documents per arm
raw_train, clean_train = raw_train[:limit], clean_train[:limit]
duplicated, repeated = duplicated_corpus(clean_train, share_of_documents=0.1, copies_each=10)
deduplicated, n_exact, n_near = deduplicate(duplicated)
print(f"duplicated corpus: {len(duplicated)} documents ({len(repeated)} repeated)")
print(
    f"dedup removed {n_exact} exact and {n_near} near copies -> {len(deduplicated)} documents "
    f"({'the' if sorted(deduplicated) == sorted(clean_train) else 'not the'} cleaned set)"
)

arms = {
    "raw wikitext": [text for _, text in raw_train],
    "cleaned, with duplicates": duplicated,
    "cleaned + deduplicated": deduplicated,
}
encoded = {name: encode_texts(arm_texts, data.tokenizer) for name, arm_texts in arms.items()}
steps = lesson.pick(full=300, fast=3)
seeds = lesson.pick(full=(0, 1), fast=(0,))  # each seed: other initial weights, order, masks
results = []
for seed in seeds:
    config = ablation_config(
        steps,
        batch_size=lesson.pick(full=16, fast=8),
        eval_examples=lesson.pick(full=256, fast=16),
        seed=seed,
    )
    for name, train_ids in encoded.items():
        results.append(train_arm(name, train_ids, data, config))
        print(f"seed {seed}, {name}: {results[-1].seconds:.0f} s")
print()
print(ablation_table(results))
ablation_figure(results).show()

# %% [markdown]
# Read the table above (these are this run's numbers, not a claim from the text):
#
# * Compare **raw** with **cleaned + deduplicated**. The raw arm spends part of every batch
#   predicting markup (`[[`, `|`, `{{cite`), tokens the held-out prose never contains, and
#   the same number of steps covers less prose. Is its held-out loss higher, for both seeds?
# * Compare **with duplicates** and **deduplicated**. The duplicated arm sees the repeated
#   articles far more often than the rest. At this budget the model has not yet seen most of
#   the corpus even once, so expect the difference to be small: is it larger than the gap
#   between the two seeds of one arm? With longer training, repeated text is memorised rather
#   than generalised from (Hernandez et al. 2022).
#
# ## Recap
#
# * Pretraining text is chosen: BERT used books and Wikipedia; later models added web text,
#   filtered with simple published rules. Scale, diversity and quality all matter.
# * Cleaning is a chain of small, explainable steps (markup to prose, line rules, document
#   rules, deduplication), each reporting what it removed; read the reports, not just the
#   totals.
# * Near duplicates: word shingles, Jaccard similarity, MinHash signatures (agreement rate
#   estimates $J$) and LSH banding ($1-(1-s^r)^b$) find similar pairs without comparing all
#   pairs.
# * A data decision is tested like a model decision: same budget, same held-out set, one
#   thing changed, numbers from the run.
#
# ## Things to try
#
# 1. Rerun section 6 with `seeds = (0, 1, 2, 3)`: which differences keep their sign for every
#    seed? (Each seed adds about a minute and a half.)
# 2. Change `bands, rows` in section 4 to `8, 8` or `32, 2`: how do the candidate count and the
#    found copies change? Predict it first from $1-(1-s^r)^b$.
# 3. Lower the near-duplicate threshold to 0.5, or use 3-word shingles: which planted copies
#    are found now, and do any real articles start to match each other?
# 4. Write another Gopher rule (mean word length between 3 and 10 characters) and compare it
#    with `minibert.data.filters.mean_word_length_out_of_range`.
# 5. The pretraining lessons train on the cleaned, deduplicated text prepared here.

# %%
lesson.done()
