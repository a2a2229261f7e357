# %% [markdown]
# # Lesson 00 · A tour of the kit: a real BERT, our tiny BERT, and what pretraining does
#
# One sitting, no exercises: look at everything once, so that each later lesson has a place to
# go deeper.
#
# **Learning objectives.** By the end you can
# 1. say what a BERT takes in (word pieces) and gives back (one vector per piece, and for a
#    masked piece a guess over the vocabulary);
# 2. read an attention map: which word looks at which, in which layer and head;
# 3. explain what *pretraining* changes, by comparing our tiny BERT's guesses for `[MASK]`
#    before and after a short pretraining run;
# 4. find the lesson that explains each piece.
#
# **Prerequisites.** Python; no machine learning needed. Everything runs offline on a laptop
# CPU: about 2 minutes the first time (a 90-second pretraining run), 10 seconds afterwards.
#
# **The kit.** `minibert` is a BERT written out in readable PyTorch (numerically equal to
# Hugging Face `transformers`), a real pretraining-data pipeline, and a training engine.
# Notebooks call the library; `minibert.inspect` computes what we look at and `minibert.viz`
# draws it.

# %%
from minibert import lessons

lesson = lessons.start("00-tour")

# %%
from IPython.display import HTML, Markdown, display

from minibert import inspect, viz
from minibert.lessons.lesson00 import (
    FILL_MASK_SENTENCES,
    chance_loss,
    guesses_table,
    lesson_map_markdown,
    offset_head,
    untrained_twin,
)
from minibert.train.rundir import read_metrics

# %% [markdown]
# ## 1. A real pretrained BERT reads a sentence
#
# **MiniLM** (`all-MiniLM-L6-v2`) is a real BERT: 6 layers, 12 attention heads per layer,
# 384-dimensional vectors, trained by others on a billion sentence pairs. It ships with this
# kit, so it loads offline. `minibert` reads its weights into its own `BertModel`.

# %%
minilm = inspect.load_model("minilm")
config = minilm.config
parameters = sum(p.numel() for p in minilm.model.parameters())
print(
    f"MiniLM: {config.num_hidden_layers} layers x {config.num_attention_heads} heads, "
    f"hidden size {config.hidden_size}, vocabulary {config.vocab_size:,}, "
    f"{parameters / 1e6:.1f} M parameters"
)

# %% [markdown]
# The tokenizer cuts the sentence into word pieces (lesson 01) and adds `[CLS]` at the start and
# `[SEP]` at the end. Each layer then lets every piece gather information from every other
# piece through **attention** (lesson 02): piece $i$ scores each piece $j$, turns the scores into
# weights that sum to one, and takes the weighted average of their value vectors,
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V,$$
#
# with $Q$, $K$, $V$ linear projections of the layer's input and $d_k$ the size of one head.
# Below, row $i$ of a map holds piece $i$'s weights over all pieces $j$:
# `inspect.attention` runs the model and returns them for every layer and head.

# %%
sentence = "The cat sat on the mat because it was tired."
seen = inspect.attention(minilm, sentence)
print("word pieces:", seen.tokens)
print("attention weights: (layers, heads, queries, keys) =", seen.attentions.shape)

# %% [markdown]
# Heads specialise. Here is the head of MiniLM that puts the most weight on the *previous*
# piece: a bright line just below the diagonal. Point at a cell to read its weight.

# %%
layer, head, weight = offset_head(seen, offset=-1)
print(
    f"layer {layer}, head {head}: on average {weight:.0%} of each piece's attention goes to "
    "the piece just before it"
)
viz.attention_heatmap(seen, layer, head).show()

# %% [markdown]
# And every head at once: rows are layers, columns heads. Many heads send most of their weight
# to `[CLS]` or `[SEP]` (a "no-op" that lesson 09 examines); others follow neighbours, or link
# *it* to what it refers to.

# %%
viz.model_view(seen).show()

# %% [markdown]
# Explore: change the sentence, the layer and the head (in Jupyter or VS Code; an HTML export
# shows the figure above instead).

# %%
from minibert.viz.widgets import AttentionExplorer

AttentionExplorer(minilm, sentence, layer=layer, head=head)

# %% [markdown]
# ## 2. Our tiny BERT, before pretraining
#
# Pretraining teaches a BERT by **masked language modelling** (lessons 05 and 06): hide some
# pieces behind `[MASK]` and train the model to guess them. With $M$ the masked positions and
# $\tilde{x}$ the corrupted input, the loss is
#
# $$\mathcal{L}_{\text{MLM}} = -\frac{1}{|M|}\sum_{i \in M} \log p_\theta\big(x_i \mid \tilde{x}\big).$$
#
# A model that knows nothing spreads its guess evenly over the vocabulary $V$, so
# $p = 1/|V|$ and the loss is $\ln |V|$. Our tiny BERT has the architecture of a BERT (2 layers,
# 2 heads, 128 dimensions) and our own 8,192-piece vocabulary. First, with **random** weights:

# %%
run = lessons.pretrained_run(lesson)  # lesson 06's run, the demo's, or a short one made now
trained = inspect.load_model(run)
untrained = untrained_twin(trained)
vocab_size = trained.config.vocab_size
print(
    f"chance level: loss ln({vocab_size:,}) = {chance_loss(vocab_size):.2f}, "
    f"probability 1/{vocab_size:,} = {1 / vocab_size:.5f} per guess"
)
before = [inspect.fill_mask(untrained, s, top_k=3) for s in FILL_MASK_SENTENCES]
for result in before:
    guesses = ", ".join(f"{g.token} ({g.probability:.5f})" for g in result.guesses[0])
    print(f"{result.text}\n    random weights guess: {guesses}")

# %% [markdown]
# The random model's top guesses are arbitrary pieces, each with a probability close to the
# chance level printed above: it has no idea yet.
#
# ## 3. A short pretraining run
#
# The cell above found or made a pretraining run (`lessons.pretrained_run`): the tiny BERT
# trained on the Wikipedia excerpt for a short time budget. Its `metrics.jsonl` holds the loss as
# training went; the dashed line is the chance level.

# %%
metrics = read_metrics(run / "metrics.jsonl")
figure = viz.training_curves({run.name: metrics}, y="loss")
figure.add_hline(y=chance_loss(vocab_size), line_dash="dash", annotation_text="chance: ln |V|")
figure.show()
held_out = [m for m in metrics if m.get("split") == "eval" and "mlm_accuracy" in m]
if held_out:
    last = held_out[-1]
    print(
        f"after {last['step']} steps ({last['tokens']:,} tokens): held-out masked-token "
        f"accuracy {last['mlm_accuracy']:.1%}, loss {last['loss']:.2f}"
    )

# %% [markdown]
# ## 4. After pretraining
#
# The same sentences, the same architecture; only the weights differ.

# %%
after = [inspect.fill_mask(trained, s, top_k=3) for s in FILL_MASK_SENTENCES]
display(HTML(guesses_table({"random weights": before, f"pretrained ({run.name})": after})))
viz.fill_mask_chart(after[0]).show()

# %% [markdown]
# What did it learn? A short run first learns the *frequent* pieces ("the", "of", ",") and
# where function words go; longer runs (lesson 06, or `minibert demo`) start to guess content
# words. Compare the probabilities with the chance level above: even a guess of "the" at a few
# percent is hundreds of times more than $1/|V|$.
#
# Our model is tiny and was trained for minutes on half a million words; MiniLM's ancestor
# (BERT) trained for days on 3.3 billion. Lesson 09 looks at what such models' heads do, and
# lesson 06 lets you train longer.

# %% [markdown]
# ## 5. The map: where each lesson goes deeper

# %%
display(Markdown(lesson_map_markdown()))

# %% [markdown]
# ## Recap
#
# * A BERT turns word pieces into vectors, layer by layer; in each layer, **attention** lets
#   every piece weigh every other piece, and different heads learn different patterns.
# * **Pretraining** by masked language modelling starts from chance ($\ln |V|$) and teaches the
#   model which pieces fit where; the same architecture with random weights guesses nothing.
# * `minibert.inspect` computes what we looked at, `minibert.viz` draws it; every later lesson
#   opens one of these boxes.
#
# ## Things to try
#
# 1. In the explorer, type a sentence with a pronoun ("The trophy did not fit in the suitcase
#    because it was too big.") and look for a head that links *it* to a noun.
# 2. Change `FILL_MASK_SENTENCES` to your own sentences (keep one `[MASK]` each).
# 3. Run `minibert demo` in a terminal (4 minutes), then re-run this notebook: it picks up the
#    demo's longer pretraining run and the guesses improve.

# %%
lesson.done()
