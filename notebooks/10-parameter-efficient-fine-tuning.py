# %% [markdown]
# # Lesson 10 · Parameter-efficient fine-tuning: LoRA and adapters
#
# Full fine-tuning (lesson 07) updates every weight of the pretrained model, so every task
# needs its own full copy. Parameter-efficient fine-tuning (PEFT) freezes the pretrained
# weights and trains a few new ones. This lesson writes the two best-known methods from
# scratch, puts them into our BERT, and measures what they cost and what they give against
# full fine-tuning on the same task with the same budget.
#
# **Learning objectives.** By the end you can
# 1. count a model's trainable parameters correctly (frozen parts, tied weights);
# 2. write a **LoRA** layer (Hu et al. 2021) as an `nn.Module`: frozen $W_0$, trainable
#    low-rank $BA$, the $\alpha/r$ scaling, $B = 0$ at the start, the merged weight;
# 3. write a **bottleneck adapter** (Houlsby et al. 2019): $x + W_{up} f(W_{down} x)$,
#    near the identity at the start;
# 4. fine-tune the same pretrained BERT three ways with one training loop and one budget, and
#    read trainable parameters, accuracy, macro-F1 and time side by side;
# 5. place BERT in what came after it: better encoders, prompting and instruction-tuned
#    decoders, and PEFT.
#
# **Prerequisites.** Lesson 07 (fine-tuning a classifier on `wiki-topic`); lesson 02 (the
# query/key/value projections). PyTorch: `nn.Module`, `nn.Parameter`, `requires_grad`,
# `nn.Linear` stores its weight as `(out_features, in_features)`.
#
# **Time.** About a minute to run on a 2-core laptop; a 50-minute class with the exercises.

# %%
from minibert import lessons

lesson = lessons.start("10-parameter-efficient-fine-tuning")

# %%
import torch
from torch import nn

from minibert.data.tokenizer import load_tokenizer
from minibert.lessons.lesson10 import (
    adapter_parameter_formula,
    add_adapters,
    add_lora,
    comparison_figure,
    freeze_all_but_head,
    load_task_splits,
    lora_parameter_formula,
    results_table,
    sequence_classifier,
    train_classifier,
)

# %% [markdown]
# ## 1. What full fine-tuning costs
#
# We start from the pretrained tiny BERT (lesson 06's run, or a short one trained now) and put
# a fresh classifier for the 6 topics of `wiki-topic` on it.
#
# ### Exercise 1: count the parameters
# Write `my_count_parameters(model)` returning `(trainable, total)`: how many *numbers* the
# optimiser would update (`requires_grad` is `True`) and how many the model has. Careful:
# one tensor can belong to two modules (BERT's masked-LM output layer shares the word
# embedding matrix), and it is still one set of numbers.


# %% tags=["exercise"]
def my_count_parameters(model):
    """(trainable, total): numbers in parameters with requires_grad, and in all parameters,
    each shared tensor counted once."""
    # YOUR CODE HERE (about 3 lines)
    raise NotImplementedError


# %%
count_parameters = lesson.check("count_parameters", my_count_parameters)
run = lessons.pretrained_run(lesson)
tokenizer = load_tokenizer(run / "tokenizer")
labels = ["person", "place", "science", "society", "culture", "other"]
model = sequence_classifier(run, labels)
trainable, total = count_parameters(model)
config = model.config
print(
    f"tiny BERT classifier: {total:,} parameters, {trainable:,} trainable; "
    f"{config.num_hidden_layers} layers, hidden {config.hidden_size}"
)
embedding = config.vocab_size * config.hidden_size
print(f"the word embeddings alone: {embedding:,} ({embedding / total:.0%})")
print(f"one fine-tuned copy per task in float32: {total * 4 / 1e6:.1f} MB")

# %% [markdown]
# ## 2. LoRA: a low-rank update of a frozen weight
#
# Hu et al. (2021) observe that the *change* fine-tuning makes to a weight matrix has a low
# "intrinsic rank". So they freeze the pretrained $W_0 \in \mathbb{R}^{d_{out}\times d_{in}}$
# and learn the change as a product of two thin matrices:
#
# $$h = W_0 x + b_0 + \frac{\alpha}{r}\, B A x, \qquad
# A \in \mathbb{R}^{r \times d_{in}},\; B \in \mathbb{R}^{d_{out} \times r},\; r \ll d .$$
#
# * $A$ starts random (Gaussian), $B$ starts at **zero**: $BAx = 0$, so step 0 is exactly the
#   pretrained model, and the gradient of $B$, $\frac{\partial L}{\partial h}(Ax)^\top$, is
#   not zero, so training can start;
# * $\alpha/r$ scales the update so that trying another $r$ does not change its size (the
#   paper sets $\alpha$ once and does not tune it);
# * trainable numbers per matrix: $r(d_{in} + d_{out})$ instead of $d_{in} d_{out}$;
# * after training the update can be **merged**, $W = W_0 + \frac{\alpha}{r} BA$: one matrix
#   again, no extra cost at inference.
#
# The paper adapts the attention **query** and **value** projections (Sec. 7.1); so do we.
#
# ### Exercise 2: a LoRA layer
# Write `my_lora_linear(base, r, alpha)`: it returns an `nn.Module` that wraps the
# `nn.Linear` `base` and has
# * `base` frozen (its weight and bias do not train),
# * parameters `lora_A` of shape `(r, base.in_features)` (Gaussian, e.g. `torch.randn(...) / r`)
#   and `lora_B` of shape `(base.out_features, r)` (zeros),
# * `forward(x)` giving $W_0 x + b_0 + \frac{\alpha}{r} BAx$ for `x` of shape `(..., d_in)`,
# * a method `merged_weight()` returning $W_0 + \frac{\alpha}{r} BA$, shape `(d_out, d_in)`.
#
# Define the class inside the function and return an instance (the template shows where).


# %% tags=["exercise"]
def my_lora_linear(base, r, alpha):
    """An nn.Module wrapping the frozen nn.Linear `base` with a LoRA update of rank `r`:
    parameters lora_A (r, d_in) and lora_B (d_out, r), forward(x), merged_weight()."""
    # YOUR CODE HERE (about 18 lines): class LoRALinear(nn.Module): ...
    #                                  return LoRALinear(base, r, alpha)
    raise NotImplementedError


# %%
lora_linear = lesson.check("lora_linear", my_lora_linear)

# %% [markdown]
# Now put it into the pretrained model: freeze everything except the task head (the new
# classifier, and the pooler, which our masked-LM pretraining never trained), then wrap each
# layer's query and value projections. At step 0 the model must compute exactly what it
# computed before.

# %%
r, alpha = 4, 8.0
example = tokenizer(["Paris is the capital of France."], return_tensors="pt")
model.eval()
with torch.no_grad():
    logits_before = model(**example).logits
lora_model = add_lora(model, lora_linear, r=r, alpha=alpha)
with torch.no_grad():
    logits_after = lora_model(**example).logits
print(f"largest change of the logits at step 0: {(logits_after - logits_before).abs().max():.2e}")
trainable, total = count_parameters(lora_model)
head = sum(
    p.numel()
    for n, p in lora_model.named_parameters()
    if n.startswith(("classifier", "bert.pooler"))
)
added = lora_parameter_formula(
    config.num_hidden_layers, 2, r, config.hidden_size, config.hidden_size
)
print(
    f"LoRA r={r}: {added:,} LoRA numbers (= layers x 2 x r (d_in + d_out)) + {head:,} in the head"
)
print(f"trainable {trainable:,} of {total:,} ({trainable / total:.2%})")

# %% [markdown]
# ## 3. Adapters: a small bottleneck inside every layer
#
# Houlsby et al. (2019) insert a small module after each sub-layer (attention, feed-forward),
# on its output before the residual connection and layer norm:
#
# $$\mathrm{Adapter}(x) = x + W_{up}\, f(W_{down} x + b_{down}) + b_{up}, \qquad
# W_{down} \in \mathbb{R}^{m\times H},\; W_{up} \in \mathbb{R}^{H \times m},\; m \ll H .$$
#
# The skip connection and a (near-)zero $W_{up}$ make it start as the identity, so, like
# LoRA, training starts from the pretrained network. Each adapter adds $2Hm + m + H$
# parameters; Houlsby et al. also train the layer norms. Unlike LoRA, an adapter cannot be
# merged into the weights (the nonlinearity $f$ is in the way): it costs a little at inference.
#
# ### Exercise 3: an adapter
# Write `my_adapter(hidden_size, bottleneck)`: it returns an `nn.Module` with `nn.Linear`
# attributes `down` (`hidden_size -> bottleneck`) and `up` (`bottleneck -> hidden_size`)
# whose `forward(x)` is $x + \mathrm{up}(\mathrm{GELU}(\mathrm{down}(x)))$ and which starts
# as the identity.


# %% tags=["exercise"]
def my_adapter(hidden_size, bottleneck):
    """An nn.Module x -> x + up(gelu(down(x))), down: Linear(hidden_size, bottleneck),
    up: Linear(bottleneck, hidden_size), the identity at initialisation."""
    # YOUR CODE HERE (about 14 lines): class Adapter(nn.Module): ...
    raise NotImplementedError


# %%
adapter = lesson.check("adapter", my_adapter)
bottleneck = 16
adapter_model = add_adapters(sequence_classifier(run, labels), adapter, bottleneck=bottleneck)
adapter_model.eval()
with torch.no_grad():
    change = (adapter_model(**example).logits - logits_before).abs().max()
print(f"largest change of the logits at step 0: {change:.2e}")
trainable, total = count_parameters(adapter_model)
added = adapter_parameter_formula(config.num_hidden_layers, config.hidden_size, bottleneck)
print(f"adapters m={bottleneck}: {added:,} adapter numbers (= layers x 2 x (2Hm + m + H))")
print(
    f"trainable {trainable:,} of {total:,} ({trainable / total:.2%}; layer norms and head included)"
)

# %% [markdown]
# ## 4. The comparison: same task, same budget
#
# Every method below is trained by the **same loop** (`train_classifier` in
# `minibert/lessons/lesson10.py`): the same training examples in the same seeded order, the
# same batch size and number of steps, AdamW with BERT's warm-up-then-linear-decay schedule,
# gradient clipping at 1, and the same validation examples, scored with the fine-tuning
# engine's own `predict` and `split_metrics`. The only differences are which parameters train
# and the learning rate: small added modules that start at zero usually want a larger one
# (Hu et al. and Houlsby et al. both tune it per method). The values are printed with the
# results; "Things to try" sweeps them.
#
# A fourth row, **head only**, freezes the whole encoder and trains just the pooler and the
# classifier: the floor any method must beat.
#
# Accuracy is the share of validation paragraphs whose topic is right; macro-F1 averages the
# per-class $F_1 = \frac{2PR}{P+R}$ over the 6 topics, so a model that predicts only the most
# common topic scores low even when its accuracy is not.

# %%
data = load_task_splits(
    tokenizer,
    train_limit=lesson.pick(full=1600, fast=32),
    eval_limit=lesson.pick(full=320, fast=16),
    max_seq_len=64,
)
steps = lesson.pick(full=500, fast=2)
batch_size = 16
print(
    f"{data.name}: {len(data.train)} training and {len(data.validation)} validation paragraphs "
    f"(first 64 tokens); every method trains {steps} steps of {batch_size} "
    f"({steps * batch_size / len(data.train):.1f} epochs)"
)
budget = {"steps": steps, "batch_size": batch_size, "seed": 0}
methods = {
    "full fine-tuning": (lambda: sequence_classifier(run, labels), 5e-4),
    "head only": (lambda: freeze_all_but_head(sequence_classifier(run, labels)), 2e-3),
    f"LoRA (r={r}, q+v)": (
        lambda: add_lora(sequence_classifier(run, labels), lora_linear, r=r, alpha=alpha),
        2e-3,
    ),
    f"adapters (m={bottleneck})": (
        lambda: add_adapters(sequence_classifier(run, labels), adapter, bottleneck=bottleneck),
        2e-3,
    ),
}
results = []
trained = {}
for name, (build, lr) in methods.items():
    trained[name] = build()
    first = not results  # the untrained score is the same for every method: measure it once
    results.append(
        train_classifier(trained[name], data, method=name, lr=lr, measure_before=first, **budget)
    )
    print(f"done: {name} ({results[-1].seconds:.0f} s)")
print()
print(results_table(results))
print(f"\nbefore training (every method starts here): accuracy {results[0].accuracy_before:.3f}")

# %%
comparison_figure(results).show()

# %% [markdown]
# Read the table above (this run's numbers):
#
# * **trainable**: LoRA and adapters train a few percent of the model, most of it the task
#   head; on a BERT-base (110M) the same LoRA would be well under 1%;
# * **accuracy and macro-F1** after the same number of steps: how close does each PEFT method
#   get to full fine-tuning, and how far above *head only* is it?
# * **seconds**: a frozen model still runs its full forward *and* backward pass (gradients
#   must flow through frozen layers to reach LoRA's and the adapters' parameters), so PEFT
#   saves optimizer memory and storage far more than time, on a model this small.
#
# A tiny model trained for seconds is a noisy place to rank methods: a different seed or
# learning rate can swap neighbours. The published comparisons (Houlsby et al. on GLUE; Hu et
# al. on GLUE with RoBERTa and DeBERTa, and on GPT-3) found PEFT within about a point of full
# fine-tuning on large models.
#
# ### Merging LoRA
# Replace every LoRA layer by one `nn.Linear` holding its merged weight: the predictions do
# not change, and the model is an ordinary BERT again.

# %%
lora_trained = trained[f"LoRA (r={r}, q+v)"]
with torch.no_grad():
    logits_lora = lora_trained(**example).logits
    for layer in lora_trained.bert.layers:
        for target in ("query", "value"):
            wrapped = getattr(layer.attention, target)
            plain = nn.Linear(wrapped.base.in_features, wrapped.base.out_features)
            plain.weight.copy_(wrapped.merged_weight())
            plain.bias.copy_(wrapped.base.bias)
            setattr(layer.attention, target, plain)
    logits_merged = lora_trained(**example).logits
print(f"largest difference after merging: {(logits_merged - logits_lora).abs().max():.2e}")
print(f"parameters after merging: {sum(p.numel() for p in lora_trained.parameters()):,}")

# %% [markdown]
# ## 5. Where the field went after BERT
#
# Facts, with the paper to read for each.
#
# **Better encoders (same job as BERT: read text, produce vectors).**
# * **RoBERTa** (Liu et al. 2019, arXiv:1907.11692): the same architecture trained longer on
#   about 10 times more text with larger batches; drops next-sentence prediction; masks
#   dynamically (a new mask each time a sequence is seen); byte-level BPE vocabulary.
# * **ALBERT** (Lan et al. 2020, ICLR, arXiv:1909.11942): fewer parameters through a
#   factorised embedding ($V \times E$ then $E \times H$) and one set of layer weights shared
#   by every layer; replaces next-sentence prediction by sentence-order prediction.
# * **ELECTRA** (Clark et al. 2020, ICLR, arXiv:2003.10555): *replaced token detection*: a
#   small masked-LM generator fills in masked tokens and the main model classifies **every**
#   token as original or replaced, so it learns from all positions, not the 15% masked;
#   more accuracy per unit of compute.
# * **DeBERTa** (He et al. 2021, ICLR, arXiv:2006.03654): *disentangled attention*, with
#   separate content and relative-position vectors in the attention score, and absolute
#   positions added only near the output; DeBERTaV3 (arXiv:2111.09543) trains it ELECTRA-style.
# * **Distillation**: DistilBERT (Sanh et al. 2019, arXiv:1910.01108) and MiniLM (Wang et al.
#   2020, arXiv:2002.10957; the model in our earlier lessons is a sentence-embedding model
#   built on it) train small students to imitate a large BERT.
# * **ModernBERT** (Warner et al. 2024, arXiv:2412.13663): an encoder with recent
#   architecture choices (rotary positions, GeGLU, alternating local and global attention,
#   8,192-token context, no padding) trained on about 2 trillion tokens including code.
#
# **Prompting and instruction-tuned decoders.**
# * **T5** (Raffel et al. 2020, JMLR, arXiv:1910.10683): every task as text-to-text with an
#   encoder-decoder.
# * **GPT-3** (Brown et al. 2020, arXiv:2005.14165): a 175B-parameter decoder-only model
#   doing tasks from a prompt with a few examples (*in-context learning*), with no weight
#   update at all.
# * **Instruction tuning**: FLAN (Wei et al. 2022, ICLR, arXiv:2109.01652) fine-tunes on many
#   tasks phrased as instructions and generalises to unseen ones; InstructGPT (Ouyang et al.
#   2022, arXiv:2203.02155) adds reinforcement learning from human feedback. Much of what
#   BERT was fine-tuned for is now often done by prompting such models; encoders remain the
#   cheap choice for classification, retrieval and embeddings at scale.
#
# **Parameter-efficient fine-tuning.**
# * **Adapters** (Houlsby et al. 2019, ICML, arXiv:1902.00751): within 0.4% of full
#   fine-tuning on GLUE with about 3.6% parameters added per task (their abstract).
# * **Prefix tuning** (Li & Liang 2021, arXiv:2101.00190) and **prompt tuning** (Lester et
#   al. 2021, arXiv:2104.08691): learn continuous vectors prepended to the input or to every
#   layer's keys and values; the model stays frozen.
# * **BitFit** (Ben Zaken et al. 2022, ACL, arXiv:2106.10199): train only the bias terms.
# * **LoRA** (Hu et al. 2022, ICLR, arXiv:2106.09685): the low-rank update above; on GPT-3
#   175B it cut trainable parameters by about 10,000 times and GPU memory by about 3 times
#   (their abstract). **QLoRA** (Dettmers et al. 2023, arXiv:2305.14314) trains LoRA on a
#   frozen model stored in 4 bits, fine-tuning a 65B model on one 48 GB GPU.
#
# ## Recap
#
# * Count **numbers**, not tensors; trainable means `requires_grad`; a shared tensor once.
# * **LoRA**: $h = W_0x + \frac{\alpha}{r}BAx$, $W_0$ frozen, $A$ random, $B = 0$ (step 0 is
#   the pretrained model), $r(d_{in}+d_{out})$ numbers per matrix, mergeable into one weight.
# * **Adapters**: $x + W_{up} f(W_{down}x)$ after each sub-layer, near the identity at the
#   start, $2Hm + m + H$ numbers each, not mergeable.
# * With one loop and one budget, the table above put PEFT's trainable parameters, accuracy
#   and time next to full fine-tuning's.
#
# ## Things to try
#
# 1. Sweep LoRA's rank: `r` in 1, 2, 8, 16 (keep `alpha`): does accuracy follow the
#    parameter count?
# 2. Sweep the learning rates (e.g. 5e-4, 1e-3, 4e-3) for every method before trusting the
#    ranking; keep the best of each on the validation split (and then report a test split).
# 3. LoRA on all four attention projections (`targets=("query", "key", "value", "output")`)
#    or on the feed-forward (`layer.ffn.up`, `layer.ffn.down`: write your own `add_lora`).
# 4. BitFit: freeze everything but the biases and the head, with `freeze_all_but_head` and
#    a loop over `named_parameters()`; count and train it.
# 5. Compare the fine-tuned attention with lesson 09's tools:
#    `minibert.inspect.compare_attention` needs models saved as runs; LoRA with $B=0$ changes
#    no attention at step 0, and after training only through $W_q$ and $W_v$.

# %%
lesson.done()
