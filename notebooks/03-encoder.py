# %% [markdown]
# # Lesson 03 · The encoder: embeddings, LayerNorm, residuals, feed-forward, one layer
#
# Lesson 02 built attention. A BERT layer wraps it with a residual connection and a
# LayerNorm, adds a feed-forward block wrapped the same way, and stacks the result $L$ times on
# top of an embedding layer. This lesson builds each piece, assembles one layer, runs your layer
# through all six layers of a real pretrained BERT (MiniLM), and ends by loading MiniLM's weights
# into minibert yourself and matching Hugging Face `transformers` to $10^{-5}$.
#
# **Learning objectives.** By the end you can
# 1. write the input representation $E = \mathrm{LN}(E_{\text{token}} + E_{\text{position}} +
#    E_{\text{segment}})$ and say what each table is for;
# 2. implement LayerNorm from its formula and explain the axis it normalises over;
# 3. explain residual connections and the post-LN order BERT uses (and how pre-LN differs);
# 4. write the feed-forward block with GELU and assemble one encoder layer;
# 5. map minibert's parameter names onto `transformers`' and prove the two implementations
#    compute the same numbers.
#
# **Prerequisites.** Lesson 02 (attention, heads, the padding mask). PyTorch: `nn.Linear`'s
# weight layout `(out, in)`, `.mean(dim=..., keepdim=True)`, `.var(unbiased=...)`.
#
# **Time.** About 15 seconds to run on a 2-core laptop; a 50-minute class with the exercises.
#
# Exercises are marked **Exercise**: write the function, run its cell, then run the check below
# it. A check names the common mistake yours matches, if any. An exercise you skip does not stop
# the notebook: the cells after it use the reference. `lesson.solution("name")` prints one
# answer.

# %%
from minibert import lessons

lesson = lessons.start("03-encoder")

# %%
import torch
import torch.nn.functional as F

from minibert import inspect
from minibert.lessons.lesson02 import encode
from minibert.lessons.lesson03 import (
    activation_figure,
    differences_figure,
    embeddings_by_hand,
    layer_differences,
    layer_norm_figure,
    layer_params,
    linear,
    load_with_names,
    minilm_transformers,
    multi_head_attention,
    position_similarity_figure,
    run_layers,
)

# %% [markdown]
# ## 1. Embeddings: token + position + segment
#
# Attention treats its input as a *set*: permute the tokens and the outputs permute with them.
# So BERT adds to each token's vector a learned vector for its **position** $t$, and one for its
# **segment** $s$ (sentence A or B, for sentence-pair tasks), then normalises (Devlin et al. 2019,
# Section 3, Figure 2):
#
# $$E_t = \mathrm{LayerNorm}\big(E_{\text{token}}[x_t] + E_{\text{position}}[t] +
# E_{\text{segment}}[s_t]\big).$$
#
# Each $E$ is a table with one row of $H$ numbers per entry: $|V| \times H$, $512 \times H$ and
# $2 \times H$. Below, the three rows for a sentence pair through MiniLM's tables, summed and
# normalised by hand, compared with minibert's `BertEmbeddings` module.

# %%
minilm = inspect.load_model("minilm")
model = minilm.model  # minibert's BertModel holding MiniLM's weights
pair = minilm.tokenizer("The cat sat on the mat.", "It was tired.", return_tensors="pt")
tokens = minilm.tokenizer.convert_ids_to_tokens(pair["input_ids"][0])
print("tokens:  ", tokens)
print("segments:", pair["token_type_ids"][0].tolist())
by_hand, parts = embeddings_by_hand(model, pair["input_ids"], pair["token_type_ids"])
with torch.no_grad():
    module = model.embeddings(pair["input_ids"], pair["token_type_ids"])
for name, part in parts.items():
    print(f"{name:>9} embedding: {tuple(part.shape)}")
print(f"largest difference from BertEmbeddings: {(by_hand - module).abs().max():.2e}")

# %% [markdown]
# Nobody told MiniLM that position 7 is next to position 8; it learned position vectors from
# data. Their cosine similarities show it: neighbouring positions have similar vectors (the
# bright band along the diagonal).

# %%
position_similarity_figure(model, count=lesson.pick(full=128, fast=64)).show()

# %% [markdown]
# ## 2. LayerNorm
#
# LayerNorm (Ba et al. 2016) normalises each token's vector **on its own**, over its $H$ hidden
# dimensions, then applies a learned per-dimension scale $\gamma$ and shift $\beta$:
#
# $$\mu = \frac{1}{H}\sum_{h=1}^{H} x_h, \qquad \sigma^2 = \frac{1}{H}\sum_{h=1}^{H} (x_h - \mu)^2,
# \qquad \mathrm{LN}(x)_h = \gamma_h\,\frac{x_h - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta_h .$$
#
# Note $\frac{1}{H}$ (not $\frac{1}{H-1}$), and $\epsilon$ *inside* the square root. BERT's
# $\epsilon$ is $10^{-12}$.
#
# ### Exercise 1: LayerNorm
# Write `my_layer_norm(x, weight, bias, eps)` for `x` of shape `(..., H)`, `weight` ($\gamma$)
# and `bias` ($\beta$) of shape `(H,)`.


# %% tags=["exercise"]
def my_layer_norm(x, weight, bias, eps=1e-12):
    """(x - mean) / sqrt(var + eps) * weight + bias, mean and (biased) var over the last axis.

    x: (..., H); weight, bias: (H,). Returns (..., H).
    """
    # YOUR CODE HERE (about 4 lines)
    raise NotImplementedError


# %%
layer_norm = lesson.check("layer_norm", my_layer_norm)

# %% [markdown]
# What it does to real vectors: the sum of the three embeddings above, before and after your
# LayerNorm with $\gamma = 1, \beta = 0$. Every token comes out with mean 0 and standard
# deviation 1, whatever it started with; the learned $\gamma$ and $\beta$ (MiniLM's
# `embeddings.norm`) then give each dimension the scale and offset the model wants.

# %%
raw = parts["token"] + parts["position"] + parts["segment"]  # (1, T, H)
norm = model.embeddings.norm
normalised = layer_norm(raw, torch.ones_like(norm.weight), torch.zeros_like(norm.bias), norm.eps)
print(f"before:  mean of token stds {raw.std(-1, unbiased=False).mean():.4f}")
print(f"after (gamma=1, beta=0): stds {normalised.std(-1, unbiased=False).mean():.4f}")
layer_norm_figure(raw, normalised, tokens).show()

# %% [markdown]
# ## 3. Residuals and the order of things
#
# Each BERT layer has two **sub-layers**, multi-head attention and a feed-forward block. Each is
# wrapped the same way (Vaswani et al. 2017, Section 5.4): its output, after dropout, is *added*
# to its input (the **residual** connection, He et al. 2016), and the sum is normalised. BERT
# normalises *after* the sum, **post-LN**:
#
# $$X' = \mathrm{LN}\big(X + \mathrm{MultiHead}(X)\big), \qquad
# X_{\text{out}} = \mathrm{LN}\big(X' + \mathrm{FFN}(X')\big).$$
#
# Later models (GPT-2 and most recent encoders) use **pre-LN**, $X + \mathrm{Sublayer}(\mathrm{LN}(X))$,
# which trains more stably without warm-up; BERT's weights were trained post-LN, so loading them
# into a pre-LN layer gives a different model.
#
# The residual lets a layer learn a *change* to its input rather than a whole new
# representation, and gives gradients a direct path to early layers. `multi_head_attention(x, p,
# attention_mask)` below is lesson 02's attention with a layer's weights `p`.
#
# ## 4. The feed-forward block and GELU
#
# The same two-layer network is applied to every position separately (Vaswani et al. 2017,
# Eq. 2, with BERT's GELU):
#
# $$\mathrm{FFN}(x) = \mathrm{GELU}(x W_1 + b_1)\, W_2 + b_2, \qquad
# \mathrm{GELU}(x) = x\,\Phi(x) = \frac{x}{2}\Big(1 + \mathrm{erf}\big(x/\sqrt{2}\big)\Big),$$
#
# with $W_1 \in \mathbb{R}^{H \times I}$, $W_2 \in \mathbb{R}^{I \times H}$, $I = 4H$ (MiniLM:
# 384 → 1536 → 384). In PyTorch layout a linear weight is `(out, in)`, so $xW_1 + b_1$ is
# `x @ weight.T + bias` (`linear(x, weight, bias)` in this lesson). GELU is a smooth ReLU that
# lets small negative values through:

# %%
activation_figure().show()

# %% [markdown]
# ### Exercise 2: one encoder layer
# Write `my_encoder_layer(x, p, attention_mask=None)`: `x` is `(B, T, H)`, `p` a dict with one
# layer's weights under minibert's names, plus `p["num_heads"]` and `p["eps"]`:

# %%
example = layer_params(model.layers[0])
for name, value in example.items():
    print(f"{name:<24} {tuple(value.shape) if hasattr(value, 'shape') else value}")

# %% [markdown]
# Use `multi_head_attention(x, p, attention_mask)`, `linear(x, weight, bias)`, `F.gelu` and your
# `layer_norm` (or `F.layer_norm`). Return `(B, T, H)`.


# %% tags=["exercise"]
def my_encoder_layer(x, p, attention_mask=None):
    """One post-LN BERT layer: LN(x + MultiHead(x)), then LN(x + FFN(x)) with GELU.

    x: (B, T, H); p: the layer's weights (see above); attention_mask: (B, T) or None.
    """
    # YOUR CODE HERE (about 6 lines)
    raise NotImplementedError


# %%
encoder_layer = lesson.check("encoder_layer", my_encoder_layer)

# %% [markdown]
# ### Your layer, six times, inside MiniLM
#
# Run MiniLM's embeddings, then **your** layer with each of its six layers' weights, on a
# padded batch; compare every hidden state with minibert's `BertModel`.

# %%
batch = encode(
    minilm, ["The cat sat on the mat.", "Residual connections carry the input past each sub-layer."]
)
mine = run_layers(encoder_layer, model, batch)
with torch.no_grad():
    reference = model(**batch, output_hidden_states=True).hidden_states
real = batch["attention_mask"].bool()  # compare real tokens (padding rows are never used)
for i, (a, b) in enumerate(zip(mine, reference, strict=True)):
    stage = "embeddings" if i == 0 else f"layer {i - 1}"
    print(f"{stage:>10}: largest difference {(a - b)[real].abs().max():.2e}")

# %% [markdown]
# ## 5. MiniLM's real weights into minibert, checked against `transformers`
#
# minibert names its parameters for reading (`layers.0.ffn.up.weight`); `transformers` keeps
# the names of Google's original TensorFlow checkpoint (`encoder.layer.0.intermediate.dense.weight`).
# Loading a checkpoint is a **name table**: for each of our parameters, the name of the same
# weight in theirs. Here are all of ours for one layer, and theirs:

# %%
hf_minilm = minilm_transformers()
ours = [n for n in model.state_dict() if n.startswith(("embeddings.", "layers.0."))]
theirs = [n for n in hf_minilm.state_dict() if n.startswith(("embeddings.", "encoder.layer.0."))]
for a in ours:
    print(f"  ours:   {a}")
for b in theirs:
    print(f"  theirs: {b}")

# %% [markdown]
# ### Exercise 3: the name table
# Write `my_hf_name(name)`: a minibert `BertModel` parameter name (e.g.
# `"layers.3.attention.query.weight"`) → the `transformers` `BertModel` name of the same weight
# (`"encoder.layer.3.attention.self.query.weight"`). Match them by meaning: which of theirs is
# attention's output projection $W^O$, which the first feed-forward linear, which LayerNorm
# follows which sub-layer? `pooler.dense.*` is the same in both.


# %% tags=["exercise"]
def my_hf_name(name):
    """minibert parameter name -> transformers BertModel parameter name."""
    # YOUR CODE HERE (about 15 lines: a prefix and a list of renames)
    raise NotImplementedError


# %%
hf_name = lesson.check("hf_name", my_hf_name)

# %% [markdown]
# Now load every MiniLM weight through your table into a fresh minibert `BertModel` and run
# both implementations on the same batch: the largest difference after the embeddings and after
# each layer. For contrast, the same with one named mistake (the two LayerNorms of each layer
# swapped): every weight has the right shape, so nothing fails to load, but the numbers are off
# from the first layer on.

# %%
ours_model = load_with_names(hf_minilm, hf_name)
matched = layer_differences(ours_model, hf_minilm, batch)
swapped_model = load_with_names(hf_minilm, lesson.mistake("hf_name", "the two LayerNorms swapped"))
swapped = layer_differences(swapped_model, hf_minilm, batch)
print(f"your table: largest difference {max(matched):.2e} -> equal to 1e-5: {max(matched) < 1e-5}")
print(f"LayerNorms swapped: largest difference {max(swapped):.2e}")
differences_figure({"your name table": matched, "LayerNorms swapped": swapped}).show()

# %% [markdown]
# Your name table turned MiniLM's checkpoint into a minibert model that computes what
# `transformers` computes, to float rounding: the equivalence `tests/test_hf.py` checks for every
# model class. `minibert.hf.from_hf` and `to_hf` use the same table (`minibert/hf_names.py`).
#
# ## Recap
#
# * Input: $E = \mathrm{LN}(E_{\text{token}}[x] + E_{\text{position}}[t] + E_{\text{segment}}[s])$;
#   positions are learned, and neighbouring ones end up similar.
# * LayerNorm normalises each token over its **hidden** axis with the biased variance and
#   $\epsilon$ inside the root, then scales by $\gamma$ and shifts by $\beta$.
# * A BERT layer is **post-LN**: $X' = \mathrm{LN}(X + \mathrm{MultiHead}(X))$,
#   $X_{\text{out}} = \mathrm{LN}(X' + \mathrm{GELU}(X'W_1 + b_1)W_2 + b_2)$.
# * Loading a checkpoint is a name table; a wrong entry with the right shape loads silently and
#   computes something else, so compare outputs layer by layer against a reference.
#
# ## Things to try
#
# 1. Run your stack with `lesson.mistake("encoder_layer", "pre-LN instead of post-LN (LayerNorm
#    before the sub-layer)")` in place of `encoder_layer`: how far off is layer 0, and layer 5?
# 2. Same with `"ReLU instead of GELU"` and `"tanh approximation of GELU"`: which hurts more,
#    and why is the tanh one still not equal?
# 3. Shuffle the words of a sentence and compare MiniLM's `[CLS]` vector before and after. Then
#    zero the position table (`model.embeddings.position.weight`) in a copy and repeat.
# 4. Count MiniLM's parameters per part (embeddings, attention, feed-forward, LayerNorm): where
#    do most of them live?
# 5. Lesson 04 prepares the text this encoder is pretrained on.

# %%
lesson.done()
