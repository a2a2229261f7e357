# %% [markdown]
# # Lesson 08 · Fine-tuning for token tagging: one label per word
#
# Named-entity recognition, part-of-speech tagging and mention detection give **every word**
# a label. BERT reads WordPiece *pieces*, not words, so the labels must be moved onto pieces
# for training and read back off them for scoring. This lesson does both by hand, fine-tunes
# our pretrained BERT as a tagger, and scores it the way the NER literature does: per entity.
#
# **Learning objectives.** By the end you can
# 1. explain the BIO tagging scheme and why scores are counted per *entity*, not per word;
# 2. align word labels to WordPiece pieces (the first piece carries the label; the other
#    pieces and the special tokens get -100) and say why;
# 3. turn BIO tags into entity spans the way `conlleval`/`seqeval` do;
# 4. compute entity-level precision, recall and F1, and check them against `seqeval`;
# 5. fine-tune a tagger with `minibert.train.finetuning` on the offline wiki-mention task, and
#    run the same code on CoNLL-2003 when online.
#
# **Prerequisites.** Lesson 01 (WordPiece), lesson 06 or any pretrained run (the notebook
# finds or makes one); Python lists and sets. Fine-tuning for sequence labels (lesson 07)
# helps but is not required.
#
# **Time.** About a minute to run on a 2-core laptop; a 50-minute class with the exercises.
# Exercises are marked **Exercise**; the check below each one explains what is wrong, and a
# skipped exercise never stops the notebook. `lesson.solution("name")` prints one answer.

# %%
from minibert import lessons

lesson = lessons.start("08-token-tagging")

# %%
import torch
from IPython.display import HTML, display

from minibert.data.corpora import HubUnavailableError
from minibert.data.tasks import KNOWN_TASKS, encode_token_task, load_task
from minibert.data.tokenizer import load_tokenizer
from minibert.lessons.lesson08 import (
    legend_html,
    read_tag_predictions,
    show_alignment,
    tagged_sentence_html,
)
from minibert.train.finetuning import finetune
from minibert.train.metrics import entity_metrics

# %% [markdown]
# ## 1. The task: tags for words, BIO
#
# Our offline task, `wiki-mentions`, comes from Wikipedia's own links: in the sentence
# *"Anarchism is a political philosophy ..."*, the editors linked *political philosophy* to its
# article, so those words are a **mention** of an entity. A tag per word says where mentions
# are, in the **BIO** scheme (Ramshaw & Marcus 1995): `B-X` begins an entity of type X, `I-X`
# continues it, `O` is outside any entity. Two adjacent entities stay apart (`B I B`), which
# plain "in an entity or not" labels could not say.
#
# CoNLL-2003 (Tjong Kim Sang & De Meulder 2003), the classic NER benchmark BERT reported on
# (Devlin et al. 2019, §5.3), uses the same scheme with four types: `PER`, `ORG`, `LOC`, `MISC`.

# %%
task = load_task("wiki-mentions")
print(f"{task.name}: {task.description}")
print(
    f"labels {task.labels}; {len(task.train):,} training, {len(task.validation):,} "
    f"validation, {len(task.test or []):,} test sentences (split by article)"
)
example = task.train[0]
for word, tag in list(zip(example.words, example.tags, strict=True))[:16]:
    print(f"{word:>16}  {task.labels[tag]}")

# %% [markdown]
# ## 2. Words become pieces: aligning the labels
#
# The tokenizer splits some words into several pieces and adds `[CLS]` and `[SEP]`. A fast
# tokenizer's `word_ids()` says, for each piece, which word it came from (`None` for the
# special tokens). BERT (§5.3) puts each word's label on its **first** piece and gives the
# other pieces the label $-100$, which PyTorch's cross-entropy skips
# (`ignore_index=-100`). The loss over a sentence is then over words, not pieces:
#
# $$\mathcal{L} = -\frac{1}{|W|}\sum_{w \in W} \log p_\theta\big(y_w \mid h_{\mathrm{first}(w)}\big),$$
#
# where $h_{\mathrm{first}(w)}$ is the final hidden vector of word $w$'s first piece.
#
# ### Exercise 1: align word labels to pieces
# Write `my_align_labels(word_ids, word_labels)`: `word_ids` has one entry per piece (a word
# index, or `None` for `[CLS]`, `[SEP]`, `[PAD]`); `word_labels` has one label id per word.
# Return one label per piece: the word's label on its first piece, $-100$ everywhere else.
# For `word_ids = [None, 0, 0, 1, None]` and `word_labels = [1, 0]` the answer is
# `[-100, 1, -100, 0, -100]`.


# %% tags=["exercise"]
def my_align_labels(word_ids, word_labels):
    """One label per piece: the word's label on its first piece, -100 on the rest."""
    # YOUR CODE HERE (about 10 lines)
    raise NotImplementedError


# %%
align_labels = lesson.check("align_labels", my_align_labels)

# %% [markdown]
# Now with the tokenizer of our pretrained BERT, on a real sentence: each piece, its word, and
# the label it trains with (grey: $-100$). Then the same alignment on many training sentences,
# compared with the library's `encode_token_task`.

# %%
run = lessons.pretrained_run(lesson)
tokenizer = load_tokenizer(run / "tokenizer")
words = list(example.words[:14])
tags = [task.labels[t] for t in example.tags[:14]]
encoding = tokenizer(words, is_split_into_words=True)
mine = align_labels(encoding.word_ids(), list(example.tags[:14]))
display(HTML(show_alignment(tokenizer, words, tags, mine)))

sample = task.train[: lesson.pick(full=2000, fast=200)]
library = encode_token_task(sample, tokenizer, max_seq_len=128)
same = 0
for i, ex in enumerate(sample):
    word_ids = tokenizer(
        list(ex.words), is_split_into_words=True, truncation=True, max_length=128
    ).word_ids()
    same += align_labels(word_ids, list(ex.tags)) == library["labels"][i]
print(f"your alignment equals encode_token_task's on {same:,} of {len(sample):,} sentences")
pieces = sum(len(ids) for ids in library["input_ids"])
labelled = sum(label != -100 for labels in library["labels"] for label in labels)
print(f"{pieces:,} pieces, {labelled:,} of them carry a label ({labelled / pieces:.0%})")

# %% [markdown]
# ## 3. Fine-tuning the tagger
#
# `minibert.train.finetuning` adds one linear layer (hidden size $\to$ number of tags) on every
# piece's final vector and trains **all** the weights (Devlin et al. 2019, §4), starting from
# our pretrained run. At the end it predicts a tag for each word from its first piece and
# scores the validation split, writing `predictions.jsonl` into the run. Full mode trains on a
# sample of 3,000 training sentences for three epochs (about a minute); fast mode on a handful
# for one (its numbers are noise).

# %%
EPOCHS = lesson.pick(full=3, fast=1)
out = lesson.runs_dir / "lesson-08-mentions"
result = finetune(
    out=out,
    overwrite=True,
    overrides={
        "task": "wiki-mentions",
        "init": str(run),
        "epochs": EPOCHS,
        "task.train_limit": lesson.pick(full=3000, fast=64),
        "task.eval_limit": lesson.pick(full=400, fast=32),
        "train.num_threads": torch.get_num_threads(),  # the lesson's 2
    },
)
print(result.summary())

# %% [markdown]
# ## 4. Scoring per entity
#
# A tagger that says `O` everywhere gets most *words* right (most words are outside any
# entity) and finds no entity at all. So NER is scored per **entity**: read the spans out of
# the gold and the predicted tags, and count a predicted span as correct only if a gold span
# has the same type, start and end (`conlleval`; `seqeval` in Python). With $G$ the gold spans
# and $P$ the predicted ones,
#
# $$\text{precision} = \frac{|G \cap P|}{|P|}, \qquad \text{recall} = \frac{|G \cap P|}{|G|},
# \qquad F_1 = \frac{2\,\text{precision}\cdot\text{recall}}{\text{precision} + \text{recall}}.$$
#
# ### Exercise 2: BIO tags to spans
# Write `my_bio_spans(tags)`: return the entities of one sentence as `(type, start, end)`
# tuples with `end` exclusive (`words[start:end]` is the entity). A `B-X` always starts a new
# entity; `I-X` continues an open X entity; an `I-X` that continues nothing (after `O` or
# after another type) starts one, as `conlleval` does. `["O", "B-PER", "I-PER", "B-PER"]`
# gives `[("PER", 1, 3), ("PER", 3, 4)]`.


# %% tags=["exercise"]
def my_bio_spans(tags):
    """[(type, start, end), ...] for the entities in one sentence's BIO tags (end exclusive)."""
    # YOUR CODE HERE (about 10 lines)
    raise NotImplementedError


# %%
bio_spans = lesson.check("bio_spans", my_bio_spans)

# %% [markdown]
# ### Exercise 3: entity-level precision, recall, F1
# Write `my_entity_prf(gold_spans, predicted_spans)`: both are lists with one list of spans
# per sentence. Return `(precision, recall, f1)` by exact match (0.0 where a denominator is
# zero).


# %% tags=["exercise"]
def my_entity_prf(gold_spans, predicted_spans):
    """(precision, recall, f1) of predicted entity spans against gold ones, per sentence."""
    # YOUR CODE HERE (about 8 lines)
    raise NotImplementedError


# %%
entity_prf = lesson.check("entity_prf", my_entity_prf)

# %% [markdown]
# Your two functions on the tagger's validation predictions, next to `seqeval`'s numbers
# (`minibert.train.metrics.entity_metrics`) and the run's own report:

# %%
records = read_tag_predictions(out, "validation")
gold_tags = [r["tags"] for r in records]
predicted_tags = [r["predicted"] for r in records]
p, r, f1 = entity_prf([bio_spans(t) for t in gold_tags], [bio_spans(t) for t in predicted_tags])
reference = entity_metrics(gold_tags, predicted_tags)
word_accuracy = sum(
    g == q
    for gt, pt in zip(gold_tags, predicted_tags, strict=True)
    for g, q in zip(gt, pt, strict=True)
)
word_accuracy /= sum(len(t) for t in gold_tags)
all_o = entity_metrics(gold_tags, [["O"] * len(t) for t in gold_tags])
print(f"yours:    precision {p:.3f}  recall {r:.3f}  F1 {f1:.3f}")
print(
    f"seqeval:  precision {reference['entity_precision']:.3f}  recall "
    f"{reference['entity_recall']:.3f}  F1 {reference['entity_f1']:.3f}  "
    f"({int(reference['entities'])} gold entities)"
)
print(f"the run:  F1 {result.validation.get('entity_f1', float('nan')):.3f}")
print(
    f"word accuracy {word_accuracy:.1%}; an all-O tagger: word accuracy "
    f"{sum(t.count('O') for t in gold_tags) / sum(len(t) for t in gold_tags):.1%}, "
    f"entity F1 {all_o['entity_f1']:.3f}"
)

# %% [markdown]
# Compare the word accuracy with the all-`O` tagger's: word accuracy flatters a tagger,
# entity F1 does not. Below, some validation sentences with the entities marked: green where
# gold and prediction agree exactly, blue a gold entity the model missed, orange a predicted
# entity that is not in the gold tags.

# %%
display(HTML(legend_html()))
for record in records[:6]:
    display(
        HTML(
            tagged_sentence_html(
                record["words"], bio_spans(record["tags"]), bio_spans(record["predicted"])
            )
        )
    )

# %% [markdown]
# ## 5. The same code on CoNLL-2003 (online)
#
# CoNLL-2003 English NER is on the Hugging Face hub. `load_task("conll2003")` downloads it when
# the hub is reachable and otherwise fails at once, naming the offline tasks; everything after
# it is the code above with `task` changed. (Tests and the offline lesson never download.)

# %%
print(KNOWN_TASKS["conll2003"])
try:
    conll = load_task("conll2003")
except HubUnavailableError as error:
    conll = None
    print(f"offline: {error}")
if conll is not None:
    print(f"CoNLL-2003 labels: {conll.labels}; {len(conll.train):,} training sentences")
    conll_result = finetune(
        out=lesson.runs_dir / "lesson-08-conll",
        overwrite=True,
        overrides={
            "task": "conll2003",
            "init": str(run),
            "epochs": EPOCHS,
            "task.train_limit": lesson.pick(full=3000, fast=64),
            "task.eval_limit": lesson.pick(full=400, fast=32),
            "train.num_threads": torch.get_num_threads(),  # the lesson's 2
        },
    )
    print(conll_result.summary())

# %% [markdown]
# ## Recap
#
# * Token tagging labels every word; BIO tags (`B-X`, `I-X`, `O`) keep adjacent entities apart.
# * BERT reads pieces: the label goes on each word's **first** piece; continuation pieces and
#   `[CLS]`/`[SEP]`/`[PAD]` get $-100$ and are ignored by the loss. Predictions are read back
#   from the same first pieces.
# * Scores are per **entity**, exact match on type, start and end: precision is the share of
#   predicted entities that are right, recall the share of gold entities found, $F_1$ their
#   harmonic mean. Word accuracy flatters a tagger that predicts `O` everywhere.
# * One fine-tuning code path serves the offline wiki-mention task and CoNLL-2003.
#
# ## Things to try
#
# 1. Fine-tune from the offline MiniLM instead of our tiny BERT (`"init": "minilm"`, slower on
#    a CPU): how much does a model pretrained on far more text gain in entity F1?
# 2. Fine-tune from a random initialisation (`"init": "random"`): what does pretraining buy?
# 3. Change the alignment to label the *last* piece (train and predict that way): does F1 move?
# 4. Print the sentences with the most missed entities. Are they long, rare, or capitalised?
# 5. Score with `seqeval`'s strict mode (`mode="strict", scheme=IOB2`), which does not let a
#    stray `I-` start an entity. How different is F1?

# %%
lesson.done()
