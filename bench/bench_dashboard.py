"""How fast the dashboard answers: the two figures issue 12 asks for.

1. Attention page, MiniLM, a 128-token sentence: the time from typing a new sentence to the page
   being rebuilt on the server (Streamlit AppTest runs the page script exactly as the server
   does), after the first load; and its parts (attention, each figure). Target: under 1 s.
2. Runs page with a 100,000-line metrics.jsonl: the first read, an incremental refresh after
   100 new lines (what the live fragment does every 2 s), the downsampled rows and the figure,
   and the whole page run. Target: a refresh well under the 2 s refresh period.

    python bench/bench_dashboard.py                 # the real figures (a minute or two)
    python bench/bench_dashboard.py --quick         # 10k lines, fewer repeats: proves it runs
    python bench/bench_dashboard.py --json out.json

Browser drawing time comes on top (plotly draws at most 2,000 points per curve; the model view
is one image); tests/test_dashboard_browser.py checks that it draws.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# 128 word pieces with MiniLM's uncased WordPiece ([CLS] + 126 + [SEP]); checked in _sentence.
WORDS = (
    "the river flows through the centre of the old city and past the cathedral where the "
    "market is held every saturday morning while farmers from the valley bring fruit cheese "
    "and bread to sell to the people who live in the narrow streets around the square "
)


def _sentence(tokenizer, length: int = 128) -> str:
    """A sentence of exactly ``length`` word pieces (specials included) for ``tokenizer``."""
    words = (WORDS * 8).split()
    for n in range(len(words), 0, -1):
        text = " ".join(words[:n])
        if len(tokenizer(text)["input_ids"]) <= length:
            return text
    raise RuntimeError("could not build the sentence")


def _timed(function, repeats: int) -> tuple[float, float]:
    """Median and max seconds of ``function()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), max(times)


def bench_attention(repeats: int) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    from minibert import viz
    from minibert.dashboard.common import MINILM_LABEL
    from minibert.dashboard.launch import APP_PATH
    from minibert.inspect import load_model
    from minibert.inspect.attention_maps import attention

    loaded = load_model("minilm")
    text = _sentence(loaded.tokenizer)
    result = attention(loaded, text)
    figures: dict[str, float] = {"tokens": float(result.seq_len)}
    figures["attention_s"], _ = _timed(lambda: attention(loaded, text), repeats)
    figures["head_view_s"], _ = _timed(lambda: viz.head_view(result, 0), repeats)
    figures["model_view_s"], _ = _timed(lambda: viz.model_view(result), repeats)
    figures["heatmap_s"], _ = _timed(lambda: viz.attention_heatmap(result, 0, 0), repeats)

    with tempfile.TemporaryDirectory() as empty:
        os.environ["MINIBERT_RUNS"] = empty
        at = AppTest.from_file(str(APP_PATH), default_timeout=300).run()
        at.switch_page("pages/attention.py").run()
        at.radio(key="attention-model-kind").set_value(MINILM_LABEL).run()  # the first load
        views = {"head view": "Head view", "model view": "Model view", "one head": "One head"}
        for name, view in views.items():
            at.segmented_control(key="attention-view").set_value(view).run()
            texts = [f"{text} {i}" for i in range(repeats)]

            def type_sentence(texts=texts):
                at.text_area(key="attention-text").set_value(texts.pop()).run()

            median, worst = _timed(type_sentence, repeats)
            assert not at.exception and not at.error, [e.value for e in at.error]
            figures[f"page_{name.replace(' ', '_')}_s"] = median
            figures[f"page_{name.replace(' ', '_')}_max_s"] = worst
    return figures


def _write_metrics(path: Path, lines: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for step in range(1, lines + 1):
            split = "eval" if step % 50 == 0 else "train"
            record = {
                "step": step,
                "split": split,
                "time": step * 0.05,
                "wall_time": 1.8e9 + step * 0.05,
                "tokens": step * 4096,
                "loss": 2.0 + 8.0 / (1 + step / 500),
                "mlm_loss": 2.0 + 8.0 / (1 + step / 500),
                "mlm_accuracy": 0.4 - 0.4 / (1 + step / 1000),
                "lr": 1e-3,
                "grad_norm": 1.0,
                "tokens_per_second": 80_000.0,
            }
            handle.write(json.dumps(record) + "\n")


def bench_runs(lines: int, repeats: int) -> dict[str, float]:
    from streamlit.testing.v1 import AppTest

    from minibert import viz
    from minibert.dashboard.launch import APP_PATH
    from minibert.inspect.runs import CurveBuffer, MetricsTail

    figures: dict[str, float] = {"lines": float(lines)}
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "big"
        run.mkdir()
        (run / "run.json").write_text(json.dumps({"kind": "pretrain", "name": "big"}))
        _write_metrics(run / "metrics.jsonl", lines)
        figures["file_mb"] = (run / "metrics.jsonl").stat().st_size / 1e6

        start = time.perf_counter()
        tail, buffer = MetricsTail(run), CurveBuffer()
        buffer.extend(tail.read_new())
        figures["first_read_s"] = time.perf_counter() - start

        def append_and_refresh() -> None:
            with open(run / "metrics.jsonl", "a", encoding="utf-8") as handle:
                for step in range(100):
                    handle.write(json.dumps({"step": lines + step, "split": "train",
                                             "time": 1.0, "tokens": 1, "loss": 2.5}) + "\n")  # fmt: skip
            buffer.extend(tail.read_new())

        figures["refresh_100_lines_s"], _ = _timed(append_and_refresh, repeats)
        figures["rows_downsampled_s"], _ = _timed(lambda: buffer.rows("train", "loss"), repeats)
        rows = buffer.rows("train", "loss")
        figures["points_drawn"] = float(len(rows))
        figures["figure_s"], _ = _timed(
            lambda: viz.training_curves({"big": rows}, y="loss"), repeats
        )

        os.environ["MINIBERT_RUNS"] = folder
        start = time.perf_counter()
        at = AppTest.from_file(str(APP_PATH), default_timeout=300).run()
        figures["page_first_run_s"] = time.perf_counter() - start
        assert not at.exception and not at.error, [e.value for e in at.error]
        figures["page_rerun_s"], _ = _timed(lambda: at.run(), repeats)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k lines, 2 repeats")
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    lines, repeats = (10_000, 2) if args.quick else (args.lines, args.repeats)
    import torch

    results = {
        "threads": torch.get_num_threads(),
        "attention_minilm_128": bench_attention(repeats),
        "runs_page": bench_runs(lines, repeats),
    }
    for section, figures in results.items():
        if not isinstance(figures, dict):
            print(f"{section}: {figures}")
            continue
        print(section)
        for name, value in figures.items():
            print(f"  {name:<28} {value:10.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
