"""Lesson 03, the encoder: the exercises (LayerNorm, one post-LN encoder layer, the name table that
loads MiniLM's weights), their named mistakes, and the helpers the notebook uses to compare
minibert with `transformers` layer by layer.

BERT's encoder (Devlin et al. 2019, Section 3; Vaswani et al. 2017, Sections 3.1-3.3):

    E      = LayerNorm(E_token[x] + E_position[t] + E_segment[s])
    X'     = LayerNorm(X + MultiHead(X))                    # post-LN, Vaswani et al. 5.4 / 3.1
    X_out  = LayerNorm(X' + GELU(X' W_1 + b_1) W_2 + b_2)   # the feed-forward block, Eq. 2

LayerNorm (Ba et al. 2016): y = (x - mean) / sqrt(var + eps) * gamma + beta over the hidden
axis, with the biased (1/H) variance. GELU (Hendrycks & Gimpel 2016): x * Phi(x).

The references are the modules the model runs (:class:`minibert.model.BertLayer`,
``torch.nn.functional.layer_norm``) and the one name table of :mod:`minibert.hf_names`;
``tests/test_lessons_03.py`` holds the solutions equal to them.

Shapes: B batch, T sequence length, H hidden size, I intermediate (feed-forward) size, nh heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from minibert.hf_names import ENCODER_NAMES
from minibert.lessons.checking import Mistake, Report, exercise
from minibert.lessons.lesson02 import merge_heads, solution_masked_attention, solution_split_heads

# --------------------------------------------------------------------------------------------
# Exercise 1: LayerNorm
# --------------------------------------------------------------------------------------------


def solution_layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(dim=-1, keepdim=True)  # (..., 1) over the hidden axis only
    var = x.var(dim=-1, keepdim=True, unbiased=False)  # (..., 1) biased: divide by H
    normalised = (x - mean) / torch.sqrt(var + eps)  # (..., H) mean 0, variance 1 per token
    return normalised * weight + bias  # (..., H) learned scale (gamma) and shift (beta)


def _reference_layer_norm(x, weight, bias, eps=1e-12):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def _ln_wrong_axis(x, weight, bias, eps=1e-12):
    mean = x.mean(dim=-2, keepdim=True)  # over the tokens: that is closer to BatchNorm
    var = x.var(dim=-2, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_everything(x, weight, bias, eps=1e-12):
    mean = x.mean()  # no dim: one mean for the whole tensor
    var = x.var(unbiased=False)
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_unbiased(x, weight, bias, eps=1e-12):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True)  # torch's default: unbiased, divides by H - 1
    return (x - mean) / torch.sqrt(var + eps) * weight + bias


def _ln_eps_outside(x, weight, bias, eps=1e-12):
    mean = x.mean(dim=-1, keepdim=True)
    std = x.std(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / (std + eps) * weight + bias


def _ln_no_affine(x, weight, bias, eps=1e-12):
    mean = x.mean(dim=-1, keepdim=True)
    var = x.var(dim=-1, keepdim=True, unbiased=False)
    return (x - mean) / torch.sqrt(var + eps)


@exercise(
    "layer_norm",
    solution=solution_layer_norm,
    reference=_reference_layer_norm,
    mistakes={
        "LayerNorm over the wrong axis": Mistake(
            _ln_wrong_axis,
            why="LayerNorm normalises each token's vector on its own: mean and variance over the "
            "last (hidden) axis, dim=-1, keepdim=True. Over the tokens (dim=-2) every token's "
            "output depends on the other tokens and on the padding.",
        ),
        "normalised over the whole tensor (no dim)": Mistake(
            _ln_everything,
            why="x.mean() without dim= averages every number in the batch. Give dim=-1 and "
            "keepdim=True so each token gets its own mean and variance.",
        ),
        "unbiased variance (divides by H - 1)": Mistake(
            _ln_unbiased,
            why="torch's .var() and .std() divide by H - 1 by default; LayerNorm uses the "
            "population variance, 1/H: pass unbiased=False (or correction=0).",
        ),
        "eps outside the square root": Mistake(
            _ln_eps_outside,
            why="eps goes inside: (x - mean) / sqrt(var + eps). It matters when a vector is "
            "nearly constant, where std + eps and sqrt(var + eps) differ a lot.",
        ),
        "scale and shift (gamma, beta) missing": Mistake(
            _ln_no_affine,
            why="after normalising, multiply by weight (gamma) and add bias (beta): the learned "
            "per-dimension scale and shift. Trained models rely on them.",
        ),
    },
)
def check_layer_norm(fn: Callable[..., Any], report: Report) -> None:
    """Shapes first; random tokens with random gamma/beta; nearly constant vectors (where eps
    matters); vectors far from zero; a single token."""
    g = report.generator
    cases = [
        ((2, 3, 8), 1.0, 0.0, 1e-12, "random (B=2, T=3, H=8)"),
        ((1, 5, 16), 3.0, 2.0, 1e-12, "(1, 5, 16), mean 2, scale 3"),
        ((2, 4, 6), 1e-3, 0.0, 1e-5, "nearly constant vectors, eps = 1e-5"),
        ((1, 2, 32), 1.0, 1000.0, 1e-12, "vectors far from zero (mean 1000)"),
        ((1, 1, 8), 1.0, 0.0, 1e-12, "a single token"),
    ]
    for shape, scale, shift, eps, case in cases:
        x = torch.randn(*shape, generator=g) * scale + shift
        hidden = shape[-1]
        weight = 1.0 + 0.5 * torch.randn(hidden, generator=g)
        bias = 0.5 * torch.randn(hidden, generator=g)
        got = report.call(x, weight, bias, eps)
        report.shape("output", got, shape, case=case)
        report.expect(x, weight, bias, eps, case=case, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------------------------
# Exercise 2: one encoder layer
# --------------------------------------------------------------------------------------------


def layer_params(layer: torch.nn.Module) -> dict[str, Any]:
    """A :class:`minibert.model.BertLayer`'s weights as a plain dict (its state-dict names:
    ``attention.query.weight``, ``attention_norm.weight``, ``ffn.up.weight``, ...), plus
    ``num_heads`` and ``eps`` (the LayerNorm epsilon)."""
    params: dict[str, Any] = {
        name: tensor.detach().clone() for name, tensor in layer.state_dict().items()
    }
    params["num_heads"] = layer.attention.num_heads
    params["eps"] = layer.attention_norm.eps
    return params


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """x W^T + b with a PyTorch-layout weight (out_features, in_features)."""
    return x @ weight.T + bias


def multi_head_attention(
    x: torch.Tensor, p: dict[str, Any], attention_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Lesson 02's multi-head self-attention with the weights in ``p`` (:func:`layer_params`):

        MultiHead(X) = Concat(head_1, ..., head_nh) W^O,  head_i = Attention(X W_i^Q, X W_i^K, X W_i^V)

    ``attention_mask`` (B, T): 1 = token, 0 = padding, or None. Returns (B, T, H).
    """
    heads = p["num_heads"]
    q = solution_split_heads(
        linear(x, p["attention.query.weight"], p["attention.query.bias"]), heads
    )
    k = solution_split_heads(linear(x, p["attention.key.weight"], p["attention.key.bias"]), heads)
    v = solution_split_heads(
        linear(x, p["attention.value.weight"], p["attention.value.bias"]), heads
    )
    if attention_mask is None:
        attention_mask = torch.ones(x.shape[:2], dtype=torch.long)  # (B, T) nothing is padding
    context, _ = solution_masked_attention(q, k, v, attention_mask)  # (B, nh, T, hs)
    return linear(merge_heads(context), p["attention.output.weight"], p["attention.output.bias"])


def solution_encoder_layer(x, p, attention_mask=None):
    eps = p["eps"]
    hidden = x.shape[-1:]
    # Sub-layer 1: attention, then residual + LayerNorm (post-LN: the norm comes *after* the sum).
    attended = multi_head_attention(x, p, attention_mask)  # (B, T, H)
    x = F.layer_norm(
        x + attended, hidden, p["attention_norm.weight"], p["attention_norm.bias"], eps
    )
    # Sub-layer 2: the feed-forward block GELU(x W1 + b1) W2 + b2, residual + LayerNorm.
    h = F.gelu(linear(x, p["ffn.up.weight"], p["ffn.up.bias"]))  # (B, T, I)
    f = linear(h, p["ffn.down.weight"], p["ffn.down.bias"])  # (B, T, H)
    return F.layer_norm(x + f, hidden, p["ffn_norm.weight"], p["ffn_norm.bias"], eps)  # (B, T, H)


def _norm(x, p, which):
    return F.layer_norm(x, x.shape[-1:], p[f"{which}.weight"], p[f"{which}.bias"], p["eps"])


def _ffn(x, p, act=F.gelu):
    return linear(
        act(linear(x, p["ffn.up.weight"], p["ffn.up.bias"])),
        p["ffn.down.weight"],
        p["ffn.down.bias"],
    )


def _layer_pre_ln(x, p, attention_mask=None):
    x = x + multi_head_attention(_norm(x, p, "attention_norm"), p, attention_mask)
    return x + _ffn(_norm(x, p, "ffn_norm"), p)


def _layer_no_attention_residual(x, p, attention_mask=None):
    x = _norm(multi_head_attention(x, p, attention_mask), p, "attention_norm")
    return _norm(x + _ffn(x, p), p, "ffn_norm")


def _layer_no_ffn_residual(x, p, attention_mask=None):
    x = _norm(x + multi_head_attention(x, p, attention_mask), p, "attention_norm")
    return _norm(_ffn(x, p), p, "ffn_norm")


def _layer_ffn_residual_from_input(x, p, attention_mask=None):
    middle = _norm(x + multi_head_attention(x, p, attention_mask), p, "attention_norm")
    return _norm(x + _ffn(middle, p), p, "ffn_norm")  # adds the layer's input, not `middle`


def _layer_norm_wrong_axis(x, p, attention_mask=None):
    def norm(y, which):
        return _ln_wrong_axis(y, p[f"{which}.weight"], p[f"{which}.bias"], p["eps"])

    x = norm(x + multi_head_attention(x, p, attention_mask), "attention_norm")
    return norm(x + _ffn(x, p), "ffn_norm")


def _layer_relu(x, p, attention_mask=None):
    x = _norm(x + multi_head_attention(x, p, attention_mask), p, "attention_norm")
    return _norm(x + _ffn(x, p, F.relu), p, "ffn_norm")


def _layer_gelu_tanh(x, p, attention_mask=None):
    x = _norm(x + multi_head_attention(x, p, attention_mask), p, "attention_norm")
    return _norm(x + _ffn(x, p, lambda y: F.gelu(y, approximate="tanh")), p, "ffn_norm")


def _layer_norms_swapped(x, p, attention_mask=None):
    x = _norm(x + multi_head_attention(x, p, attention_mask), p, "ffn_norm")
    return _norm(x + _ffn(x, p), p, "attention_norm")


def random_layer_params(
    generator: torch.Generator, hidden: int = 16, heads: int = 2, intermediate: int = 48
) -> dict[str, Any]:
    """Weights of a small encoder layer drawn at random (LayerNorm gammas and betas too, so a
    missing or swapped LayerNorm shows), in :func:`layer_params`' format."""
    from minibert.config import BertConfig
    from minibert.model import BertLayer

    config = BertConfig(
        vocab_size=10,
        hidden_size=hidden,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        num_hidden_layers=1,
    )
    layer = BertLayer(config).eval()
    params = layer_params(layer)
    for name, tensor in params.items():
        if isinstance(tensor, torch.Tensor):
            base = 1.0 if name.endswith("norm.weight") else 0.0
            spread = 0.3 if "norm" in name else 1.0 / math.sqrt(tensor.shape[-1])
            params[name] = base + spread * torch.randn(tensor.shape, generator=generator)
    return params


@exercise(
    "encoder_layer",
    solution=solution_encoder_layer,
    mistakes={
        "pre-LN instead of post-LN (LayerNorm before the sub-layer)": Mistake(
            _layer_pre_ln,
            why="BERT is post-LN: x = LayerNorm(x + Sublayer(x)). x + Sublayer(LayerNorm(x)) "
            "is the pre-LN variant of later models (GPT-2, many modern encoders): it trains "
            "more stably but computes something else, and BERT's weights expect post-LN.",
        ),
        "residual missing around the attention": Mistake(
            _layer_no_attention_residual,
            why="each sub-layer's output is *added* to its input before the LayerNorm: "
            "LayerNorm(x + MultiHead(x)). Without the residual the layer forgets its input.",
        ),
        "residual missing around the feed-forward block": Mistake(
            _layer_no_ffn_residual,
            why="the feed-forward block is wrapped like the attention: LayerNorm(x + FFN(x)), "
            "with x the output of the first sub-layer.",
        ),
        "feed-forward residual adds the layer's input": Mistake(
            _layer_ffn_residual_from_input,
            why="the second residual adds the *first sub-layer's output* (after its LayerNorm), "
            "not the layer's original input: x = LayerNorm(x + MultiHead(x)); then "
            "LayerNorm(x + FFN(x)) with that new x.",
        ),
        "LayerNorm over the wrong axis": Mistake(
            _layer_norm_wrong_axis,
            why="normalise over the hidden axis (the last one) of each token, as in exercise 1.",
        ),
        "ReLU instead of GELU": Mistake(
            _layer_relu,
            why="BERT's feed-forward block uses GELU, x * Phi(x) (Devlin et al. 2019, 3.1: 'we "
            "use a gelu activation rather than the standard relu'); ReLU cuts every negative "
            "value to 0.",
        ),
        "tanh approximation of GELU": Mistake(
            _layer_gelu_tanh,
            why="MiniLM and minibert's configs say hidden_act='gelu', the exact x * Phi(x) "
            "(F.gelu(x)); the tanh formula (F.gelu(x, approximate='tanh')) is close but not "
            "equal, and the difference grows through the layers.",
        ),
        "the two LayerNorms swapped": Mistake(
            _layer_norms_swapped,
            why="attention_norm follows the attention sub-layer and ffn_norm the feed-forward "
            "one; each has its own trained gamma and beta.",
        ),
    },
    atol=1e-4,
    rtol=1e-4,
)
def check_encoder_layer(fn: Callable[..., Any], report: Report) -> None:
    """Shapes first; a small random layer (random LayerNorm gammas and betas) on random inputs
    of a few sizes, with and without padding."""
    g = report.generator
    cases = [
        (16, 2, 48, (2, 5), None, "H=16, 2 heads, (B, T) = (2, 5)"),
        (24, 3, 40, (1, 7), None, "H=24, 3 heads, I=40"),
        (16, 4, 32, (2, 4), [[1, 1, 1, 0], [1, 1, 0, 0]], "with padding"),
        (8, 1, 16, (1, 1), None, "one token, one head"),
    ]
    for hidden, heads, inter, (batch, seq), mask, case in cases:
        params = random_layer_params(g, hidden, heads, inter)
        x = torch.randn(batch, seq, hidden, generator=g)
        attention_mask = None if mask is None else torch.tensor(mask)
        got = report.call(x, params, attention_mask)
        report.shape("output", got, (batch, seq, hidden), case=case)
        report.expect(x, params, attention_mask, case=case)


# --------------------------------------------------------------------------------------------
# Exercise 3: the name table, minibert -> transformers
# --------------------------------------------------------------------------------------------


def solution_hf_name(name):
    # Inside a layer: minibert's readable names -> the names of the original TF checkpoint.
    renames = [
        ("attention.query.", "attention.self.query."),
        ("attention.key.", "attention.self.key."),
        ("attention.value.", "attention.self.value."),
        ("attention.output.", "attention.output.dense."),  # attention's W^O
        ("attention_norm.", "attention.output.LayerNorm."),
        ("ffn.up.", "intermediate.dense."),  # the first feed-forward linear (H -> I)
        ("ffn.down.", "output.dense."),  # the second (I -> H)
        ("ffn_norm.", "output.LayerNorm."),
        ("embeddings.word.", "embeddings.word_embeddings."),
        ("embeddings.position.", "embeddings.position_embeddings."),
        ("embeddings.token_type.", "embeddings.token_type_embeddings."),
        ("embeddings.norm.", "embeddings.LayerNorm."),
    ]
    if name.startswith("layers."):
        name = "encoder.layer." + name[len("layers.") :]
    for old, new in renames:
        if old in name:
            return name.replace(old, new, 1)
    return name  # pooler.dense.* has the same name in both


def _reference_hf_name(name):
    for ours, theirs in ENCODER_NAMES:
        if "{i}" not in ours:
            if name == ours:
                return theirs
            continue
        prefix, suffix = ours.split("{i}")
        if name.startswith(prefix) and name.endswith(suffix):
            index = name[len(prefix) : len(name) - len(suffix)]
            if index.isdigit():
                return theirs.replace("{i}", index)
    raise KeyError(f"{name!r} is not a minibert BertModel parameter name")


def _hf_output_dense_swapped(name):
    if ".attention.output." in name:
        return solution_hf_name(name.replace("attention.output.", "ffn.down."))
    if ".ffn.down." in name:
        return solution_hf_name(name.replace("ffn.down.", "attention.output."))
    return solution_hf_name(name)


def _hf_norms_swapped(name):
    if ".attention_norm." in name:
        return solution_hf_name(name.replace("attention_norm.", "ffn_norm."))
    if ".ffn_norm." in name:
        return solution_hf_name(name.replace("ffn_norm.", "attention_norm."))
    return solution_hf_name(name)


def _hf_ffn_swapped(name):
    if ".ffn.up." in name:
        return solution_hf_name(name).replace("intermediate.dense.", "output.dense.")
    if ".ffn.down." in name:
        return solution_hf_name(name).replace("output.dense.", "intermediate.dense.")
    return solution_hf_name(name)


def _hf_no_encoder_prefix(name):
    return solution_hf_name(name).replace("encoder.layer.", "layer.")


def _hf_no_self(name):
    return solution_hf_name(name).replace("attention.self.", "attention.")


HF_NAME_MISTAKES = {
    "attention's output projection and the feed-forward output swapped": Mistake(
        _hf_output_dense_swapped,
        why="transformers has two 'output.dense' layers per block: attention.output.dense is "
        "attention's W^O (H x H, minibert's attention.output) and output.dense is the second "
        "feed-forward linear (I -> H, minibert's ffn.down).",
    ),
    "the two LayerNorms swapped": Mistake(
        _hf_norms_swapped,
        why="attention.output.LayerNorm follows the attention (minibert's attention_norm); "
        "output.LayerNorm follows the feed-forward block (ffn_norm).",
    ),
    "intermediate and output swapped": Mistake(
        _hf_ffn_swapped,
        why="intermediate.dense is the first feed-forward linear, H -> I (ffn.up); "
        "output.dense the second, I -> H (ffn.down). Their shapes differ, which is how "
        "the check noticed.",
    ),
    "layers without the encoder. prefix": Mistake(
        _hf_no_encoder_prefix,
        why="transformers keeps the layers in BertModel.encoder.layer, so their names start "
        "with 'encoder.layer.{i}.'.",
    ),
    "query/key/value without attention.self": Mistake(
        _hf_no_self,
        why="the Q, K and V projections live in attention.self (BertSelfAttention): "
        "'encoder.layer.{i}.attention.self.query.weight'.",
    ),
}


def minibert_names(config: Any | None = None) -> list[str]:
    """Every parameter name of a minibert ``BertModel`` (with pooler) for ``config`` (default:
    a 2-layer toy)."""
    from minibert.config import BertConfig
    from minibert.model import BertModel

    config = config or BertConfig(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=12,
        max_position_embeddings=16,
    )
    return list(BertModel(config).state_dict())


def _hf_shapes(config: Any) -> dict[str, tuple[int, ...]]:
    """Every parameter name and shape of the transformers BertModel of the same config (the
    reference table applied to minibert's own shapes: no transformers import needed)."""
    from minibert.model import BertModel

    return {
        _reference_hf_name(name): tuple(t.shape)
        for name, t in BertModel(config).state_dict().items()
    }


@exercise(
    "hf_name",
    solution=solution_hf_name,
    reference=_reference_hf_name,
    mistakes=HF_NAME_MISTAKES,
)
def check_hf_name(fn: Callable[..., Any], report: Report) -> None:
    """Every parameter of a 2-layer BertModel: first that each name exists in transformers'
    BertModel with the same shape, then that it is the right one; one wrong name is enough to
    load a different model."""
    from minibert.config import BertConfig
    from minibert.model import BertModel

    config = BertConfig(
        vocab_size=20,
        hidden_size=8,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=12,
        max_position_embeddings=16,
    )
    ours = BertModel(config).state_dict()
    theirs = _hf_shapes(config)
    got = {}
    for name in ours:
        answer = report.call(name)
        if not isinstance(answer, str):
            report.fail(f"my_hf_name({name!r}) returned {type(answer).__name__}, not a str")
        got[name] = answer
    wrong = [n for n in ours if got[n] != _reference_hf_name(n)]
    if not wrong:
        report.passed(f"all {len(ours)} parameter names of a 2-layer BertModel")
        return
    mistake = None
    for label, m in report.exercise.mistakes.items():
        if all(m.fn(n) == got[n] for n in ours):
            mistake = label
            break
    missing = [n for n in ours if got[n] not in theirs]
    if missing:
        name = missing[0]
        report.fail(
            f"{len(missing)} name(s) do not exist in transformers' BertModel; first: {name!r} -> "
            f"{got[name]!r}\n    expected {_reference_hf_name(name)!r}",
            mistake=mistake,
        )
    misshaped = [n for n in ours if theirs[got[n]] != tuple(ours[n].shape)]
    if misshaped:
        name = misshaped[0]
        report.fail(
            f"shapes first: {name!r} has shape {tuple(ours[name].shape)} but {got[name]!r} has "
            f"{theirs[got[name]]}\n    expected {_reference_hf_name(name)!r}",
            mistake=mistake,
        )
    name = wrong[0]
    report.fail(
        f"{len(wrong)} of {len(ours)} names point at the wrong weight (right shape, wrong "
        f"meaning); first: {name!r} -> {got[name]!r}, expected {_reference_hf_name(name)!r}",
        mistake=mistake,
    )


# --------------------------------------------------------------------------------------------
# Helpers the notebook calls
# --------------------------------------------------------------------------------------------


def minilm_transformers() -> Any:
    """The offline all-MiniLM-L6-v2 as a `transformers` BertModel (eval mode, eager attention)."""
    import transformers

    from minibert.inspect.sources import minilm_dir

    transformers.utils.logging.disable_progress_bar()  # a loading bar per call adds nothing here
    model = transformers.BertModel.from_pretrained(minilm_dir(), attn_implementation="eager")
    return model.eval()


def load_with_names(hf_model: Any, hf_name: Callable[[str], str]) -> Any:
    """A minibert ``BertModel`` of ``hf_model``'s shape whose every weight is copied from
    ``hf_model``'s state dict under the name ``hf_name(minibert_name)``.

    Raises ``KeyError`` naming the first name that does not exist there and ``ValueError`` for a
    shape that does not fit, like :func:`minibert.hf_names.load_hf_state_dict`.
    """
    from minibert.config import BertConfig
    from minibert.model import BertModel

    config = BertConfig.from_dict(hf_model.config.to_dict(), strict=False)
    with torch.device("meta"):  # no memory, no random init: every weight is replaced below
        model = BertModel(config, add_pooling_layer=hf_model.pooler is not None).eval()
    theirs = hf_model.state_dict()
    loaded = {}
    for name, tensor in model.state_dict().items():
        key = hf_name(name)
        if key not in theirs:
            raise KeyError(f"{name} -> {key!r}: transformers' BertModel has no such weight")
        if theirs[key].shape != tensor.shape:
            raise ValueError(
                f"{name} {tuple(tensor.shape)} -> {key!r} {tuple(theirs[key].shape)}: the shapes "
                "differ"
            )
        loaded[name] = theirs[key]
    model.load_state_dict(loaded, strict=True, assign=True)
    return model


@torch.no_grad()
def layer_differences(ours: Any, theirs: Any, inputs: dict[str, torch.Tensor]) -> list[float]:
    """Largest |difference| between the two models' hidden states at the real (non-padding)
    tokens, after the embeddings and after each layer (L + 1 numbers). Padding rows are left
    out: nothing reads them, and the two libraries need not agree there."""
    real = inputs["attention_mask"].bool()  # (B, T)
    a = ours(**inputs, output_hidden_states=True).hidden_states
    b = theirs(**inputs, output_hidden_states=True).hidden_states
    return [(x - y)[real].abs().max().item() for x, y in zip(a, b, strict=True)]


@torch.no_grad()
def run_layers(
    layer_fn: Callable[..., torch.Tensor],
    model: Any,
    inputs: dict[str, torch.Tensor],
) -> list[torch.Tensor]:
    """The model's embeddings, then ``layer_fn(x, layer_params(layer), attention_mask)`` for each
    of its layers: the encoder run with a student's layer. Returns every hidden state."""
    x = model.embeddings(inputs["input_ids"], inputs.get("token_type_ids"))
    states = [x]
    for layer in model.layers:
        x = layer_fn(x, layer_params(layer), inputs.get("attention_mask"))
        states.append(x)
    return states


@torch.no_grad()
def embeddings_by_hand(model: Any, input_ids: torch.Tensor, token_type_ids: torch.Tensor):
    """E = LayerNorm(E_token[x] + E_position[t] + E_segment[s]) from the model's tables, and the
    three parts (each (B, T, H))."""
    emb = model.embeddings
    positions = torch.arange(input_ids.shape[1])  # (T,)
    token = emb.word.weight[input_ids]  # (B, T, H)
    position = emb.position.weight[positions][None]  # (1, T, H)
    segment = emb.token_type.weight[token_type_ids]  # (B, T, H)
    total = F.layer_norm(
        token + position + segment, (token.shape[-1],), emb.norm.weight, emb.norm.bias, emb.norm.eps
    )
    return total, {"token": token, "position": position, "segment": segment}


def position_similarity_figure(model: Any, count: int = 64):
    """Cosine similarity between the first ``count`` learned position embeddings (a heatmap):
    neighbouring positions get similar vectors, which no one told the model."""
    import plotly.graph_objects as go

    table = model.embeddings.position.weight[:count].detach()  # (count, H)
    unit = F.normalize(table, dim=-1)
    similarity = (unit @ unit.T).numpy()  # (count, count)
    fig = go.Figure(
        go.Heatmap(
            z=similarity,
            colorscale="RdBu",
            zmid=0,
            hovertemplate="position %{y} vs %{x}: cosine %{z:.2f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Learned position embeddings: cosine similarity of positions 0-{count - 1}",
        xaxis={"title": "position"},
        yaxis={"title": "position", "autorange": "reversed"},
        width=560,
        height=520,
        margin={"t": 60},
    )
    return fig


def activation_figure(low: float = -4.0, high: float = 4.0):
    """GELU (exact and tanh approximation) against ReLU."""
    import plotly.graph_objects as go

    x = torch.linspace(low, high, 401)
    fig = go.Figure()
    for name, y, dash in [
        ("ReLU: max(0, x)", F.relu(x), "dot"),
        ("GELU: x Φ(x)", F.gelu(x), "solid"),
        ("GELU, tanh approximation", F.gelu(x, approximate="tanh"), "dash"),
    ]:
        fig.add_trace(go.Scatter(x=x.numpy(), y=y.numpy(), name=name, line={"dash": dash}))
    fig.update_layout(
        title="Activation functions of the feed-forward block",
        xaxis={"title": "x"},
        yaxis={"title": "activation"},
        height=380,
        margin={"t": 60},
    )
    return fig


def layer_norm_figure(before: torch.Tensor, after: torch.Tensor, tokens: Sequence[str]):
    """Each token's mean and standard deviation over the hidden axis, before and after a
    LayerNorm (two panels, one bar per token)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=2, subplot_titles=("mean over H", "standard deviation over H"))
    for tensor, name, colour in [
        (before, "before", "#d62728"),
        (after, "after LayerNorm", "#1f77b4"),
    ]:
        mean = tensor.mean(-1).flatten().tolist()
        std = tensor.std(-1, unbiased=False).flatten().tolist()
        for col, values in ((1, mean), (2, std)):
            fig.add_trace(
                go.Bar(
                    x=list(tokens),
                    y=values,
                    name=name,
                    marker_color=colour,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_layout(barmode="group", height=400, margin={"t": 60, "b": 40})
    return fig


def differences_figure(rows: dict[str, Sequence[float]], tolerance: float = 1e-5):
    """Largest difference from `transformers` after the embeddings and after each layer, one
    line per way of loading (log scale), with the tolerance marked."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, values in rows.items():
        labels = ["embeddings"] + [f"layer {i}" for i in range(len(values) - 1)]
        fig.add_trace(
            go.Scatter(
                x=labels,
                y=[max(v, 1e-9) for v in values],  # a difference of exactly 0 drawn at 1e-9
                mode="lines+markers",
                name=label,
            )
        )
    fig.add_hline(y=tolerance, line_dash="dot", annotation_text=f"tolerance {tolerance:g}")
    fig.update_layout(
        title="Largest |minibert - transformers| after each stage",
        yaxis={"type": "log", "title": "largest absolute difference", "exponentformat": "e"},
        height=420,
        margin={"t": 60},
    )
    return fig
