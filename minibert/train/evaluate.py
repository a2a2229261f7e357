"""Looking at a trained run: held-out MLM/NSP metrics, and fill-mask predictions.

* :func:`evaluate_run` re-computes the held-out metrics of a run's ``final/`` (or any of its
  checkpoints) exactly as training logged them: the same validation examples, the same fixed
  masks, the model in eval mode.
* :func:`fill_mask` is BERT's cloze test (Devlin et al. 2019, Sec. 3.1, Task #1) on any text:
  the top-k tokens for every ``[MASK]``, from minibert's own model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from minibert.data.pipeline import prepare_data
from minibert.data.tokenizer import load_tokenizer
from minibert.heads import BertForMaskedLM, BertForPreTraining
from minibert.train.loop import evaluate_task, resolve_precision
from minibert.train.overrides import apply_overrides, config_from_dict
from minibert.train.preflight import InputFileError, read_run_info
from minibert.train.pretrain import PretrainingTask, build_eval_examples
from minibert.train.rundir import RunDirectory
from minibert.train.settings import PretrainConfig

__all__ = [
    "MaskPrediction",
    "evaluate_run",
    "fill_mask",
    "load_masked_lm",
    "resolve_model_dir",
]

logger = logging.getLogger(__name__)


def resolve_model_dir(path: str | Path) -> Path:
    """A directory with weights: ``path`` itself, or for a run directory its ``final/`` (else
    its newest checkpoint)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; give a model folder (config.json + model.safetensors) or "
            "a run directory"
        )
    if (path / "config.json").is_file():
        return path
    run = RunDirectory(path)
    if run.final_dir.is_dir():
        return run.final_dir
    latest = run.latest_checkpoint()
    if latest is not None:
        return latest
    raise FileNotFoundError(
        f"{path} has no model: expected config.json + model.safetensors, or a run directory "
        "with final/ or checkpoints/step-*/"
    )


def _load_tokenizer_for(model_dir: Path) -> Any:
    for candidate in (
        model_dir,
        model_dir.parent / "tokenizer",
        model_dir.parent.parent / "tokenizer",
    ):
        if (candidate / "tokenizer.json").is_file() or (candidate / "vocab.txt").is_file():
            return load_tokenizer(candidate)
    raise FileNotFoundError(
        f"no tokenizer files next to {model_dir} (tokenizer.json or vocab.txt in it, or a "
        "tokenizer/ folder in its run directory)"
    )


def load_masked_lm(path: str | Path) -> tuple[torch.nn.Module, Any]:
    """minibert's ``BertForMaskedLM`` (eval mode) and its tokenizer from a model or run dir.

    A pretraining checkpoint (MLM + NSP heads) loads too: the NSP weights are skipped.
    """
    model_dir = resolve_model_dir(path)
    model = BertForMaskedLM.from_pretrained(model_dir)
    return model.eval(), _load_tokenizer_for(model_dir)


@dataclass
class MaskPrediction:
    """One candidate for one ``[MASK]``: the token, its probability and the filled-in text."""

    token: str
    token_id: int
    score: float
    sequence: str


@torch.no_grad()
def fill_mask(
    model: torch.nn.Module, tokenizer: Any, text: str, top_k: int = 5
) -> list[list[MaskPrediction]]:
    """The ``top_k`` most probable tokens for each ``[MASK]`` in ``text``, in mask order.

    Each mask is predicted from the same forward pass (the others stay masked), as
    ``transformers``' fill-mask pipeline does.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    mask_token = tokenizer.mask_token
    if mask_token is None or mask_token not in text:
        raise ValueError(f"the text has no {mask_token or '[MASK]'} token to fill: {text!r}")
    encoded = tokenizer(text, return_tensors="pt")
    was_training = model.training
    model.eval()
    try:
        out = model(
            encoded["input_ids"],
            attention_mask=encoded.get("attention_mask"),
            token_type_ids=encoded.get("token_type_ids"),
        )
    finally:
        model.train(was_training)
    logits = (
        out.logits if hasattr(out, "logits") and out.logits is not None else out.prediction_logits
    )
    input_ids = encoded["input_ids"][0]  # (T,)
    positions = (input_ids == tokenizer.mask_token_id).nonzero().flatten().tolist()
    results: list[list[MaskPrediction]] = []
    for position in positions:
        probs = logits[0, position].float().softmax(dim=-1)  # (V,)
        scores, ids = probs.topk(min(top_k, probs.numel()))
        candidates = []
        for score, token_id in zip(scores.tolist(), ids.tolist(), strict=True):
            filled = input_ids.clone()
            filled[position] = token_id
            candidates.append(
                MaskPrediction(
                    token=tokenizer.convert_ids_to_tokens(token_id),
                    token_id=token_id,
                    score=score,
                    sequence=tokenizer.decode(filled, skip_special_tokens=True),
                )
            )
        results.append(candidates)
    return results


def evaluate_run(
    run_dir: str | Path,
    *,
    checkpoint: str | Path | None = None,
    eval_examples: int | None = None,
    batch_size: int | None = None,
    cache_dir: str | Path | None = None,
    precision: str | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Held-out metrics of a pretraining run (``final/`` by default, or ``checkpoint``).

    Uses the run's recorded config to rebuild the same validation examples and fixed masks as
    training did (from the data cache, rebuilt offline if missing), in the precision the run
    trained with unless ``precision`` (auto, fp32, bf16) says otherwise. Returns ``loss``,
    ``mlm_loss``, ``mlm_accuracy``, ``mlm_perplexity`` (and ``nsp_*`` when NSP is on).
    """
    if eval_examples is not None and (
        isinstance(eval_examples, bool) or not isinstance(eval_examples, int) or eval_examples < 1
    ):
        raise ValueError(
            f"--examples must be a whole number >= 1, got {eval_examples!r}; leave it out to use "
            "the run's own eval_examples"
        )
    run = RunDirectory(run_dir)
    info = read_run_info(run.root, kind="pretrain")  # names run.json if it is damaged
    try:
        config = config_from_dict(PretrainConfig, info["config"])
    except (ValueError, TypeError) as err:
        raise InputFileError(
            f"the config in {run.run_json} is not valid for this version of minibert: {err}"
        ) from err
    if batch_size is not None:
        # TrainConfig checks it (>= 1): a negative size used to evaluate 0 examples, loss 0.0.
        config = apply_overrides(config, {"train.eval_batch_size": batch_size})
    model_dir = resolve_model_dir(checkpoint if checkpoint is not None else run.root)
    data = prepare_data(config.data, cache_dir, progress=progress)
    recorded = info.get("data", {}).get("tokenizer_fingerprint")
    if recorded and recorded != data.tokenizer_fingerprint:
        raise ValueError(
            f"the data cache's tokenizer ({data.tokenizer_fingerprint[:12]}) is not the run's "
            f"({recorded[:12]}); the corpus or settings changed since the run was trained"
        )
    examples = build_eval_examples(config, data, eval_examples)
    if not examples:
        raise ValueError("no held-out examples to evaluate (eval_examples is 0)")
    model_class = BertForPreTraining if config.objective.nsp else BertForMaskedLM
    model = model_class.from_pretrained(model_dir)
    task = PretrainingTask(config, data.tokenizer, [], examples, model=model)
    if precision is None:
        recorded = info.get("runtime", {}).get("precision")
        precision = {"bf16-autocast": "bf16", "fp32": "fp32"}.get(recorded, "auto")
    autocast_dtype = resolve_precision(precision, torch.device("cpu"))
    metrics = evaluate_task(task, autocast_dtype=autocast_dtype)
    metrics["checkpoint"] = str(model_dir)
    return metrics
