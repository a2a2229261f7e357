# %% [markdown]
# # Lesson 09 · Attention analysis: what do the heads do?
#
# A BERT layer has several attention heads, each free to learn its own pattern. Some learn
# patterns you can name: look at the previous token, park on `[SEP]`, spread evenly. This
# lesson measures those patterns, watches them appear during pretraining, switches heads off
# to see which ones matter, and asks what fine-tuning changes.
#
# **Learning objectives.** By the end you can
# 1. compute a head's statistics by hand (attention entropy, previous-token weight) from the
#    attention weights, over the right tokens, and match the library;
# 2. classify a head (previous-token, next-token, self, delimiter, broad, mixed) from its
#    statistics, as Clark et al. (2019) do for BERT-base;
# 3. follow the heads over pretraining checkpoints and say when positional and `[SEP]` heads
#    appear in *our* run;
# 4. ablate heads (switch them off) and read the change in a metric, knowing what the metric
#    can and cannot show;
# 5. compare a pretrained model's attention with its fine-tuned copy's.
#
# **Prerequisites.** Lesson 02 (attention: queries, keys, softmax rows), lesson 06
# (pretraining; this lesson reuses its run or trains a short one), lesson 07 helps
# (fine-tuning). PyTorch tensors: indexing, `sum`/`mean` over dimensions, `torch.diagonal`.
#
# **Time.** About 25 seconds to run on a 2-core laptop (plus about 90 s once if no
# pretrained run exists yet); a 50-minute class with the exercises.

# %%
from minibert import lessons

lesson = lessons.start("09-attention-analysis")

# %%
import numpy as np
import torch

from minibert import inspect, viz
from minibert.inspect.heads import CLASS_THRESHOLDS, HEAD_CLASSES
from minibert.inspect.heldout import heldout_sentences
from minibert.lessons import lesson09
from minibert.lessons.lesson09 import (
    attention_batch,
    class_counts,
    entropy_bits,
    first_step_over,
    heads_over_training,
    layer_means,
    over_training_figure,
    stats_of_head,
)

# %% [markdown]
# ## 1. Two models, one set of sentences
#
# We look at two BERTs: **our tiny BERT**, pretrained in lesson 06 (or just now, for about 90
# seconds), and **MiniLM**, a real 6-layer, 12-head BERT distilled from a large model and
# trained on a billion sentence pairs. Every statistic is an average over held-out news
# sentences (`lee.cor` from gensim: text neither model trained on).

# %%
run = lessons.pretrained_run(lesson)
texts = heldout_sentences(lesson.pick(full=32, fast=8))
print(f"{len(texts)} held-out sentences, e.g.: {texts[0][:100]}...")
tiny = inspect.load_model(run)
minilm = inspect.load_model("minilm")
for name, loaded in [("tiny (ours)", tiny), ("MiniLM", minilm)]:
    c = loaded.config
    print(f"{name:>12}: {c.num_hidden_layers} layers x {c.num_attention_heads} heads")

# %% [markdown]
# ## 2. Head statistics by hand
#
# Row $i$ of a head's attention matrix is a probability distribution: how query token $i$
# spreads its attention over the keys $j$, with $a_{ij} \ge 0$ and $\sum_j a_{ij} = 1$.
# A statistic describes one row; a head's statistic is the **average over query rows**, over
# every real (unpadded) token of every sentence.
#
# The **entropy** of a row (Clark et al. 2019, Sec. 3.3) says how spread out it is, in nats:
#
# $$H_i = -\sum_{j} a_{ij} \ln a_{ij}, \qquad
# 0 \le H_i \le \ln T, \qquad \bar H = \frac{1}{N_q}\sum_{\text{real queries } i} H_i .$$
#
# $H_i = 0$ when the whole row sits on one key; $H_i = \ln T$ when it is uniform over $T$
# keys. By convention $0 \ln 0 = 0$ (the limit), which a computer does not know.
#
# The batch below holds every layer's real attention weights for our sentences, padded to the
# longest: `batch.layer(l)` is `(B, nh, T, T)` (sentence, head, query, key) and
# `batch.attention_mask` is `(B, T)`, 1 on real tokens. Padding *keys* get weight 0; padding
# *queries* still have a full row, which is not text.

# %%
batch = attention_batch(run, texts)
print("weights (B, L, nh, T, T):", tuple(batch.weights.shape))
print("real tokens per sentence:", batch.attention_mask.sum(1).tolist()[:8], "...")
print("row sums of layer 0, head 0, sentence 0:", batch.layer(0)[0, 0].sum(-1)[:5].tolist())

# %% [markdown]
# ### Exercise 1: the mean attention entropy of each head
# Write `my_head_entropy(weights, attention_mask)`: `weights` is `(B, nh, T, T)` for one
# layer, `attention_mask` is `(B, T)`. Return a `(nh,)` tensor: each head's entropy in
# **nats**, averaged over the real query tokens of all sentences.


# %% tags=["exercise"]
def my_head_entropy(weights, attention_mask):
    """Mean entropy (nats) of each head's attention rows over the real query tokens.

    weights: (B, nh, T, T) attention of one layer; attention_mask: (B, T), 1 = real token.
    Returns a (nh,) tensor.
    """
    # YOUR CODE HERE (about 3 lines)
    raise NotImplementedError


# %%
head_entropy = lesson.check("head_entropy", my_head_entropy)
tiny_stats = inspect.head_statistics(tiny, texts)
layer = tiny.config.num_hidden_layers - 1
mine = head_entropy(batch.layer(layer), batch.attention_mask)
print(f"layer {layer}, your entropies (nats):    {np.round(mine.numpy(), 4)}")
print(
    f"layer {layer}, minibert.inspect's:       {np.round(tiny_stats.metrics['entropy'][layer], 4)}"
)
print(f"the same in bits (divide by ln 2):       {np.round(entropy_bits(mine.numpy()), 4)}")
mean_length = batch.attention_mask.sum(1).double().mean().item()
print(
    f"uniform over a sentence of the mean length ({mean_length:.0f} tokens): {np.log(mean_length):.3f} nats"
)

# %% [markdown]
# The library also keeps the **normalized entropy** $H_i / \ln T$ (1.0 is uniform at any
# length), the **mean attention distance** $\sum_j a_{ij}\,|i-j|$, and the weight on
# `[CLS]`, `[SEP]`, punctuation, the token itself, the previous and the next token.
#
# The **previous-token weight** of a head is $a_{i,i-1}$ averaged over the queries that *have*
# a previous token:
#
# $$\bar a_{\text{prev}} = \frac{1}{N_{\text{pairs}}} \sum_{\text{real } i \ge 1} a_{i,\,i-1} .$$
#
# In the matrix, $a_{i,i-1}$ is the diagonal just *below* the main one (row $i$, column
# $i-1$): `torch.diagonal(weights, offset=-1, dim1=-2, dim2=-1)`.
#
# ### Exercise 2: the previous-token weight
# Write `my_previous_weight(weights, attention_mask)` with the same inputs; return `(nh,)`.


# %% tags=["exercise"]
def my_previous_weight(weights, attention_mask):
    """Mean weight a[i, i-1] of each head over the real queries i >= 1.

    weights: (B, nh, T, T) attention of one layer; attention_mask: (B, T), 1 = real token.
    Returns a (nh,) tensor.
    """
    # YOUR CODE HERE (about 3 lines)
    raise NotImplementedError


# %%
previous_weight = lesson.check("previous_weight", my_previous_weight)
by_hand = np.stack(
    [previous_weight(batch.layer(i), batch.attention_mask).numpy() for i in range(layer + 1)]
)
print("previous-token weight per (layer, head), by hand:")
print(np.round(by_hand, 3))
print(
    "largest difference from minibert.inspect: "
    f"{np.abs(by_hand - tiny_stats.metrics['previous']).max():.2e}"
)

# %% [markdown]
# ## 3. Classes of heads
#
# Clark et al. found heads in BERT-base that put more than half their weight on one relative
# position, and heads that put most of theirs on `[SEP]` (and `.`/`,`). minibert classifies a
# head by its statistics, rules tried **in order** (thresholds below):
#
# 1. **previous-token / next-token / self**: the largest of $\bar a_{i,i-1}$,
#    $\bar a_{i,i+1}$, $\bar a_{ii}$, if it is at least $\theta_{\text{pos}}$;
# 2. **delimiter**: $\bar a_{\text{[CLS]}} + \bar a_{\text{[SEP]}} +
#    \bar a_{\text{punct}} \ge \theta_{\text{delim}}$;
# 3. **broad**: normalized entropy $\bar H / \ln T \ge \theta_{\text{broad}}$;
# 4. **mixed**: none of these (often a content-dependent head, e.g. a syntactic one).
#
# ### Exercise 3: classify a head
# Write `my_classify_head(stats, thresholds)`: `stats` is one head's statistics (a dict with
# keys `entropy`, `normalized_entropy`, `distance`, `cls`, `sep`, `punctuation`, `self`,
# `previous`, `next`), `thresholds` is a dict with `positional`, `delimiter` and `broad`.
# Return the class name (a string from the list printed below).

# %%
print("classes:", HEAD_CLASSES)
print("thresholds:", CLASS_THRESHOLDS)


# %% tags=["exercise"]
def my_classify_head(stats, thresholds):
    """The class of one head: 'previous-token', 'next-token', 'self', 'delimiter', 'broad'
    or 'mixed', by the rules above, tried in that order."""
    # YOUR CODE HERE (about 10 lines)
    raise NotImplementedError


# %%
classify_head = lesson.check("classify_head", my_classify_head)
for name, stats in [("tiny (ours)", tiny_stats), ("MiniLM", None)]:
    if stats is None:
        stats = minilm_stats = inspect.head_statistics(minilm, texts)
    layers, heads = stats.classes.shape
    yours = [
        [classify_head(stats_of_head(stats, i, h), CLASS_THRESHOLDS) for h in range(heads)]
        for i in range(layers)
    ]
    agree = int((np.array(yours) == stats.classes).sum())
    print(f"{name:>12}: your classes agree with the library on {agree} of {layers * heads} heads")
    print(f"{'':>12}  {class_counts(stats)}")

# %%
viz.head_class_map(minilm_stats).show()
viz.head_class_map(tiny_stats).show()

# %% [markdown]
# Read the two maps and the counts printed above. In MiniLM (trained far longer on far more
# text), look for positional heads in the lower layers and delimiter heads in the middle,
# the pattern Clark et al. describe in BERT-base. Our tiny model has had minutes of training;
# whatever it shows, the next section asks *when* such heads appear.
#
# Below: the strongest previous-token head of MiniLM, drawn on one sentence (lines from each
# token to the tokens it attends to).

# %%
best = np.unravel_index(minilm_stats.metrics["previous"].argmax(), minilm_stats.classes.shape)
best = tuple(int(i) for i in best)
print(
    f"MiniLM's strongest previous-token head: layer {best[0]}, head {best[1]} "
    f"(average weight {minilm_stats.metrics['previous'][best]:.2f})"
)
sentence = "The cat sat on the mat because it was warm."
viz.head_view(inspect.attention(minilm, sentence), best[0], heads=[best[1]]).show()

# %% [markdown]
# ## 4. Heads over training: when do they appear?
#
# A run's checkpoints are the model at several steps of pretraining. We compute the same head
# statistics at each one and follow the **strongest** previous-token head, the strongest
# `[SEP]` head, and the mean normalized entropy of all heads. Step 0 is a fresh model built
# with the run's initialisation recipe.
#
# **A confession about our recipe.** A BERT initialised as in the paper attends almost
# uniformly at step 0, and Clark et al.'s positional heads are *learned*. minibert's training
# recipe does not wait for that: `minibert.init.local_attention_init_` starts layer 0's first
# two heads as **offset heads** (previous token, next token), because in a few minutes of
# tiny pretraining a default-initialised model never finds them (the measurement is in
# `minibert/train/settings.py` and `docs/recipe.md`). So in our run, watch whether the planted
# heads *stay* positional, and whether anything else (a `[SEP]` head, other heads sharpening)
# appears.
#
# If the pretrained run has only a few checkpoints, the cell below first trains a short tiny
# run that saves one every few steps.

# %%
history = lesson09.checkpointed_run(lesson, run)
checkpoints = inspect.list_checkpoints(history)
print(f"{history.name}: {len(checkpoints)} checkpoints, steps {[c.step for c in checkpoints]}")
rows = heads_over_training(history, texts[: lesson.pick(full=16, fast=4)])
print(
    f"{'step':>6} {'max prev':>9} {'(l, h)':>8} {'max [SEP]':>10} {'(l, h)':>8} {'norm. H':>8}  classes"
)
for row in rows:
    counts = {k: row[k] for k in HEAD_CLASSES if row[k]}
    print(
        f"{row['step']:>6} {row['max_previous']:>9.3f} {str(row['previous_head']):>8} "
        f"{row['max_sep']:>10.3f} {str(row['sep_head']):>8} "
        f"{row['mean_normalized_entropy']:>8.3f}  {counts}"
    )
over_training_figure(rows, CLASS_THRESHOLDS).show()

# %%
theta = CLASS_THRESHOLDS["positional"]
for key, what in [("max_previous", "a previous-token head"), ("max_sep", "a [SEP] head")]:
    step = first_step_over(rows, key, theta)
    if step is None:
        print(f"{what}: no head reached {theta} in this run's checkpoints")
    else:
        print(f"{what}: first checkpoint with a head at or above {theta}: step {step}")

# %% [markdown]
# The printout above is this run's answer. In our recipe the previous-token head is there at
# step 0 by construction; what training does to it (sharpen, blur, keep) and whether a
# delimiter head appears is what the table shows. In a BERT trained from the paper's
# initialisation, positional heads have to be *found* by gradient descent; a short run may
# never find them (try it: "Things to try" 1). A `[SEP]` head is often read as a "no-op": a
# head with nothing useful to attend to parks its weight on a token that is always there
# (Clark et al. Sec. 3.2).
#
# The same sentence at every checkpoint, for the head that ends as the strongest
# previous-token head (drag the slider):

# %%
over = inspect.attention_over_training(history, sentence)
last = rows[-1]["previous_head"]
viz.attention_over_training(over, layer=last[0], head=last[1]).show()

# %% [markdown]
# ## 5. Ablation: which heads matter?
#
# A pattern is not a function. To see whether a head *matters*, switch it off and measure
# (Michel et al. 2019): the model's `head_mask` multiplies head $h$ of layer $l$ by 0, so
# the layer's output is computed without it,
#
# $$\mathrm{MHA}(x) = \big[\, m_1 \mathrm{head}_1(x); \dots; m_{n_h} \mathrm{head}_{n_h}(x)
# \,\big] W^O, \qquad m_h \in \{0, 1\}.$$
#
# **The metric matters.** For a masked LM, `ablate_heads` can score masked-token accuracy or
# masked-token loss on the same held-out sentences with the same masks. An under-trained
# model often guesses the same frequent token everywhere, so its accuracy barely moves when
# a head goes; the loss (cross-entropy) still moves. We use the loss: **higher is worse**.

# %%
ablation = inspect.ablate_heads(
    tiny,
    metric="masked-token loss",
    num_sentences=lesson.pick(full=64, fast=8),
    chosen=tiny_stats.heads_of_class("previous-token")[:4] or [(0, 0)],
)
print(
    f"{ablation.metric_name} with every head on: {ablation.baseline:.4f} "
    f"({ablation.num_examples} masked tokens)"
)
print("the 5 removals that hurt most (layer, head, score, change):")
for layer_index, head, score, change in ablation.rows[:5]:
    print(
        f"  layer {layer_index} head {head}: {score:.4f} ({change:+.4f}), "
        f"class {tiny_stats.classes[layer_index, head]}"
    )
print(f"off together {ablation.chosen}: {ablation.chosen_score:.4f}")
viz.ablation_chart(ablation).show()

# %% [markdown]
# Things to notice in the numbers above: the spread of the changes (a few heads matter, many
# barely do: Michel et al. pruned many heads of BERT-base with little loss), whether the
# heads that hurt most are the ones with a named class, and how the score of heads removed
# *together* compares with the sum of their single removals. With a few hundred masked tokens
# a change of a few thousandths is within noise: rerun with another `seed=` to see how much
# the numbers move before trusting a ranking.
#
# ## 6. Pretrained vs fine-tuned attention
#
# Fine-tuning changes every weight. How much does each head's attention move? We fine-tune
# our pretrained run on the `wiki-topic` task (a short run) and compare the two models'
# attention on the same text, head by head, with the **total variation distance** of each
# query row, averaged over rows:
#
# $$d(l, h) = \frac{1}{T}\sum_i \tfrac12 \sum_j \big| a_{ij} - a'_{ij} \big| \in [0, 1].$$

# %%
from minibert.train.finetuning import finetune

topic = finetune(
    out=lessons.runs_root() / "lesson-09-topic",
    overwrite=True,
    overrides={
        "task": "wiki-topic",
        "init": str(run),
        "epochs": 2,
        "task.max_seq_len": 64,
        "task.train_limit": lesson.pick(full=512, fast=32),
        "task.eval_limit": lesson.pick(full=128, fast=16),
        "train.num_threads": torch.get_num_threads(),
        "train.progress": False,
    },
)
print(
    f"fine-tuned for {topic.steps} steps: validation accuracy "
    f"{topic.validation['accuracy']:.3f}, macro-F1 {topic.validation['macro_f1']:.3f}"
)

# %%
paragraph = (
    "The team won the championship after a long season, and the coach praised the players "
    "for their defence."
)
comparison = inspect.compare_attention(run, topic.run_dir, paragraph)
print(
    "mean change per layer (0 = same attention):", np.round(layer_means(comparison.difference), 3)
)
print("most changed heads (layer, head, distance):", comparison.most_changed(3))
viz.attention_difference(comparison).show()

# %% [markdown]
# Read the per-layer means printed above. Studies of fine-tuned BERT (Kovaleva et al. 2019;
# Merchant et al. 2020) found that fine-tuning changes the **last layers** most and leaves the
# lower ones close to the pretrained model: the classifier reads the top of the network, and
# the gradient that reaches the bottom is small. Does our short fine-tuning agree?
#
# ## Recap
#
# * A head's statistic is an average over **query rows** of real tokens: entropy
#   $-\sum_j a_{ij}\ln a_{ij}$ (nats, $0\ln 0 = 0$), previous-token weight $a_{i,i-1}$ over
#   queries that have one, weight on `[CLS]`/`[SEP]`/punctuation.
# * Heads fall into **classes** (positional, delimiter, broad, mixed) by thresholds tried in
#   order; real BERTs have positional heads low and delimiter heads in the middle.
# * Over **training**, attention starts near uniform; delimiter and positional heads appear as
#   the model learns; this run printed when.
# * **Ablation** asks whether a head matters, and the answer depends on the metric and its
#   noise; a named pattern does not guarantee importance.
# * **Fine-tuning** moves upper layers' attention more than lower layers'.
#
# ## Things to try
#
# 1. Pretrain a tiny run *without* offset heads and look at its heads:
#    `minibert.train.pretraining.pretrain(out="runs/no-offsets", overrides={"preset": "tiny",
#    "time_budget": 120, "init.local_attention_offsets": [], "checkpoint_every": 10})`, then
#    `heads_over_training("runs/no-offsets", texts)`. Does a previous-token head appear?
# 2. Change `CLASS_THRESHOLDS` (e.g. `inspect.head_statistics(tiny, texts,
#    thresholds={"positional": 0.3})`): how many more positional heads does the tiny model have?
# 3. Ablate MiniLM? It has no masked-LM head (it is a sentence encoder): try it and read the
#    error. Ablate the fine-tuned model instead: `inspect.ablate_heads(topic.run_dir)` scores
#    validation accuracy.
# 4. Rerun the ablation with `seed=1` and compare the top-5 list: which rankings survive?
# 5. Compute the mean attention distance by hand ($\sum_j a_{ij}|i-j|$) and compare with
#    `tiny_stats.metrics["distance"]`.
# 6. Lesson 10 fine-tunes with far fewer trainable parameters (LoRA, adapters): compare its
#    attention with full fine-tuning's using `compare_attention`.

# %%
lesson.done()
