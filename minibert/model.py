"""The BERT encoder: embeddings, a stack of Transformer layers and the pooler.

Devlin et al. (2019), Section 3: "BERT's model architecture is a multi-layer bidirectional
Transformer encoder based on the original implementation described in Vaswani et al. (2017)".
Each layer is the post-LayerNorm block of Vaswani et al. (2017), Section 3.1:

    x = LayerNorm(x + Dropout(MultiHeadSelfAttention(x)))
    x = LayerNorm(x + Dropout(FFN(x)))          FFN(x) = act(x W1 + b1) W2 + b2   (Eq. 2)

The input representation is the sum of token, segment and position embeddings (Devlin et al.
2019, Section 3, Figure 2), layer-normalised.

This module also holds :class:`BertPreTrainedModel`, the base class of every model: weight
initialisation, input checks, ``save_pretrained``/``from_pretrained``. Saved directories use the
`transformers` file layout and key names (``config.json`` + ``model.safetensors``), translated by
the one name table in :mod:`minibert.hf`.

Shapes in comments: B batch, T sequence length, H hidden size, I intermediate size, L layers,
nh heads.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from minibert import __version__
from minibert.activations import get_activation
from minibert.atomic import atomic_file, write_text_atomic
from minibert.attention import MultiHeadSelfAttention
from minibert.config import BertConfig, check_attn_implementation
from minibert.functional import attention_bias_from_padding
from minibert.hf_names import load_hf_state_dict, to_hf_state_dict
from minibert.init import bert_init_
from minibert.outputs import BertModelOutput
from minibert.sparse import layer_at_positions

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
WEIGHTS_INDEX_NAME = "model.safetensors.index.json"

_ModelT = TypeVar("_ModelT", bound="BertPreTrainedModel")


# -- building blocks -----------------------------------------------------------------------


class BertEmbeddings(nn.Module):
    """Token + segment + position embeddings, then LayerNorm and dropout (Devlin et al. 3, Fig. 2).

    Positions are learned absolute embeddings, computed with ``arange`` at each call rather than
    kept in a buffer, so the state dict holds parameters only.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        # padding_idx keeps the [PAD] row out of the lookup's gradient, as in transformers.
        self.word = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.position = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        seq_len = input_ids.shape[1]
        positions = torch.arange(seq_len, device=input_ids.device)  # (T,) 0, 1, ..., T-1
        if token_type_ids is None:
            segment = self.token_type.weight[0]  # (H,) every token is in segment A
        else:
            segment = self.token_type(token_type_ids)  # (B, T, H)
        # Summed in the order transformers uses, so float rounding matches it closely.
        embeddings = self.word(input_ids) + segment  # (B, T, H)
        embeddings = embeddings + self.position(positions)  # (B, T, H) broadcast over B
        return self.dropout(self.norm(embeddings))  # (B, T, H)


class FeedForward(nn.Module):
    """Position-wise feed-forward network, Vaswani et al. (2017) Eq. 2: act(x W1 + b1) W2 + b2."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.up = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = get_activation(config.hidden_act)
        self.down = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.act(self.up(x)))  # (B, T, H) -> (B, T, I) -> (B, T, H)


class BertLayer(nn.Module):
    """One encoder layer: attention and feed-forward sub-layers, each wrapped in
    dropout + residual + LayerNorm (post-LN, Vaswani et al. 2017, Section 5.4 and 3.1)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = MultiHeadSelfAttention(config)
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.ffn = FeedForward(config)
        self.ffn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_bias: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T, H) -> (B, T, H), and the attention weights (B, nh, T, T) when asked for."""
        attended, weights = self.attention(
            hidden_states, attention_bias, head_mask, output_attentions
        )  # (B, T, H), (B, nh, T, T) or None
        hidden_states = self.attention_norm(hidden_states + self.dropout(attended))  # (B, T, H)
        transformed = self.ffn(hidden_states)  # (B, T, H)
        hidden_states = self.ffn_norm(hidden_states + self.dropout(transformed))  # (B, T, H)
        return hidden_states, weights


class BertPooler(nn.Module):
    """Sentence vector: tanh(W h_[CLS] + b), used for NSP and sequence classification."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden_states[:, 0]))  # (B, H) from the first token


# -- input checks ----------------------------------------------------------------------------


def is_compiling() -> bool:
    """True while torch.compile traces (value checks that sync with the device are skipped)."""
    check = getattr(torch.compiler, "is_compiling", None)  # torch >= 2.3
    return bool(check()) if check is not None else False


def check_inputs(
    config: BertConfig,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    token_type_ids: torch.Tensor | None = None,
) -> None:
    """Raise ``TypeError``/``ValueError`` naming what is wrong with the model inputs.

    The value checks read the tensors (one device sync each); they are skipped while
    ``torch.compile`` traces so a compiled model keeps a single graph.
    """
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(
            f"input_ids must be a torch.Tensor of token ids, got {type(input_ids).__name__}; "
            "wrap lists with torch.tensor(...)."
        )
    if input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(
            f"input_ids must hold integer token ids (torch.long), got {input_ids.dtype}."
        )
    if input_ids.dim() != 2:
        raise ValueError(
            f"input_ids must be 2-D (batch, seq_len), got shape {tuple(input_ids.shape)}; "
            "add a batch dimension with input_ids.unsqueeze(0)."
        )
    seq_len = input_ids.shape[1]
    if seq_len > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {seq_len} is longer than max_position_embeddings="
            f"{config.max_position_embeddings}; truncate the input (e.g. tokenizer(..., "
            "truncation=True, max_length=...)) or use a config with more positions."
        )
    for name, tensor in (("attention_mask", attention_mask), ("token_type_ids", token_type_ids)):
        if tensor is None:
            continue
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}.")
        if tensor.shape != input_ids.shape:
            raise ValueError(
                f"{name} must have the same shape as input_ids {tuple(input_ids.shape)} "
                f"(batch, seq_len), got {tuple(tensor.shape)}."
            )
    if token_type_ids is not None and token_type_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"token_type_ids must be integer (torch.long), got {token_type_ids.dtype}.")
    if is_compiling() or input_ids.numel() == 0:
        return
    low, high = int(input_ids.min()), int(input_ids.max())
    if low < 0 or high >= config.vocab_size:
        raise ValueError(
            f"input_ids must be in [0, vocab_size={config.vocab_size}), found values from {low} "
            f"to {high}; the tokenizer and the model config disagree about the vocabulary."
        )
    if token_type_ids is not None:
        low, high = int(token_type_ids.min()), int(token_type_ids.max())
        if low < 0 or high >= config.type_vocab_size:
            raise ValueError(
                f"token_type_ids must be in [0, type_vocab_size={config.type_vocab_size}), "
                f"found values from {low} to {high}."
            )


def check_positions(positions: torch.Tensor, input_ids: torch.Tensor, name: str) -> None:
    """Raise if ``positions`` is not a (B, M) long tensor of indices into the sequences."""
    batch, seq_len = input_ids.shape
    if not isinstance(positions, torch.Tensor) or positions.dtype != torch.int64:
        raise TypeError(f"{name} must be a torch.long tensor of positions.")
    if positions.dim() != 2 or positions.shape[0] != batch:
        raise ValueError(
            f"{name} must have shape (batch={batch}, M), got {tuple(positions.shape)}."
        )
    if is_compiling() or positions.numel() == 0:
        return
    low, high = int(positions.min()), int(positions.max())
    if low < 0 or high >= seq_len:
        raise ValueError(
            f"{name} must index into the sequence, [0, {seq_len}), found values from {low} "
            f"to {high}."
        )


def expand_head_mask(head_mask: torch.Tensor | None, config: BertConfig) -> torch.Tensor | None:
    """Normalise a head mask of shape (nh,) or (L, nh) to (L, nh); None stays None."""
    if head_mask is None:
        return None
    head_mask = torch.as_tensor(head_mask, dtype=torch.float32)
    layers, heads = config.num_hidden_layers, config.num_attention_heads
    if head_mask.shape == (heads,):
        return head_mask.expand(layers, heads)  # (L, nh) same heads off in every layer
    if head_mask.shape == (layers, heads):
        return head_mask  # (L, nh)
    raise ValueError(
        f"head_mask must have shape (num_attention_heads,)=({heads},) or "
        f"(num_hidden_layers, num_attention_heads)=({layers}, {heads}), "
        f"got {tuple(head_mask.shape)}."
    )


# -- base class ------------------------------------------------------------------------------


class BertPreTrainedModel(nn.Module):
    """Base of every minibert model: holds the config, initialises weights, saves and loads.

    Initialisation follows the BERT reference code as `transformers` does it
    (:func:`minibert.init.bert_init_`): linear and embedding weights ~ Normal(0,
    initializer_range), biases 0, the padding embedding row 0, LayerNorm weight 1 and bias 0.
    """

    def __init__(self, config: BertConfig) -> None:
        if not isinstance(config, BertConfig):
            raise TypeError(
                f"config must be a minibert.BertConfig, got {type(config).__name__}; "
                "build one with BertConfig(...) or BertConfig.preset('tiny')."
            )
        super().__init__()
        self.config = config

    def _init_module(self, module: nn.Module) -> None:
        bert_init_(module, self.config.initializer_range)

    def set_attn_implementation(self, attn_implementation: str) -> None:
        """Switch the attention kernel of this built model ("eager" or "sdpa"), as
        `transformers`' method of the same name does: it sets ``config.attn_implementation``,
        which every attention module reads at each call (and ``save_pretrained`` writes)."""
        check_attn_implementation(attn_implementation)
        self.config.attn_implementation = attn_implementation

    def num_parameters(self, *, trainable_only: bool = False) -> int:
        """Number of parameters (each tied parameter counted once)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)

    # -- save / load -----------------------------------------------------------------------

    def save_pretrained(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` in the `transformers` layout.

        Keys are HF's (e.g. ``bert.encoder.layer.0.attention.self.query.weight``) and tied
        weights are stored once, as `transformers` does, so ``AutoModelForMaskedLM`` and
        ``pipeline("fill-mask", model=directory)`` load the directory directly. Files are
        written to temporary names and renamed (:mod:`minibert.atomic`), so an interrupted save
        leaves no half file.
        Returns the directory.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {
            name: tensor.detach().to("cpu").contiguous()
            for name, tensor in to_hf_state_dict(self, include_tied=False).items()
        }
        dtype = next(iter(tensors.values())).dtype
        config = self.config.to_dict()
        config.update(
            model_type="bert",
            architectures=[type(self).__name__],
            dtype=str(dtype).removeprefix("torch."),
            tie_word_embeddings=True,
            minibert_version=__version__,
        )
        with atomic_file(directory / WEIGHTS_NAME) as weights_tmp:
            save_file(tensors, str(weights_tmp), metadata={"format": "pt"})
        write_text_atomic(
            directory / CONFIG_NAME, json.dumps(config, indent=2, sort_keys=True) + "\n"
        )
        logger.info("saved %s to %s", type(self).__name__, directory)
        return directory

    @classmethod
    def from_pretrained(
        cls: type[_ModelT], directory: str | os.PathLike[str], **config_overrides: Any
    ) -> _ModelT:
        """Load a directory written by ``save_pretrained`` or by `transformers` (BERT only).

        The encoder weights must all be present. Head weights the directory lacks (e.g. a
        classifier on top of a plain ``BertModel`` checkpoint such as all-MiniLM-L6-v2) start
        from the usual random initialisation, with a warning; weights of heads this class does
        not have are skipped. ``config_overrides`` change config fields first, e.g.
        ``BertForSequenceClassification.from_pretrained(d, num_labels=3)``. Only safetensors
        files are read (nothing is unpickled). The model is returned in eval mode, as in
        `transformers`; call ``.train()`` before training.
        """
        directory = Path(directory)
        if not directory.is_dir():
            raise ValueError(
                f"{str(directory)!r} is not a directory. from_pretrained reads a local save "
                "directory (config.json + model.safetensors); for a Hugging Face hub id use "
                "minibert.from_hf('<id>'), which downloads through transformers."
            )
        config_path = directory / CONFIG_NAME
        if not config_path.is_file():
            raise ValueError(
                f"{directory} has no {CONFIG_NAME}; it is not a saved model directory "
                "(expected config.json + model.safetensors, as written by save_pretrained)."
            )
        try:
            config_data = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{config_path} is not valid JSON: {err}") from err
        config = BertConfig.from_dict(config_data, strict=False)
        if config_overrides:
            config = config.replace(**config_overrides)
        tensors = read_safetensors_dir(directory)
        model = cls(config)
        load_hf_state_dict(model, tensors, strict=False, source=str(directory))
        return model.eval()


def read_safetensors_dir(directory: Path) -> dict[str, torch.Tensor]:
    """All tensors of ``model.safetensors`` (or its sharded form) in ``directory``."""
    single, index = directory / WEIGHTS_NAME, directory / WEIGHTS_INDEX_NAME
    try:
        if single.is_file():
            return load_file(str(single))
        if index.is_file():
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            tensors: dict[str, torch.Tensor] = {}
            for shard in sorted(set(weight_map.values())):
                tensors.update(load_file(str(_shard_path(directory, shard))))
            return tensors
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as err:
        raise ValueError(f"could not read the weights in {directory}: {err}") from err
    pickled = [p.name for p in directory.glob("*.bin")] + [p.name for p in directory.glob("*.pt")]
    hint = (
        f" It holds {pickled}, a pickle format minibert does not open; load it with "
        "minibert.from_hf(directory) (through transformers) and save_pretrained() again."
        if pickled
        else ""
    )
    raise ValueError(f"{directory} has no {WEIGHTS_NAME}.{hint}")


def _shard_path(directory: Path, shard: object) -> Path:
    """Where shard ``shard`` of a safetensors index lives, if it stays inside ``directory``.

    The index is data from whoever made the folder: a name such as ``../../.ssh/id_rsa`` or
    ``/etc/passwd`` must not make us open a file outside the model folder. The check is on the
    name, not on resolved paths, so a hub cache whose files are symlinks to blobs still loads.
    """
    name = str(shard)
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if (
        not isinstance(shard, str)
        or not parts
        or PurePosixPath(name).is_absolute()
        or PureWindowsPath(name).is_absolute()
        or PureWindowsPath(name).drive
        or ".." in parts
    ):
        raise ValueError(
            f"{directory / WEIGHTS_INDEX_NAME} names the shard {name!r}, which is not a file "
            "inside the model folder; refusing to read it. The index may be damaged or crafted."
        )
    return directory.joinpath(*parts)


# -- the encoder -----------------------------------------------------------------------------


class BertModel(BertPreTrainedModel):
    """The bare BERT encoder (`transformers.BertModel`): embeddings, L layers, optional pooler.

    ``forward`` returns a :class:`minibert.outputs.BertModelOutput`. Attention runs the kernel
    named by ``config.attn_implementation``; ``output_attentions=True`` runs it eagerly and
    returns one (B, nh, T, T) weight tensor per layer.
    """

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.apply(self._init_module)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        head_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
        output_hidden_states: bool = False,
        output_positions: torch.Tensor | None = None,
    ) -> BertModelOutput:
        """Encode a batch.

        Args:
            input_ids: (B, T) token ids.
            attention_mask: (B, T), 1 for tokens, 0 for padding; None = no padding.
            token_type_ids: (B, T) segment ids (0 = sentence A, 1 = sentence B); None = all 0.
            head_mask: (nh,) or (L, nh); 0 switches a head off, 1 keeps it.
            output_attentions: also return the attention weights of every layer.
            output_hidden_states: also return the embedding output and every layer's output.
            output_positions: (B, M) positions, or None (the default: every layer as in the
                paper). Given, the last layer computes its output only there
                (:func:`minibert.sparse.layer_at_positions`, the pre-training speed-up), and
                ``last_hidden_state`` is (B, M, H), row m of sequence b being position
                ``output_positions[b, m]`` (so are the last entries of ``hidden_states`` and
                ``attentions``, with M queries). ``pooler_output`` reads the first listed
                position, so list 0 ([CLS]) first when the pooler is used.
        """
        check_inputs(self.config, input_ids, attention_mask, token_type_ids)
        if output_positions is not None:
            check_positions(output_positions, input_ids, "output_positions")
        hidden = self.embeddings(input_ids, token_type_ids)  # (B, T, H)
        head_masks = expand_head_mask(head_mask, self.config)  # (L, nh) or None
        if head_masks is not None:
            head_masks = head_masks.to(device=hidden.device, dtype=hidden.dtype)
        attention_bias = None  # (B, 1, 1, T) when some tokens are padding
        if attention_mask is not None and (is_compiling() or not bool(attention_mask.all())):
            # A mask of all ones changes nothing; leaving it out lets SDPA use its mask-free
            # kernels (the same shortcut transformers takes).
            attention_bias = attention_bias_from_padding(attention_mask, hidden.dtype)
        all_hidden = [hidden] if output_hidden_states else None
        all_attentions = [] if output_attentions else None
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            layer_heads = None if head_masks is None else head_masks[index]  # (nh,)
            if index == last and output_positions is not None:
                hidden, weights = layer_at_positions(
                    layer, hidden, output_positions, attention_bias, layer_heads, output_attentions
                )  # (B, M, H): only the rows asked for
            else:
                hidden, weights = layer(hidden, attention_bias, layer_heads, output_attentions)
            if all_hidden is not None:
                all_hidden.append(hidden)
            if all_attentions is not None:
                all_attentions.append(weights)
        return BertModelOutput(
            last_hidden_state=hidden,
            pooler_output=None if self.pooler is None else self.pooler(hidden),
            hidden_states=None if all_hidden is None else tuple(all_hidden),
            attentions=None if all_attentions is None else tuple(all_attentions),
        )
