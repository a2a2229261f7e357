# %% [markdown]
# # Lesson 02 · Attention: every token looks at every token
#
# Attention is the one operation in a BERT layer that mixes information *between* positions.
# This lesson writes it by hand, measures why it is scaled the way it is, masks padding, splits
# it into heads, and then runs your code on a real pretrained BERT (MiniLM) and compares with
# what the model computes.
#
# **Learning objectives.** By the end you can
# 1. write scaled dot-product attention $\mathrm{softmax}(QK^\top/\sqrt{d_k})V$ from its formula,
#    with the shape of every intermediate;
# 2. explain, from a measurement, why the scores are divided by $\sqrt{d_k}$ (softmax
#    saturation and vanishing gradients);
# 3. mask padding with an additive bias before the softmax, and say why its value is a large
#    *finite* negative number;
# 4. split a hidden vector into heads and merge them back, and reproduce MiniLM's multi-head
#    attention to within float rounding;
# 5. read attention maps (head view, model view) of a real model.
#
# **Prerequisites.** Lesson 01 (tokens and ids); PyTorch tensors, `@` (matrix product),
# `.transpose`, `.view`, `.softmax(dim=...)`; what a softmax is.
#
# **Time.** About 10 seconds to run on a 2-core laptop; a 50-minute class with the exercises.
#
# Exercises are marked **Exercise**: write the function, run its cell, then run the check below
# it. A check tells you what is wrong (shapes first, then values, and the name of a common
# mistake if yours matches one). An exercise you skip does not stop the notebook: the cells
# after it use the reference. `lesson.solution("name")` prints one answer.

# %%
from minibert import lessons

lesson = lessons.start("02-attention")

# %%
import math

import torch

from minibert import inspect, viz
from minibert.functional import attention_bias_from_padding, scaled_dot_product_attention
from minibert.lessons.lesson02 import (
    attention_by_hand,
    encode,
    layer_inputs,
    max_difference,
    merge_heads,
    saturation_figure,
    saturation_measurements,
    softmax_slider_figure,
)

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# Each position $i$ has a **query** $q_i$ (what it looks for), a **key** $k_j$ (what it offers
# to be found by) and a **value** $v_j$ (what it hands over), all vectors of size $d_k$; stacked
# over the $T$ positions they are the matrices $Q, K, V \in \mathbb{R}^{T \times d_k}$. Vaswani et
# al. (2017), Eq. 1:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V .$$
#
# Step by step, with the shapes (a batch and heads add leading axes, `...`):
#
# | formula | code | shape |
# |---|---|---|
# | $S = Q K^\top / \sqrt{d_k}$, $\;S_{ij} = q_i \cdot k_j / \sqrt{d_k}$ | `q @ k.transpose(-2, -1) / math.sqrt(d_k)` | `(..., T, T)` |
# | $A_{ij} = \dfrac{e^{S_{ij}}}{\sum_{j'} e^{S_{ij'}}}$ (softmax over the keys $j$) | `scores.softmax(dim=-1)` | `(..., T, T)` |
# | $O = A V$, $\;o_i = \sum_j A_{ij} v_j$ | `weights @ v` | `(..., T, d_k)` |
#
# Row $i$ of $A$ is how query $i$ spreads its attention over the keys: it sums to 1.
#
# ### Exercise 1: attention
# Write `my_attention(q, k, v)`. The inputs have shape `(..., T, d_k)` (any leading axes: batch,
# heads). Return the pair `(output, weights)`: output `(..., T, d_k)`, weights `(..., T, T)`.


# %% tags=["exercise"]
def my_attention(q, k, v):
    """softmax(q k^T / sqrt(d_k)) v for q, k, v of shape (..., T, d_k).

    Returns (output (..., T, d_k), weights (..., T, T)); each row of weights sums to 1.
    """
    # YOUR CODE HERE (about 4 lines)
    raise NotImplementedError


# %%
attention = lesson.check("attention", my_attention)

# %% [markdown]
# The check compared your function with `minibert.functional.scaled_dot_product_attention`, the
# function the model itself runs, on random inputs and edge cases. Try it on a tiny example you
# can read: three tokens; query 0 points along the first axis and query 1 along the second,
# while query 2 is short and points between them.

# %%
q = torch.tensor([[4.0, 0.0], [0.0, 4.0], [1.0, 1.0]])  # (T=3, d_k=2)
k = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.1]])  # (T=3, d_k=2)
v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])  # (T=3, d_k=2)
output, weights = attention(q, k, v)
print("weights (row = query, column = key):\n", weights.round(decimals=3))
print("output:\n", output.round(decimals=3))
print("rows sum to", weights.sum(-1))

# %% [markdown]
# ## 2. Why divide by $\sqrt{d_k}$? A measurement
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, their dot product
# $q \cdot k = \sum_{m=1}^{d_k} q_m k_m$ is a sum of $d_k$ terms of variance 1, so
#
# $$\mathrm{Var}(q \cdot k) = d_k, \qquad \mathrm{std}(q \cdot k) = \sqrt{d_k}.$$
#
# Large scores make the softmax **saturate**: one weight near 1, the rest near 0. A saturated
# softmax also stops learning, because its gradient
#
# $$\frac{\partial A_i}{\partial S_j} = A_i(\delta_{ij} - A_j), \qquad
# \Big\lVert \tfrac{\partial A}{\partial S} \Big\rVert_F^2
# = \sum_i A_i^2 - 2\sum_i A_i^3 + \Big(\sum_i A_i^2\Big)^2$$
#
# goes to 0 when one $A_i \to 1$. Dividing by $\sqrt{d_k}$ brings the scores back to variance 1
# whatever the head size. Below: random unit-variance queries and keys for head sizes from 4 to
# 1024, 16 keys each, measured with and without the scaling.

# %%
d_ks = [4, 16, 64, 256, 1024]
rows = saturation_measurements(d_ks, seq_len=16, samples=lesson.pick(full=512, fast=64))
print(
    f"{'d_k':>6} {'std(q.k)':>9} {'sqrt(d_k)':>9} | {'max weight':>10} {'scaled':>7} | "
    f"{'gradient':>9} {'scaled':>7}"
)
for r in rows:
    print(
        f"{r['d_k']:>6} {r['score_std']:>9.2f} {math.sqrt(r['d_k']):>9.2f} | "
        f"{r['max_weight']:>10.3f} {r['max_weight_scaled']:>7.3f} | "
        f"{r['grad']:>9.4f} {r['grad_scaled']:>7.4f}"
    )
saturation_figure(rows).show()

# %% [markdown]
# Read the table (these are this run's numbers): the measured spread of $q \cdot k$ follows
# $\sqrt{d_k}$; without the scaling the largest weight climbs towards 1 and the gradient falls
# towards 0 as $d_k$ grows; with it both stay where they were at $d_k = 4$. BERT-base has
# $d_k = 64$ and MiniLM $d_k = 32$.
#
# Drag the slider: one query's weights over 12 keys, unscaled (red) and scaled (blue).

# %%
softmax_slider_figure([4, 16, 64, 256, 1024]).show()

# %% [markdown]
# ## 3. Padding and the attention mask
#
# Sentences in a batch have different lengths, so the short ones are **padded** with `[PAD]`
# up to the longest. The tokenizer returns an `attention_mask`: 1 for a real token, 0 for
# padding. Padding must not be *looked at*: its key gets weight 0. BERT adds a bias $M$ to the
# scores **before** the softmax,
#
# $$A = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right), \qquad
# M_{ij} = \begin{cases} 0 & \text{key } j \text{ is a token}\\
# -\infty & \text{key } j \text{ is padding,} \end{cases}$$
#
# since $e^{-\infty} = 0$ and the remaining weights are renormalised. In code "$-\infty$" is the
# most negative finite float, `torch.finfo(dtype).min`: next to any real key its weight is still
# exactly 0, but a row whose keys are all padding stays finite instead of $0/0 = $ NaN. $M$ has
# shape `(B, 1, 1, T)`: one value per key, the same for every head and every query.

# %%
mask = torch.tensor([[1, 1, 1, 0, 0]])  # (B=1, T=5): three tokens, two padding
print("attention_bias_from_padding:\n", attention_bias_from_padding(mask, torch.float32))

# %% [markdown]
# ### Exercise 2: masked attention
# Write `my_masked_attention(q, k, v, attention_mask)`: q, k, v are `(B, nh, T, d_k)` and
# `attention_mask` is `(B, T)` of 1 (token) and 0 (padding). Return `(output, weights)` as in
# Exercise 1, with zero weight on every padding key.


# %% tags=["exercise"]
def my_masked_attention(q, k, v, attention_mask):
    """softmax(q k^T / sqrt(d_k) + M) v, M = 0 for tokens and very negative for padding keys.

    q, k, v: (B, nh, T, d_k); attention_mask: (B, T), 1 = token, 0 = padding.
    Returns (output (B, nh, T, d_k), weights (B, nh, T, T)).
    """
    # YOUR CODE HERE (about 6 lines)
    raise NotImplementedError


# %%
masked_attention = lesson.check("masked_attention", my_masked_attention)

# %% [markdown]
# ## 4. Multi-head attention
#
# One softmax per query can attend to one "kind" of thing. Multi-head attention (Vaswani et
# al. 2017, Section 3.2.2) runs $n_h$ attentions side by side on different projections and
# concatenates them:
#
# $$\mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_{n_h})\, W^O,
# \qquad \mathrm{head}_h = \mathrm{Attention}(X W^Q_h, X W^K_h, X W^V_h).$$
#
# In code all heads share one `(H, H)` projection each for Q, K and V; head $h$ owns the
# consecutive slice $h \cdot d_k, \dots, (h+1)\, d_k - 1$ of the projected vector
# ($d_k = H / n_h$). **Splitting** turns `(B, T, H)` into `(B, nh, T, d_k)` so that each head is
# a sequence of its own; **merging** is the reverse, the Concat:
#
# ```
# (B, T, H) --view--> (B, T, nh, d_k) --transpose(1, 2)--> (B, nh, T, d_k)      split
# (B, nh, T, d_k) --transpose(1, 2)--> (B, T, nh, d_k) --reshape--> (B, T, H)    merge
# ```
#
# ### Exercise 3: split the heads
# Write `my_split_heads(x, num_heads)`: `(B, T, H)` to `(B, nh, T, H / nh)`.


# %% tags=["exercise"]
def my_split_heads(x, num_heads):
    """(B, T, H) -> (B, num_heads, T, H // num_heads); head h gets columns h*hs ... (h+1)*hs-1."""
    # YOUR CODE HERE (about 3 lines)
    raise NotImplementedError


# %%
split_heads = lesson.check("split_heads", my_split_heads)
x = torch.arange(24.0).view(1, 3, 8)  # (B=1, T=3, H=8)
print("x (one token per row):\n", x[0])
print("head 0:\n", split_heads(x, 2)[0, 0], "\nhead 1:\n", split_heads(x, 2)[0, 1])
print("merge_heads gives x back:", torch.equal(merge_heads(split_heads(x, 2)), x))

# %% [markdown]
# ## 5. Your attention inside a real BERT
#
# MiniLM (all-MiniLM-L6-v2) is a pretrained BERT: 6 layers, 12 heads of $d_k = 32$, hidden size
# 384. Take the input of one of its layers, project it with the layer's trained $W^Q, W^K,
# W^V$, and run **your** split and attention; merge and project with $W^O$. Compare the weights
# and the output with what the model computes (`minibert`'s own attention module).

# %%
minilm = inspect.load_model("minilm")
sentence = "The cat sat on the mat because it was tired."
inputs = encode(minilm, sentence)
layer = 2
seen = layer_inputs(minilm, inputs, layer)
mine_out, mine_weights = attention_by_hand(seen["module"], seen["hidden"], attention, split_heads)
print(f"layer {layer}: weights {tuple(mine_weights.shape)}, output {tuple(mine_out.shape)}")
print(
    f"largest difference from MiniLM's weights: {max_difference(mine_weights, seen['weights']):.2e}"
)
print(f"largest difference from MiniLM's output:  {max_difference(mine_out, seen['output']):.2e}")

# %% [markdown]
# Differences around $10^{-7}$ are float32 rounding: your attention *is* the model's.
#
# **Padding, for real.** Put the sentence in a batch with a longer one, so it gets padded. With
# the mask, the sentence's vectors do not depend on its batch-mates; without it they do.

# %%
longer = "Attention lets every word in a sentence gather information from every other word."
batch = encode(minilm, [sentence, longer])
n = int(inputs["attention_mask"].sum())
print("padded batch:", tuple(batch["input_ids"].shape), "| the sentence has", n, "tokens")
alone = layer_inputs(minilm, inputs, 0)
padded = layer_inputs(minilm, batch, 0)
with_mask, _ = attention_by_hand(
    padded["module"], padded["hidden"], masked_attention, split_heads, batch["attention_mask"]
)
without_mask, _ = attention_by_hand(padded["module"], padded["hidden"], attention, split_heads)
print(
    f"with the mask:    largest change of its vectors {max_difference(with_mask[0, :n], alone['output'][0]):.2e}"
)
print(
    f"without the mask: largest change of its vectors {max_difference(without_mask[0, :n], alone['output'][0]):.2e}"
)

# %% [markdown]
# ## 6. Looking at attention
#
# `minibert.inspect.attention` runs the model with `output_attentions=True` and returns every
# layer's and head's weights, `(layers, heads, queries, keys)`. The **model view** shows all
# $6 \times 12$ heads at once (rows: layers; columns: heads; point at one to read it): some
# heads look at the previous or next token, some at `[SEP]` or `[CLS]` (a "no-op"), some
# spread out.

# %%
result = inspect.attention(minilm, sentence)
print("attention weights (layers, heads, queries, keys):", result.attentions.shape)
viz.model_view(result).show()

# %% [markdown]
# The **head view** draws one layer as lines from each query token (left) to the keys it
# attends to (right), one colour per head; click heads in the legend to hide them, and use the
# focus slider to follow one token. Look for a head that links *it* to *cat*.

# %%
viz.head_view(result, layer=4).show()

# %% [markdown]
# Explore with your own sentence (in Jupyter or VS Code; an HTML export shows the figures
# above instead):

# %%
from minibert.viz.widgets import AttentionExplorer

AttentionExplorer(minilm, sentence, layer=4)  # switch its view to "lines" for the head view

# %% [markdown]
# ## Recap
#
# * $\mathrm{Attention}(Q, K, V) = \mathrm{softmax}(QK^\top / \sqrt{d_k})\,V$: scores
#   `(..., T, T)`, softmax over the **keys** (last axis), weighted sum of the values.
# * Dividing by $\sqrt{d_k}$ keeps the scores at variance 1; without it the softmax saturates
#   and its gradient vanishes as $d_k$ grows (measured above).
# * Padding is masked by **adding** a very negative, finite bias to the scores of padding
#   **keys** before the softmax; with the mask a sentence's vectors do not depend on its batch.
# * Multi-head attention splits `(B, T, H)` into `(B, nh, T, H/nh)` (view, then transpose),
#   attends per head, merges back and projects with $W^O$; your pieces reproduce MiniLM.
#
# ## Things to try
#
# 1. Call `lesson.mistake("attention", "no sqrt(d_k) scaling")` to get the unscaled version and
#    run it through `attention_by_hand` on MiniLM: how far are its weights from the model's,
#    and how much sharper are they (compare `weights.amax(-1).mean()`)?
# 2. Replace `torch.finfo(dtype).min` by `float("-inf")` in your masked attention and run it on
#    `attention_mask = torch.tensor([[0, 0, 0]])`. What comes out, and what would it do to the
#    next layer?
# 3. In the model view, find a head that attends to the *next* token. Is there one per layer?
# 4. Lesson 03 assembles the whole encoder layer around this attention: LayerNorm, residuals
#    and the feed-forward block.

# %%
lesson.done()
