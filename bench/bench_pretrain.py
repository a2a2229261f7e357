"""Pretraining throughput: minibert's trainer against a plain transformers MLM loop, and the
peak memory of a tiny pretraining run.

    python bench/bench_pretrain.py                       # 60 s each side + a 5-minute RSS run
    python bench/bench_pretrain.py --seconds 10 --rss-seconds 20   # a quick look

1. minibert: ``minibert.train.pretraining`` for ``--seconds`` of wall clock (its default recipe:
   MLM on packed sentences, no NSP, sparse MLM logits at the masked positions only, bf16
   autocast where the CPU has native bf16; ``--nsp`` adds next-sentence prediction),
   evaluation and mid-run checkpoints off. The line it prints names the objective it ran.
2. transformers: ``BertForMaskedLM`` of the same size, fed the same examples in the same batch
   size, masked by ``DataCollatorForLanguageModeling``, trained with ``torch.optim.AdamW`` for the
   same time, with the same threads and the same autocast setting. It computes logits at every
   position, as transformers does.

Both sides count real (non-padding) tokens per second over the same pretraining examples (built
by ``minibert.data.examples.create_pretraining_examples`` from the same corpus and tokenizer).

3. Peak RSS: ``minibert pretrain --preset tiny --time-budget <rss-seconds>`` in a child process;
   its peak resident set size comes from ``resource.getrusage(RUSAGE_CHILDREN)`` (Linux reports
   KiB) and is checked against the 2 GB target.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from minibert.train.pretraining import available_cores, pretrain
from minibert.train.rundir import read_metrics


def run_minibert(args, out: Path) -> dict:
    result = pretrain(
        out=out,
        cache_dir=args.cache_dir,
        overrides={
            "preset": args.preset,
            "data.corpus": args.corpus,
            "train.time_budget": args.seconds,
            "train.batch_size": args.batch_size,
            "train.num_threads": args.threads,
            "train.precision": args.precision,
            "train.eval_examples": 0,
            "train.checkpoint_every": 0,
            "train.log_every": 10,
            "train.progress": False,
            "objective.nsp": args.nsp,
        },
    )
    # Throughput over the training steps only (the last line is written before final/ is saved).
    last = read_metrics(out, split="train")[-1]
    info = json.loads((out / "run.json").read_text())
    return {
        "steps": result.step,
        "tokens": last["tokens"],
        "seconds": last["time"],
        "tokens_per_second": last["tokens"] / last["time"],
        "precision": info["runtime"]["precision"],
        "final_mlm_loss": last["mlm_loss"],
        "objective": objective_label(info["config"]["objective"]),
        "config": info["config"],
    }


def objective_label(objective: dict) -> str:
    """``MLM+NSP`` or ``MLM (full_sentences packing)``, from a run.json ``objective`` section."""
    return "MLM+NSP" if objective["nsp"] else f"MLM ({objective['packing']} packing)"


def run_transformers(args, config: dict, precision: str) -> dict:
    """A standard transformers MLM loop on the same examples, batch, threads and precision."""
    from transformers import BertConfig as HFBertConfig
    from transformers import BertForMaskedLM, DataCollatorForLanguageModeling

    from minibert.data.pipeline import prepare_data
    from minibert.train.overrides import config_from_dict
    from minibert.train.pretraining import build_examples
    from minibert.train.settings import PretrainConfig

    pretrain_config = config_from_dict(PretrainConfig, config)
    data = prepare_data(pretrain_config.data, args.cache_dir, progress=False)
    examples, _ = build_examples(pretrain_config, data)
    features = [{"input_ids": e.input_ids, "token_type_ids": e.token_type_ids} for e in examples]

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    model_config = pretrain_config.model
    hf_config = HFBertConfig(
        vocab_size=model_config.vocab_size,
        hidden_size=model_config.hidden_size,
        num_hidden_layers=model_config.num_hidden_layers,
        num_attention_heads=model_config.num_attention_heads,
        intermediate_size=model_config.intermediate_size,
        hidden_dropout_prob=model_config.hidden_dropout_prob,
        attention_probs_dropout_prob=model_config.attention_probs_dropout_prob,
        max_position_embeddings=model_config.max_position_embeddings,
    )
    model = BertForMaskedLM(hf_config).train()
    optim = pretrain_config.optim
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=optim.lr, betas=optim.betas, eps=optim.eps,
        weight_decay=optim.weight_decay,
    )  # fmt: skip
    collator = DataCollatorForLanguageModeling(data.tokenizer, mlm_probability=0.15)
    use_bf16 = precision.startswith("bf16")
    order = torch.randperm(len(features)).tolist()
    tokens = steps = 0
    position = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        if position + args.batch_size > len(order):
            position = 0
        batch = collator([features[i] for i in order[position : position + args.batch_size]])
        position += args.batch_size
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens += int(batch["attention_mask"].sum())
        steps += 1
    seconds = time.perf_counter() - start
    return {
        "steps": steps,
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
        "final_mlm_loss": loss.item(),
    }


def measure_peak_rss(args, out: Path) -> dict:
    """Peak RSS of a ``minibert pretrain --preset tiny`` child process."""
    command = [
        sys.executable, "-m", "minibert", "pretrain", "--preset", "tiny",
        "--corpus", args.corpus, "--time-budget", str(args.rss_seconds),
        "--batch-size", str(args.batch_size), "--out", str(out), "--overwrite",
        "--progress", "false",
    ]  # fmt: skip
    if args.cache_dir:
        command += ["--cache-dir", str(args.cache_dir)]
    if args.threads:
        command += ["--num-threads", str(args.threads)]
    if args.nsp:
        command += ["--nsp"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the RSS run failed:\n{done.stderr[-3000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    peak_mib = peak_kib / 1024 if sys.platform != "darwin" else peak_kib / 2**20
    return {"seconds": time.perf_counter() - started, "peak_rss_mib": peak_mib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="training time per side")
    parser.add_argument(
        "--rss-seconds", type=float, default=300.0, help="time budget of the RSS run (0: skip)"
    )
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--corpus", default="wiki-sample")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="default: all cores")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    parser.add_argument("--cache-dir", type=Path, default=None)
    parser.add_argument(
        "--nsp",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="minibert side: add next-sentence prediction (default off, as the recipe)",
    )
    args = parser.parse_args()
    args.threads = args.threads or available_cores()
    logging.basicConfig(level=logging.WARNING)

    print(
        f"torch {torch.__version__}, {args.threads} thread(s), preset {args.preset}, "
        f"batch {args.batch_size}, {args.seconds:.0f} s per side, corpus {args.corpus}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-pretrain-") as tmp:
        ours = run_minibert(args, Path(tmp) / "minibert")
        print(
            f"minibert pretrain   : {ours['tokens_per_second']:>9,.0f} tokens/s  "
            f"({ours['steps']} steps, {ours['precision']}, {ours['objective']}, sparse MLM logits; "
            f"mlm loss {ours['final_mlm_loss']:.3f})"
        )
        theirs = run_transformers(args, ours["config"], ours["precision"])
        print(
            f"transformers MLM    : {theirs['tokens_per_second']:>9,.0f} tokens/s  "
            f"({theirs['steps']} steps, {ours['precision']}, BertForMaskedLM + "
            f"DataCollatorForLanguageModeling + AdamW; mlm loss {theirs['final_mlm_loss']:.3f})"
        )
        print(
            f"minibert / transformers: {ours['tokens_per_second'] / theirs['tokens_per_second']:.2f}x"
        )
        if args.rss_seconds > 0:
            rss = measure_peak_rss(args, Path(tmp) / "rss")
            verdict = "under" if rss["peak_rss_mib"] < 2048 else "OVER"
            print(
                f"peak RSS of a {args.rss_seconds:.0f}-second {args.preset} pretraining run: "
                f"{rss['peak_rss_mib']:,.0f} MiB ({verdict} the 2 GB target; whole command "
                f"{rss['seconds']:.0f} s)"
            )


if __name__ == "__main__":
    main()
