"""Time to quality: held-out masked-token accuracy against wall time, minibert's recipe and a
plain transformers loop, each trained for the same budget in one run (issue 5).

    python bench/bench_time_to_quality.py                    # 5 minutes each side (~11 min)
    python bench/bench_time_to_quality.py --seconds 60       # a quick look
    python bench/bench_time_to_quality.py --variant nsp=true # also the recipe with NSP on

The two sides run one after the other (never together: they would share the cores).

1. minibert: ``minibert pretrain --preset tiny --time-budget <seconds>`` as a child process with
   the recipe's defaults (``minibert/train/settings.py``). Its held-out evaluations come from its
   own ``metrics.jsonl``; its peak RSS from ``getrusage(RUSAGE_CHILDREN)`` (Linux: KiB).
   Each ``--variant key=value[,key=value]`` adds one more minibert run with those overrides.
2. reference: transformers ``BertForMaskedLM`` of the same size, ``DataCollatorForLanguageModeling``
   (15%, 80/10/10, logits at every position), ``torch.optim.AdamW`` at a constant ``--ref-lr``
   with clipping at 1.0, same threads, batch size and bf16 autocast, trained on the same training
   examples that minibert builds (its inputs; NSP labels, if any, are ignored) for the same
   wall-clock budget. Evaluation pauses its clock.

Both are scored by the same function on the same held-out set: the examples minibert's trainer
evaluates (``train.eval_examples`` cut from the held-out documents, masked once with
``objective.eval_mask_seed``: BERT's 15% with 80/10/10 and at most 20 predictions per sequence),
accuracy over all selected positions (the standard BERT metric). minibert's own metrics.jsonl
numbers are the same quantity from the same batches; this script recomputes the final one
from ``final/`` loaded in transformers, as a cross-check.

It also splits the final accuracy by what the input showed at the selected position: ``[MASK]``,
a random token, or the original token kept (BERT's 80/10/10). The kept tenth is answered by
copying the input, so the ``[MASK]`` column is the one that shows whether context was learned.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from minibert.train.pretraining import available_cores

MINUTE_MARKS = (60, 120, 180, 240, 300)


def _parse_variant(text: str) -> dict[str, str]:
    pairs = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"--variant wants key=value[,key=value], got {text!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def run_minibert(args, out: Path, overrides: dict[str, str]) -> dict:
    """``minibert pretrain`` in a child process; its eval curve, throughput and peak RSS.

    With ``--reuse`` a finished run already in ``out`` (from an earlier ``--keep``) is read
    instead of trained again; its peak RSS was not measured then (reported as nan).
    """

    if args.reuse and (out / "final").is_dir():
        return _read_run(out, overrides, peak_rss_mib=float("nan"), seconds=float("nan"))

    command = [
        sys.executable, "-m", "minibert", "pretrain", "--preset", args.preset,
        "--corpus", args.corpus, "--time-budget", str(args.seconds), "--out", str(out),
        "--overwrite", "--progress", "false", "--checkpoint-every", "0",
        "--num-threads", str(args.threads),
    ]  # fmt: skip
    if args.cache_dir:
        command += ["--cache-dir", str(args.cache_dir)]
    for key, value in overrides.items():
        if value.lower() in ("true", "false"):  # switches are --key / --no-key
            command.append(f"--{key}" if value.lower() == "true" else f"--no-{key}")
        else:
            command += [f"--{key}", value]
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"minibert pretrain failed:\n{done.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return _read_run(
        out,
        overrides,
        peak_rss_mib=peak_kib / 1024 if peak_kib > before else float("nan"),
        seconds=time.perf_counter() - started,
    )


def _read_run(out: Path, overrides: dict[str, str], *, peak_rss_mib: float, seconds: float) -> dict:
    from minibert.train import read_metrics

    evals = read_metrics(out, split="eval")
    trains = read_metrics(out, split="train")
    info = json.loads((out / "run.json").read_text())
    return {
        "overrides": overrides,
        "curve": [
            {
                "time": e["time"],
                "tokens": e["tokens"],
                "step": e["step"],
                "accuracy": e["mlm_accuracy"],
                "loss": e["mlm_loss"],
            }
            for e in evals
        ],  # fmt: skip
        "steps": trains[-1]["step"],
        "tokens": trains[-1]["tokens"],
        "tokens_per_second": trains[-1]["tokens"] / trains[-1]["time"],
        "peak_rss_mib": peak_rss_mib,
        "command_seconds": seconds,
        "nsp": info["config"]["objective"]["nsp"],
        "config": info["config"],
    }


SELECTION_KINDS = ("[MASK]", "random", "kept")


@torch.no_grad()
def masked_accuracy(model, batches, use_bf16: bool, mask_id: int) -> dict[str, float]:
    """Accuracy and mean cross-entropy over every selected position of minibert's eval batches,
    for any model that returns full ``(B, T, V)`` logits (transformers or minibert in eval mode).

    Also the accuracy by what the input showed at the selected position (BERT's 80/10/10):
    ``[MASK]``, a random token, or the original token kept. The kept tenth is answered by
    copying the input, so a model that has learned nothing about context already scores about
    10 points overall; the ``[MASK]`` accuracy is the part that needs the context.
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    loss_sum = 0.0
    by_kind = {kind: [0, 0] for kind in SELECTION_KINDS}  # kind -> [correct, total]
    for batch in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            logits = model(
                input_ids=batch["input_ids"],
                attention_mask=batch["attention_mask"],
                token_type_ids=batch["token_type_ids"],
            ).logits  # (B, T, V)
        labels = batch["labels"]  # (B, T), -100 where not selected
        selected = labels != -100
        picked = logits[selected].float()  # (N, V)
        targets = labels[selected]  # (N,)
        shown = batch["input_ids"][selected]  # (N,) what the model saw there
        hits = picked.argmax(-1) == targets  # (N,)
        correct += int(hits.sum())
        total += int(selected.sum())
        loss_sum += float(torch.nn.functional.cross_entropy(picked, targets, reduction="sum"))
        is_mask = shown == mask_id
        is_kept = (shown == targets) & ~is_mask
        kinds = (is_mask, ~is_mask & ~is_kept, is_kept)
        for kind, where in zip(SELECTION_KINDS, kinds, strict=True):
            by_kind[kind][0] += int(hits[where].sum())
            by_kind[kind][1] += int(where.sum())
    model.train(was_training)
    result = {"accuracy": correct / max(total, 1), "loss": loss_sum / max(total, 1)}
    for kind, (right, count) in by_kind.items():
        result[f"accuracy {kind}"] = right / max(count, 1)
        result[f"share {kind}"] = count / max(total, 1)
    return result


def eval_batches_for(config_dict: dict, cache_dir):
    """minibert's held-out batches for a run's config, and its training examples + tokenizer."""
    from minibert.data.pipeline import prepare_data
    from minibert.train.overrides import config_from_dict
    from minibert.train.pretraining import PretrainingTask, build_examples
    from minibert.train.settings import PretrainConfig

    config = config_from_dict(PretrainConfig, config_dict)
    data = prepare_data(config.data, cache_dir, progress=False)
    train_examples, eval_examples = build_examples(config, data)
    task = PretrainingTask(config, data.tokenizer, train_examples, eval_examples)
    return config, data.tokenizer, train_examples, task.eval_batches()


def run_reference(args, config, tokenizer, train_examples, eval_batches) -> dict:
    """The plain transformers MLM loop for ``args.seconds`` of training (eval pauses the clock)."""
    from transformers import BertConfig as HFBertConfig
    from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    m = config.model
    model = BertForMaskedLM(
        HFBertConfig(
            vocab_size=m.vocab_size, hidden_size=m.hidden_size,
            num_hidden_layers=m.num_hidden_layers, num_attention_heads=m.num_attention_heads,
            intermediate_size=m.intermediate_size, hidden_dropout_prob=m.hidden_dropout_prob,
            attention_probs_dropout_prob=m.attention_probs_dropout_prob,
            max_position_embeddings=m.max_position_embeddings,
        )
    ).train()  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.ref_lr, weight_decay=0.01)
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    features = [
        {"input_ids": e.input_ids, "token_type_ids": e.token_type_ids} for e in train_examples
    ]
    use_bf16 = args.precision_bf16
    generator = torch.Generator().manual_seed(0)
    order: list[int] = []
    curve = []
    trained = 0.0
    tokens = steps = 0
    next_eval = args.ref_eval_every
    batch_size = config.train.batch_size  # the recipe's, as minibert trains
    while trained < args.seconds:
        if len(order) < batch_size:
            order = torch.randperm(len(features), generator=generator).tolist()
        chunk, order = order[:batch_size], order[batch_size:]
        started = time.perf_counter()
        batch = collator([features[i] for i in chunk])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        trained += time.perf_counter() - started
        tokens += int(batch["attention_mask"].sum())
        steps += 1
        if trained >= next_eval or trained >= args.seconds:
            scores = masked_accuracy(model, eval_batches, use_bf16, tokenizer.mask_token_id)
            curve.append(
                {"time": trained, "tokens": tokens, "step": steps, **scores}
            )  # fmt: skip
            next_eval += args.ref_eval_every
    return {
        "curve": curve,
        "steps": steps,
        "tokens": tokens,
        "tokens_per_second": tokens / trained,
    }


def at_marks(curve: list[dict], marks) -> list[float | None]:
    """The accuracy of the last evaluation at or before each time mark (None before the first)."""
    values = []
    for mark in marks:
        seen = [point["accuracy"] for point in curve if point["time"] <= mark + 1.0]
        values.append(seen[-1] if seen else None)
    return values


def _fmt(value) -> str:
    return "   -  " if value is None else f"{100 * value:5.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="training budget per side")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--corpus", default="wiki-sample")
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument(
        "--variant", action="append", default=[],
        help="another minibert run with these overrides, e.g. nsp=true (repeatable)",
    )  # fmt: skip
    parser.add_argument("--ref-lr", type=float, default=5e-4, help="reference AdamW lr")
    parser.add_argument("--ref-eval-every", type=float, default=30.0, help="seconds")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="read finished minibert runs found under --keep"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--keep", type=Path, default=None, help="keep the run directories here")
    args = parser.parse_args()
    args.threads = args.threads or available_cores()
    logging.basicConfig(level=logging.WARNING)
    marks = [m for m in MINUTE_MARKS if m < args.seconds] + [int(args.seconds)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), preset {args.preset}, corpus "
        f"{args.corpus}, {args.seconds:.0f} s per side, load average {load:.2f}"
    )
    results: dict = {"seconds": args.seconds, "threads": args.threads, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-ttq-") as tmp:
        root = args.keep or Path(tmp)
        arms = [("minibert", {})] + [(f"minibert[{v}]", _parse_variant(v)) for v in args.variant]
        for name, overrides in arms:
            out = root / name.replace("[", "-").replace("]", "").replace(",", "-").replace("=", "")
            ours = run_minibert(args, out, overrides)
            results["runs"][name] = ours
            print(
                f"{name}: {ours['steps']} steps, {ours['tokens'] / 1e6:.1f}M tokens, "
                f"{ours['tokens_per_second']:,.0f} tokens/s, NSP {'on' if ours['nsp'] else 'off'}, "
                f"peak RSS {ours['peak_rss_mib']:,.0f} MiB, final held-out accuracy "
                f"{_fmt(ours['curve'][-1]['accuracy'])} (loss {ours['curve'][-1]['loss']:.3f})"
            )
        headline = results["runs"]["minibert"]
        config, tokenizer, train_examples, eval_batches = eval_batches_for(
            headline["config"], args.cache_dir
        )
        # The reference uses the precision minibert resolved (bf16 autocast on this CPU).
        runtime = json.loads((root / "minibert" / "run.json").read_text())["runtime"]
        args.precision_bf16 = runtime["precision"] != "fp32"
        # Cross-check: minibert's final/ loaded in transformers, scored by this script.
        from transformers import AutoModelForMaskedLM

        hf_ours = AutoModelForMaskedLM.from_pretrained(root / "minibert" / "final")
        check = masked_accuracy(
            hf_ours, eval_batches, args.precision_bf16, tokenizer.mask_token_id
        )
        headline["final_in_transformers"] = check
        print(f"minibert final/ loaded in transformers, scored here: {_fmt(check['accuracy'])}")
        if not args.skip_reference:
            ref = run_reference(args, config, tokenizer, train_examples, eval_batches)
            results["runs"]["transformers reference"] = ref
            print(
                f"transformers reference: {ref['steps']} steps, {ref['tokens'] / 1e6:.1f}M "
                f"tokens, {ref['tokens_per_second']:,.0f} tokens/s, lr {args.ref_lr:g}, final "
                f"held-out accuracy {_fmt(ref['curve'][-1]['accuracy'])} "
                f"(loss {ref['curve'][-1]['loss']:.3f})"
            )
    width = max(len(name) for name in [*results["runs"], "minibert (final/ in transformers)"]) + 2
    print()
    print("held-out masked-token accuracy (15% masking, all selected positions) at wall time:")
    print(f"  {'':{width}s}" + "".join(f"{m:>5d} s " for m in marks))
    for name, run in results["runs"].items():
        print(f"  {name:{width}s}" + "".join(f"{_fmt(v):>7s}" for v in at_marks(run["curve"], marks)))
    print()
    print("final accuracy by what the input showed at the selected position (share of positions):")
    finals = {"minibert (final/ in transformers)": results["runs"]["minibert"]["final_in_transformers"]}
    if "transformers reference" in results["runs"]:
        finals["transformers reference"] = results["runs"]["transformers reference"]["curve"][-1]
    shares = next(iter(finals.values()))
    headers = [f"{kind} ({100 * shares['share ' + kind]:.0f}%)" for kind in SELECTION_KINDS]
    print(f"  {'':{width}s}" + "".join(f"{header:>15s}" for header in headers))
    for name, scores in finals.items():
        print(f"  {name:{width}s}" + "".join(f"{_fmt(scores[f'accuracy {kind}']):>15s}" for kind in SELECTION_KINDS))
    print()
    print("curves (time s, tokens M, accuracy %, loss):")
    for name, run in results["runs"].items():
        points = ", ".join(
            f"({p['time']:.0f}, {p['tokens'] / 1e6:.2f}, {100 * p['accuracy']:.1f}, {p['loss']:.2f})"
            for p in run["curve"]
        )
        print(f"  {name}: {points}")
    if args.json:
        for run in results["runs"].values():
            run.pop("config", None)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
