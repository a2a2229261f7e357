# %% [markdown]
# # Lesson 05 · Masking and losses: what BERT is trained to do
#
# BERT learns from raw text by hiding some of it and guessing it back. This lesson builds the
# hiding (BERT's *masking*) and the two losses by hand, checks them against the library, shows
# what the "15%" of BERT's accuracy is made of, and ends with a broken pretraining loop to fix.
#
# **Learning objectives.** By the end you can
# 1. explain BERT's masking: 15% of the tokens selected, of those 80% `[MASK]`, 10% a random
#    token, 10% unchanged, and *why each part exists*; and what whole-word masking changes;
# 2. implement the masking and check its statistics;
# 3. write the masked-LM loss $L_{\mathrm{MLM}}$ and the next-sentence loss $L_{\mathrm{NSP}}$ by
#    hand and match the library's numbers;
# 4. explain why accuracy at the *kept* positions is mostly copying, from a measurement;
# 5. find and fix the classic bugs of a pretraining loop.
#
# **Prerequisites.** PyTorch tensors (indexing with boolean masks, `gather`, `log_softmax`);
# lesson 01 (word pieces and special tokens). Lessons 02-04 help but are not required.
#
# **Time.** About 20 seconds to run on a 2-core laptop (plus a 90-second pretraining run the
# first time, unless lesson 00, 06 or `minibert demo` made one); a 50-minute class with the
# exercises.
#
# Exercises are marked **Exercise**: write the function in the cell, run it, then run the check
# below it. A check that fails tells you why; an exercise you skip does not stop the notebook
# (the cells after it use the reference). `lesson.solution("name")` prints one answer.

# %%
from minibert import lessons

lesson = lessons.start("05-masking-and-losses")

# %%
import math
import textwrap

import torch

from minibert import functional, inspect, viz
from minibert.data import DataConfig, prepare_corpus, prepare_data
from minibert.data.examples import MaskingCollator
from minibert.lessons.lesson05 import (
    copying_share,
    copying_verdict,
    examples_from,
    hint,
    kind_accuracy,
    loop_check_data,
    loop_check_model,
    loss_curve,
    masking_rows,
    masking_stats,
    print_masking,
    replacement_ids,
    special_tokens_mask,
)

# %% [markdown]
# ## 1. A batch of real text
#
# Our tokenizer (lesson 01) turns sentences of the held-out Wikipedia documents into ids, with
# `[CLS]` in front, `[SEP]` at the end and `[PAD]` to make the rows one length.

# %%
data = prepare_data(DataConfig())
tokenizer = data.tokenizer
corpus = prepare_corpus(DataConfig())
sentences = [
    s.strip() + "."
    for doc in corpus.valid_documents
    for s in doc.text.split(". ")
    if 8 <= len(s.split()) <= 40
][: lesson.pick(full=400, fast=64)]
batch = tokenizer(sentences, padding=True, truncation=True, max_length=64, return_tensors="pt")
input_ids = batch["input_ids"]  # (B, T)
specials = special_tokens_mask(tokenizer, input_ids)  # (B, T) True at [CLS] [SEP] [PAD]
print(f"{len(sentences)} sentences -> input_ids {tuple(input_ids.shape)}")
print(f"real (non-special) tokens: {int((~specials).sum()):,} of {input_ids.numel():,}")
print(tokenizer.convert_ids_to_tokens(input_ids[0][: int(batch["attention_mask"][0].sum())]))

# %% [markdown]
# ## 2. BERT's masking: 15%, then 80/10/10
#
# Devlin et al. (2019, Section 3.1) corrupt each input $x = (x_1, \dots, x_T)$ in two steps.
#
# **Select.** Each position that is not special is selected with probability $p = 0.15$:
# $S = \{\, i : x_i \notin \text{specials},\ u_i < p \,\}$ with $u_i \sim U(0, 1)$.
#
# **Corrupt.** Each selected token becomes
#
# $$\tilde x_i = \begin{cases} \texttt{[MASK]} & \text{with probability } 0.8\\
# r_i \sim U(V') & \text{with probability } 0.1 \quad (V' \text{ the non-special ids})\\
# x_i & \text{with probability } 0.1 \end{cases}$$
#
# and the label is $y_i = x_i$ for $i \in S$ and $-100$ ("no label", ignored by the loss)
# elsewhere. Why each part:
#
# * **15%**: every selected token is a training signal, but each hidden token also removes
#   context the others need. Too few: slow learning per sentence; too many: too little left
#   to read. 15% was BERT's choice (later work trains well with more).
# * **80% `[MASK]`**: the main task: recover a hidden word from both sides.
# * **10% random**: the input can *lie*, so the model cannot trust any token blindly; it must
#   check every word against its context.
# * **10% kept**: `[MASK]` never appears when the model is fine-tuned. If only `[MASK]`ed
#   positions were ever predicted, the model would learn "real tokens need no thought". Kept
#   tokens make it build a good representation of every visible token too.
#
# ### Exercise 1: mask a batch
# Write `my_mask_tokens(input_ids, special_tokens_mask, mask_token_id=..., replacement_ids=...)`
# returning `(masked_input_ids, labels)`, both `(B, T)`. Use `torch.rand` / `torch.randint`
# (the check seeds them). Do not change `input_ids` in place.


# %% tags=["exercise"]
def my_mask_tokens(input_ids, special_tokens_mask, *, mask_token_id, replacement_ids):
    """BERT's masking. input_ids (B, T) long; special_tokens_mask (B, T) bool (True: never
    select); replacement_ids: 1-D long tensor of the ids a random replacement is drawn from.

    Returns (masked_input_ids (B, T), labels (B, T): original id where selected, else -100).
    """
    # YOUR CODE HERE (about 10 lines)
    raise NotImplementedError


# %%
mask_tokens = lesson.check("bert_masking", my_mask_tokens)
masked, labels = mask_tokens(
    input_ids,
    specials,
    mask_token_id=tokenizer.mask_token_id,
    replacement_ids=replacement_ids(tokenizer),
)
row = next(i for i, s in enumerate(sentences) if s.isascii())  # an all-English sentence
print_masking(masking_rows(tokenizer, input_ids[row], masked[row], labels[row]), limit=24)

# %% [markdown]
# The library's `minibert.functional.mask_tokens` does the same (it is what the training
# collator runs) and also reports the *kind* of every position. Count both on the batch:

# %%
library = functional.mask_tokens(
    input_ids,
    specials,
    vocab_size=len(tokenizer),
    mask_token_id=tokenizer.mask_token_id,
    replacement_ids=replacement_ids(tokenizer),
)
special_ids = torch.tensor(tokenizer.all_special_ids)
for name, (m, y) in {
    "yours": (masked, labels),
    "library": (library.input_ids, library.labels),
}.items():
    stats = masking_stats(input_ids, m, y, specials, tokenizer.mask_token_id, special_ids)
    print(
        f"{name:>8}: selected {stats.rate:.1%} of real tokens; of those [MASK] "
        f"{stats.share('mask'):.1%}, random {stats.share('random'):.1%}, "
        f"kept {stats.share('kept'):.1%}; specials touched: {stats.specials_touched}"
    )
kinds = library.kind[library.selected]
print(
    "library's own kinds:", {k.name: int((kinds == k).sum()) for k in list(functional.MaskKind)[1:]}
)

# %% [markdown]
# ### Whole-word masking
#
# WordPiece splits rare words into pieces (`photosynthesis` might be `photo ##syn ##thesis`).
# With token-level masking the model often sees `photo [MASK] ##thesis` and fills the middle
# from the word's own pieces, an easy guess. Whole-word masking (released by the BERT authors
# in 2019) selects and corrupts *words*: all pieces of a word are hidden together, in the same
# way. `MaskingCollator(whole_word_masking=True)` does it (by `word_ids` in `mask_tokens`).
# Below, 40% of the words are selected so that the difference shows in one sentence.

# %%
text = "Photosynthesis transforms sunlight into chemical energy in unicellular organisms."
example = tokenizer(text)
print(tokenizer.convert_ids_to_tokens(example["input_ids"]))
for whole_words in (False, True):
    collator = MaskingCollator(
        tokenizer, whole_word_masking=whole_words, mlm_probability=0.4, seed=3
    )
    out = collator([example])
    shown = tokenizer.convert_ids_to_tokens(out["input_ids"][0])
    print(f"whole_word_masking={whole_words!s:<5}:", " ".join(shown))

# %% [markdown]
# ## 3. The masked-LM loss
#
# The model gives a vector of logits $z_i \in \mathbb{R}^{|V|}$ at every position; a softmax
# over the vocabulary turns it into $P_\theta(\cdot \mid \tilde x)$. The loss is the negative
# log-likelihood of the original tokens at the selected positions only,
#
# $$L_{\mathrm{MLM}} = -\sum_{i \in S} \log P_\theta(x_i \mid \tilde x)
#   = -\sum_{i \in S} \log \operatorname{softmax}(z_i)_{x_i},$$
#
# and in practice its **mean** over $S$ (divide by $|S|$, the number of labels $\ne -100$), so
# the number does not depend on how many tokens a batch happened to select. An untrained model
# that spreads its guess evenly scores $\log |V|$.
#
# ### Exercise 2: $L_{\mathrm{MLM}}$ by hand
# `logits` is `(B, T, V)`, `labels` is `(B, T)` with `-100` where nothing is predicted. Return
# the mean over the labelled positions (a 0-dim tensor). Use `log_softmax`, not
# `F.cross_entropy`.


# %% tags=["exercise"]
def my_mlm_loss(logits, labels):
    """Mean of -log softmax(logits)[label] over the positions whose label is not -100."""
    # YOUR CODE HERE (about 5 lines)
    raise NotImplementedError


# %% [markdown]
# The check below also runs your loss next to the library's on the real batch: the model is
# the pretrained tiny BERT this lesson looks inside (lesson 06 trains it; if no run exists yet,
# one is trained now, with a progress bar).

# %%
mlm_loss = lesson.check("mlm_loss", my_mlm_loss)
run = lessons.pretrained_run(lesson)
loaded = inspect.load_model(run)
model = loaded.model.eval()
run_tokenizer = loaded.tokenizer
few = sentences[:16]
enc = run_tokenizer(few, padding=True, truncation=True, max_length=64, return_tensors="pt")
collated = MaskingCollator(run_tokenizer, seed=0)(examples_from(enc))
with torch.no_grad():
    out = model(
        collated["input_ids"], attention_mask=collated["attention_mask"], labels=collated["labels"]
    )
print(f"logits {tuple(out.logits.shape)}, {int((collated['labels'] != -100).sum())} labelled")
print(f"the model's own loss:       {out.loss.item():.4f}")
print(
    f"functional.mlm_loss:        {functional.mlm_loss(out.logits, collated['labels']).item():.4f}"
)
print(f"yours (or the reference):   {mlm_loss(out.logits, collated['labels']).item():.4f}")
print(f"log |V| (an even guess):    {math.log(len(run_tokenizer)):.4f}")

# %% [markdown]
# ## 4. The next-sentence loss
#
# BERT's second task (Section 3.1, Task #2): the input is a pair `[CLS] A [SEP] B [SEP]`, and
# for half the pairs B is a random sentence. A linear layer on the pooled `[CLS]` vector gives
# two logits $c \in \mathbb{R}^2$ (0 = B follows A, 1 = B is random), and over a batch of $N$
# pairs with labels $y_n$
#
# $$L_{\mathrm{NSP}} = -\frac{1}{N}\sum_{n=1}^{N} \log \operatorname{softmax}(c_n)_{y_n},
# \qquad L = L_{\mathrm{MLM}} + L_{\mathrm{NSP}}.$$
#
# (RoBERTa later showed NSP can be dropped; our recipe in `docs/recipe.md` trains without it.)
#
# ### Exercise 3: $L_{\mathrm{NSP}}$ by hand
# `seq_relationship_logits` is `(B, 2)`, `next_sentence_label` is `(B,)` of 0/1.


# %% tags=["exercise"]
def my_nsp_loss(seq_relationship_logits, next_sentence_label):
    """Mean over the batch of -log softmax(logits)[label], the softmax over the 2 classes."""
    # YOUR CODE HERE (about 3 lines)
    raise NotImplementedError


# %% [markdown]
# Now both losses on a `BertForPreTraining` (MLM and NSP heads) with fresh random weights: its
# NSP guess is near 50/50, so $L_{\mathrm{NSP}} \approx \log 2$, and the model's `loss` is the
# sum of the two.

# %%
nsp_loss = lesson.check("nsp_loss", my_nsp_loss)
from minibert.config import BertConfig
from minibert.heads import BertForPreTraining

torch.manual_seed(0)
fresh = BertForPreTraining(BertConfig.preset("tiny", vocab_size=len(tokenizer))).eval()
pairs = tokenizer(sentences[0:8:2], sentences[1:8:2], padding=True, return_tensors="pt")
pair_batch = MaskingCollator(tokenizer, seed=0)(examples_from(pairs, [0, 1, 0, 1]))
with torch.no_grad():
    pre = fresh(**pair_batch)
mine = nsp_loss(pre.seq_relationship_logits, pair_batch["next_sentence_label"])
print(f"NSP: model {pre.nsp_loss.item():.4f}, yours {mine.item():.4f}, log 2 = {math.log(2):.4f}")
print(f"MLM {pre.mlm_loss.item():.4f} + NSP {pre.nsp_loss.item():.4f} = {pre.loss.item():.4f}")

# %% [markdown]
# ## 5. What "masked-token accuracy" is made of: copying
#
# Training reports *accuracy at the selected positions*. But a tenth of them show the original
# token (the kept 10%), and a model that simply copies its input gets those right without
# reading any context. Split the accuracy by what the input showed:
#
# $$\mathrm{acc} = s_{\texttt{[MASK]}}\,\mathrm{acc}_{\texttt{[MASK]}}
#   + s_{\text{random}}\,\mathrm{acc}_{\text{random}} + s_{\text{kept}}\,\mathrm{acc}_{\text{kept}},$$
#
# with $s$ the shares (about 0.8 / 0.1 / 0.1). `minibert.inspect.masking_lab` masks a text as
# pretraining does and scores the model at each selected position; here it runs over held-out
# sentences for the pretrained tiny BERT.

# %%
lab_texts = sentences[: lesson.pick(full=200, fast=20)]
split = kind_accuracy(loaded, lab_texts, seeds=lesson.pick(full=(0, 1), fast=(0,)))
print(f"{split['selected']} selected positions in {len(lab_texts)} sentences")
for kind in ("mask", "random", "kept"):
    print(
        f"  {kind:>6}: share {split['share'][kind]:5.1%}   accuracy {split['accuracy'][kind]:6.1%}"
    )
print(f"     all: accuracy {split['accuracy']['all']:.1%}")
print(f"share of all correct guesses made at kept positions: {copying_share(split):.0%}")
print()
print(textwrap.fill(copying_verdict(split), 96))

# %% [markdown]
# Compare the kept and `[MASK]` rows printed above (the sentence under them reads them for
# this run). At kept positions the answer is in the input: a model that copies gets them right
# without any context, so a run can report a respectable overall accuracy while it has learned
# little about context. `docs/recipe.md` records this split for the kit's 5-minute runs and
# why the `[MASK]` column is the one to watch.
# One sentence in detail (`viz.masking_lab_table`):

# %%
lab = inspect.masking_lab(loaded, sentences[row], seed=0)  # the sentence of section 2
viz.masking_lab_table(lab).show()

# %% [markdown]
# ## 6. Spot the bugs: a pretraining loop
#
# Below is a short pretraining loop of the kind found in online tutorials, written for this
# lesson. It has **eleven** classic bugs, each line marked with a numbered comment such as
# `# [3]`. Some crash ("loud"), some silently train the wrong thing ("silent": the worst kind).
#
# ### Exercise 4: fix the loop
# 1. Read it and find what you can. `hint(3)` reveals what `[3]` is about.
# 2. Delete the `raise NotImplementedError` line and run the check: it runs your loop for 16
#    steps on a tiny model, watching the model's inputs (shape, `[MASK]`s, positions, train
#    mode, gradients), the optimizer (class, learning rate) and the labels and losses you
#    return, and lists the bugs it still sees. A loop that crashes hides the bugs after the
#    crash: fix, run again.
# 3. When no bug remains the check confirms that the training loss falls.
#
# Keep the signature and the returned dict. `minibert.functional.positions_from_labels(labels)`
# gives the positions of the labels, for `masked_positions`.


# %% tags=["exercise"]
def my_pretraining_loop(model, tokenizer, train_texts, valid_texts, steps=20, batch_size=8):
    """Pretrain `model` (a minibert BertForMaskedLM) with the masked-LM loss.

    Returns {"train_losses": one float per step, "valid_loss": a float measured on
    valid_texts, "labels": the (B, T) labels of each step}.
    """
    raise NotImplementedError("delete this line, then find and fix the bugs")
    import torch
    import transformers

    specials = torch.tensor(tokenizer.all_special_ids)
    optimizer = transformers.AdamW(model.parameters(), lr=5e-5)  # [1] [2]

    def make_batch(texts):
        items = [  # [3]
            tokenizer(t, padding="max_length", max_length=512, truncation=True, return_tensors="pt")
            for t in texts
        ]
        input_ids = torch.stack([item["input_ids"] for item in items])  # [4]
        attention_mask = torch.stack([item["attention_mask"] for item in items])
        chosen = (torch.rand(input_ids.shape) < 0.15) & ~torch.isin(input_ids, specials)
        labels = input_ids.clone()  # [5]
        masked = input_ids.clone()
        masked[chosen] = tokenizer.mask_token_id
        return input_ids, attention_mask, labels  # [6]

    def loss_of(inputs, attention_mask, labels):
        out = model(inputs, attention_mask=attention_mask, masked_positions=labels)  # [9]
        return -out.logits.gather(-1, labels[..., None]).mean()  # [10]

    train_losses, seen_labels = [], []
    for step in range(steps):
        start = step * batch_size % len(train_texts)
        batch = make_batch(train_texts[start : start + batch_size])
        model.eval()  # [7]
        with torch.no_grad():  # [8]
            loss = loss_of(*batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        train_losses.append(loss.item())
        seen_labels.append(batch[2])
    valid_loss = train_losses[-1]  # [11]
    return {"train_losses": train_losses, "valid_loss": valid_loss, "labels": seen_labels}


# %%
hint(1)  # change the number to reveal another hint; comment this out to solve unaided

# %%
pretraining_loop = lesson.check("pretraining_loop", my_pretraining_loop)

# %% [markdown]
# With the loop fixed (yours if it passed, else the reference), train the check's small model
# for longer and watch the two losses. The training loss is on batches the model just learned
# from; the validation loss is on sentences it never saw.

# %%
loop_tokenizer, loop_train, loop_valid = loop_check_data()
small = loop_check_model(len(loop_tokenizer))
torch.manual_seed(0)
result = pretraining_loop(
    small, loop_tokenizer, loop_train, loop_valid, steps=lesson.pick(full=120, fast=16)
)
losses = result["train_losses"]
print(f"training loss: {losses[0]:.2f} at step 1 -> {losses[-1]:.2f} at step {len(losses)}")
print(f"validation loss: {result['valid_loss']:.2f}; log |V| = {math.log(len(loop_tokenizer)):.2f}")
loss_curve(losses, result["valid_loss"]).show()

# %% [markdown]
# ## Recap
#
# * BERT **selects** 15% of the non-special tokens and **corrupts** them 80% `[MASK]` / 10%
#   random / 10% kept; labels are the original ids there and $-100$ everywhere else.
#   Whole-word masking hides all pieces of a word together.
# * $L_{\mathrm{MLM}}$ is the mean $-\log \operatorname{softmax}(z_i)_{x_i}$ over the selected
#   positions only: log-softmax over the **vocabulary**, $-100$ left out, divided by $|S|$.
#   $L_{\mathrm{NSP}}$ is the same over two classes at `[CLS]`; BERT's loss is their sum.
# * Accuracy at kept positions is copying: read the `[MASK]` column.
# * A pretraining loop fails silently more often than loudly: no masking, labels everywhere,
#   a loss that is not a cross-entropy, eval mode, a fine-tuning learning rate, a validation
#   loss on training data. Check the batches, not only the curve.
#
# ## Things to try
#
# 1. Set `mask_replace_prob=1.0, random_replace_prob=0.0` in `MaskingCollator` and pretrain a
#    short run (lesson 06): what happens to the accuracy at kept positions?
# 2. Run `kind_accuracy` on a checkpoint from early in a run (`inspect.load_model(run,
#    checkpoint=...)`): which kind does the model learn first?
# 3. Change `mlm_probability` to 0.4 in the fixed loop: does the loss fall faster per step?
# 4. In your fixed loop, replace the hand-made masking with `MaskingCollator` (80/10/10 and
#    whole words for free).

# %%
lesson.done()
