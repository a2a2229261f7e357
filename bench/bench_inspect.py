"""Benchmark minibert's attention inspection and figures against transformers + bertviz.

Three measurements, in one process, with torch limited to ``--threads`` (default 2):

1. A 128-token text through all-MiniLM-L6-v2 (6 layers x 12 heads), "numbers + figures":
   minibert = ``inspect.attention`` + ``viz.model_view`` + ``viz.head_view`` (one layer, as
   the figure shows), against transformers (``output_attentions=True``, eager attention) +
   ``bertviz.head_view(..., html_action="return")`` (all layers in one page). The two sides
   alternate in rounds after a warm-up; the median per side is reported. Also reported:
   serialising the minibert figures to JSON (what a notebook or Streamlit sends).
2. The model view of those 72 heads in headless Chromium (Debian's ``chromium``, offline):
   the page's size, the time from opening the page to the picture drawn (plotly.js parse
   included), and the time ``Plotly.newPlot`` takes to draw it in a page already loaded.
   bertviz's own pages load require.js and d3 from a CDN, so they cannot be drawn offline.
3. Attention across the 20 checkpoints of a ``tiny`` run (made here in a temp dir, a few
   seconds of training, unless ``--run`` names one): ``inspect.attention_over_training`` the
   first time (empty cache) and again (cached), and the over-training figures built from it.

    python bench/bench_inspect.py                      # about 2 minutes on 2 free cores
    python bench/bench_inspect.py --rounds 2 --quick   # a smoke run
    python bench/bench_inspect.py --json results.json

Target figures (issue 10): (1) < 300 ms, (2) < 2 s and < 5 MB, (3) < 2 s first, < 100 ms cached.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEXT = (
    "The history of the region begins with small farming villages along the river, which "
    "grew into market towns when merchants started to trade wool, salt and timber with the "
    "cities of the coast. In the twelfth century a bishop built a stone church and a bridge, "
    "and the town that grew around them became the seat of a county. Its walls were rebuilt "
    "twice after fires, and the old quarter still keeps the narrow streets, the covered market "
    "and the guild houses that tell how wealthy the wool trade once made it. Today most people "
    "work in services, and students come for the university founded in the nineteenth century. "
    "Visitors arrive by train from the capital in about two hours."
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--tokens", type=int, default=128, help="length of the text in tokens")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs per side")
    parser.add_argument("--rounds", type=int, default=10, help="timed runs per side (alternating)")
    parser.add_argument("--page-loads", type=int, default=5, help="browser page loads timed")
    parser.add_argument("--run", type=Path, help="a run with checkpoints (default: make one)")
    parser.add_argument("--checkpoints", type=int, default=20, help="checkpoints of the made run")
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-checkpoints", action="store_true")
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000.0


def alternate(sides: dict[str, Callable[[], object]], warmup: int, rounds: int) -> dict:
    """Run each side ``warmup`` times, then ``rounds`` rounds alternating; seconds per run."""
    for _ in range(warmup):
        for run in sides.values():
            run()
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, run in sides.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------------------------
# 1. numbers + figures for one text
# --------------------------------------------------------------------------------------------


def bench_text(args: argparse.Namespace) -> dict:
    import bertviz
    import transformers

    from minibert import viz
    from minibert.inspect.attention import attention
    from minibert.inspect.sources import load_model, minilm_dir

    loaded = load_model("minilm")
    result = attention(loaded, TEXT, max_length=args.tokens)
    if result.seq_len != args.tokens:
        raise SystemExit(f"the text gives {result.seq_len} tokens, not {args.tokens}; lengthen it")

    hf_dir = minilm_dir()
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    hf_model = transformers.AutoModel.from_pretrained(hf_dir, attn_implementation="eager").eval()
    encoded = tokenizer(TEXT, truncation=True, max_length=args.tokens, return_tensors="pt")
    hf_tokens = tokenizer.convert_ids_to_tokens(encoded["input_ids"][0])
    assert hf_tokens == result.tokens, "the two sides must see the same tokens"

    parts: dict[str, list[float]] = {"attention": [], "model_view": [], "head_view": []}

    def minibert_side() -> None:
        start = time.perf_counter()
        numbers = attention(loaded, TEXT, max_length=args.tokens)
        after_numbers = time.perf_counter()
        viz.model_view(numbers)
        after_model_view = time.perf_counter()
        viz.head_view(numbers, 2)
        end = time.perf_counter()
        parts["attention"].append(after_numbers - start)
        parts["model_view"].append(after_model_view - after_numbers)
        parts["head_view"].append(end - after_model_view)

    def reference_side() -> None:
        with torch.no_grad():
            output = hf_model(**encoded, output_attentions=True)
        bertviz.head_view(output.attentions, hf_tokens, html_action="return")

    def reference_model_view() -> None:
        with torch.no_grad():
            output = hf_model(**encoded, output_attentions=True)
        bertviz.model_view(output.attentions, hf_tokens, html_action="return")

    times = alternate(
        {
            "minibert": minibert_side,
            "transformers + bertviz.head_view": reference_side,
            "transformers + bertviz.model_view": reference_model_view,
        },
        args.warmup,
        args.rounds,
    )
    for name in parts:  # keep only the timed rounds of each part
        parts[name] = parts[name][-args.rounds :]

    model_view = viz.model_view(result)
    head_view = viz.head_view(result, 2)
    serialise = []
    for _ in range(max(3, args.rounds // 2)):
        start = time.perf_counter()
        model_view.to_json()
        head_view.to_json()
        serialise.append(time.perf_counter() - start)
    return {
        "tokens": result.seq_len,
        "layers_x_heads": f"{result.num_layers} x {result.num_heads}",
        "median_ms": {name: median_ms(t) for name, t in times.items()},
        "minibert_parts_ms": {name: median_ms(t) for name, t in parts.items()},
        "minibert_to_json_ms": median_ms(serialise),
        "payload_bytes": {
            "model_view": len(model_view.to_json()),
            "head_view": len(head_view.to_json()),
        },
        "_result": result,
    }


# --------------------------------------------------------------------------------------------
# 2. the model view in a browser
# --------------------------------------------------------------------------------------------


def bench_browser(result, args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(REPO / "tests"))
    from browser_support import launch_chromium, open_offline_page, skip_reason

    from minibert import viz

    reason = skip_reason()
    if reason:
        return {"skipped": reason}
    fig = viz.model_view(result)
    drawn = "() => { const i = document.querySelector('.imagelayer image'); " \
        "return i && (i.getAttribute('href') || '').length > 100; }"  # fmt: skip
    loads, draws, problems = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        page_path = viz.to_html(fig, Path(folder) / "model_view.html")
        figure_json = fig.to_json()
        with launch_chromium() as browser:
            for _ in range(args.page_loads):
                with open_offline_page(browser) as offline:
                    start = time.perf_counter()
                    offline.page.goto(page_path.as_uri(), wait_until="commit")
                    offline.page.wait_for_function(drawn, timeout=120_000, polling=10)
                    loads.append(time.perf_counter() - start)
                    # Drawing alone: newPlot into a fresh div of the loaded page, timed in-page.
                    for _ in range(3):
                        draws.append(
                            offline.page.evaluate(
                                """async (spec) => {
                                    const fig = JSON.parse(spec);
                                    const div = document.createElement('div');
                                    document.body.appendChild(div);
                                    const t0 = performance.now();
                                    await Plotly.newPlot(div, fig.data, fig.layout);
                                    const t1 = performance.now();
                                    Plotly.purge(div); div.remove();
                                    return (t1 - t0) / 1000; }""",
                                figure_json,
                            )
                        )
                    problems += offline.problems()
        page_bytes = page_path.stat().st_size
    return {
        "page_bytes": page_bytes,
        "figure_bytes": len(figure_json),
        "open_to_drawn_ms": median_ms(loads),
        "newplot_ms": median_ms(draws),
        "problems": problems,
    }


# --------------------------------------------------------------------------------------------
# 3. across checkpoints
# --------------------------------------------------------------------------------------------


def make_run(folder: Path, checkpoints: int) -> Path:
    """A ``tiny``-preset pretraining run with a checkpoint at every step (lee-news corpus)."""
    from minibert.train.pretrain import pretrain

    out = folder / "tiny-run"
    pretrain(
        out=out,
        cache_dir=folder / "data-cache",
        overrides={
            "preset": "tiny",
            "data.corpus": "lee-news",
            "data.vocab_size": 2000,
            "train.batch_size": 8,
            "train.eval_examples": 16,
            "train.progress": False,
            "max_steps": checkpoints,
            "eval_every": checkpoints,
            "checkpoint_every": 1,
            "keep_checkpoints": 0,
            "log_every": 5,
        },
    )
    return out


def bench_checkpoints(args: argparse.Namespace, folder: Path) -> dict:
    from minibert import viz
    from minibert.inspect.checkpoints import attention_over_training, list_checkpoints
    from minibert.inspect.sources import clear_model_cache

    start = time.perf_counter()
    run = args.run or make_run(folder, args.checkpoints)
    made_s = time.perf_counter() - start
    count = len(list_checkpoints(run))
    text = "The cat sat on the mat because it was tired, and then it slept."

    firsts, cached = [], []
    for attempt in range(1 if args.quick else 3):
        clear_model_cache()  # nothing loaded in memory
        cache = folder / f"inspect-cache-{attempt}"  # nothing on disk
        start = time.perf_counter()
        over = attention_over_training(run, text, cache_dir=cache)
        firsts.append(time.perf_counter() - start)
        for _ in range(5):
            start = time.perf_counter()
            attention_over_training(run, text, cache_dir=cache)
            cached.append(time.perf_counter() - start)
    figures = {"one head": [], "every head": []}
    for _ in range(5):
        start = time.perf_counter()
        viz.attention_over_training(over, 0, 0)
        figures["one head"].append(time.perf_counter() - start)
        start = time.perf_counter()
        viz.attention_over_training(over)
        figures["every head"].append(time.perf_counter() - start)
    return {
        "run": str(run) if args.run else f"made here ({made_s:.0f} s)",
        "checkpoints": count,
        "tokens": over.results[0].seq_len,
        "first_ms": median_ms(firsts),
        "cached_ms": median_ms(cached),
        "figure_ms": {name: median_ms(t) for name, t in figures.items()},
    }


# --------------------------------------------------------------------------------------------


def report(results: dict, args: argparse.Namespace) -> str:
    import plotly
    import transformers

    lines = [
        f"# bench_inspect: {platform.processor() or platform.machine()}, "
        f"torch threads {torch.get_num_threads()}, torch {torch.__version__}, "
        f"transformers {transformers.__version__}, bertviz {metadata.version('bertviz')}, "
        f"plotly {plotly.__version__}",
        "",
    ]
    text = results["text"]
    lines += [
        f"## 1. {text['tokens']}-token text, MiniLM ({text['layers_x_heads']} heads): numbers + "
        f"figures, median of {args.rounds} (target < 300 ms)",
        "",
        "| side | median ms |",
        "|---|---:|",
    ]
    for name, ms in text["median_ms"].items():
        lines.append(f"| {name} | {ms:.1f} |")
    parts = text["minibert_parts_ms"]
    lines += [
        "",
        "minibert parts: "
        + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items())
        + f"; figures to JSON (not included above) {text['minibert_to_json_ms']:.1f} ms; "
        f"payload model view {text['payload_bytes']['model_view'] / 1e3:.0f} KB, "
        f"head view {text['payload_bytes']['head_view'] / 1e3:.0f} KB",
        "",
    ]
    browser = results.get("browser")
    if browser:
        lines.append("## 2. Model view in headless Chromium, offline (target < 2 s, < 5 MB)")
        lines.append("")
        if "skipped" in browser:
            lines.append(f"skipped: {browser['skipped']}")
        else:
            lines += [
                f"- page {browser['page_bytes'] / 1e6:.2f} MB (plotly.js embedded, 4.8 MB of it); "
                f"the figure itself {browser['figure_bytes'] / 1e3:.0f} KB",
                f"- open page -> picture drawn: {browser['open_to_drawn_ms']:.0f} ms "
                f"(median of {args.page_loads}; parsing plotly.js included)",
                f"- Plotly.newPlot of the 72 heads in a loaded page: {browser['newplot_ms']:.0f} ms",
                f"- problems (blocked requests, console errors): {browser['problems'] or 'none'}",
            ]
        lines.append("")
    checkpoints = results.get("checkpoints")
    if checkpoints:
        lines += [
            f"## 3. Attention across {checkpoints['checkpoints']} checkpoints of a tiny run "
            f"({checkpoints['run']}; {checkpoints['tokens']} tokens)",
            "",
            f"- first time (empty cache, no model in memory): {checkpoints['first_ms']:.0f} ms "
            "(target < 2 s)",
            f"- cached: {checkpoints['cached_ms']:.1f} ms (target < 100 ms)",
            "- figure with a slider over steps: "
            + ", ".join(f"{k} {v:.0f} ms" for k, v in checkpoints["figure_ms"].items()),
        ]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    if args.quick:
        args.warmup, args.rounds, args.page_loads = 1, 3, 2
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    results: dict = {}
    results["text"] = bench_text(args)
    result = results["text"].pop("_result")
    if not args.skip_browser:
        results["browser"] = bench_browser(result, args)
    if not args.skip_checkpoints:
        with tempfile.TemporaryDirectory() as folder:
            results["checkpoints"] = bench_checkpoints(args, Path(folder))
    print(report(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
