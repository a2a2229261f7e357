"""Make the pictures of docs/inspect.md: one PNG per kind of figure in minibert.viz.

Every picture is drawn from real numbers: the offline all-MiniLM-L6-v2 for attention, heads
and embeddings; a pretraining run for checkpoints, fill-mask, the masking lab, ablation and
training curves; a fine-tuning run for the confusion matrix. Without ``--run`` /
``--finetune-run`` the script trains small ones in a temporary folder first (lee-news corpus,
``tiny`` preset; a few minutes on 2 cores), so the models are weak and their guesses poor:
for nicer pictures pass the runs of ``minibert demo``.

PNGs come from kaleido when it is installed (and finds Chrome or Chromium), else from a
screenshot of the offline HTML page in headless Chromium (Playwright driving Debian's
``chromium``); both work with no network.

    python docs/make_figures.py                                  # everything, small runs
    python docs/make_figures.py --run runs/demo/pretrain --finetune-run runs/demo/finetune
    python docs/make_figures.py --only model_view,head_view --theme presentation
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "docs" / "images"
SENTENCE = "The cat sat on the mat because it was tired."
SECOND = "Then it fell asleep in the sun."
logger = logging.getLogger("make_figures")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a pretraining run with checkpoints")
    parser.add_argument("--finetune-run", type=Path, help="a finished fine-tuning run")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--theme", default="default", choices=["default", "presentation"])
    parser.add_argument("--only", help="comma-separated figure names (default: all)")
    parser.add_argument("--scale", type=float, default=1.0, help="pixel density of the PNGs")
    parser.add_argument("--steps", type=int, default=200, help="steps of the run made here")
    return parser.parse_args()


def make_runs(folder: Path, steps: int) -> tuple[Path, Path]:
    """A small tiny-preset pretraining run with 10 checkpoints, and a short fine-tuning of it."""
    from minibert.train.finetune import finetune
    from minibert.train.pretrain import pretrain

    cache = folder / "data-cache"
    run = folder / "pretrain"
    pretrain(
        out=run,
        cache_dir=cache,
        overrides={
            "data.corpus": "lee-news",
            "data.vocab_size": 4000,
            "train.batch_size": 32,
            "train.eval_examples": 64,
            "train.progress": False,
            "max_steps": steps,
            "eval_every": max(steps // 10, 1),
            "checkpoint_every": max(steps // 10, 1),
            "keep_checkpoints": 0,
            "log_every": max(steps // 50, 1),
        },
    )
    tuned = folder / "finetune"
    finetune(
        out=tuned,
        cache_dir=cache,
        overrides={
            "task": "wiki-topic",
            "init": str(run),
            "task.max_seq_len": 64,
            "train.batch_size": 16,
            "train.progress": False,
            "train_limit": 256,
            "eval_limit": 96,
            "max_steps": 40,
            "eval_every": 10,
            "checkpoint_every": 20,
        },
    )
    return run, tuned


def figures(run: Path, tuned: Path) -> dict[str, Callable[[], object]]:
    """Each picture's name and how to make its figure (numbers computed when called)."""
    from minibert import viz
    from minibert.inspect.attention import attention
    from minibert.inspect.checkpoints import attention_over_training
    from minibert.inspect.embeddings import embed, project
    from minibert.inspect.heads import ablate_heads, compare_attention, head_statistics
    from minibert.inspect.masking import masking_lab
    from minibert.inspect.predictions import fill_mask, fill_mask_over_training
    from minibert.inspect.runs import finetune_report
    from minibert.train.rundir import read_metrics

    def minilm():
        return attention("minilm", SENTENCE, SECOND)

    def confusion():
        report = finetune_report(tuned)
        split = report.splits.get("validation") or next(iter(report.splits.values()))
        return viz.confusion_matrix(split["confusion"], split["labels"])

    def embeddings():
        words = ["cat", "dog", "horse", "cow", "car", "bus", "train", "bicycle",
                 "red", "green", "blue", "yellow", "Paris", "London", "Rome", "Berlin"]  # fmt: skip
        groups = ["animal"] * 4 + ["vehicle"] * 4 + ["colour"] * 4 + ["city"] * 4
        projection = project(embed("minilm", words), words)
        return viz.embedding_scatter(projection, groups=groups)

    def curves():
        runs = {run.name: read_metrics(run)}
        return viz.training_curves(runs, y=["loss", "mlm_accuracy", "lr"], x="tokens")

    checkpoint_text = "the [MASK] of the city"
    return {
        "attention_heatmap": lambda: viz.attention_heatmap(minilm(), 2, 0),
        "model_view": lambda: viz.model_view(minilm()),
        "head_view": lambda: viz.head_view(minilm(), 2),
        "attention_over_training": lambda: viz.attention_over_training(
            attention_over_training(run, SENTENCE), 1, 0
        ),
        "head_class_map": lambda: viz.head_class_map(head_statistics("minilm")),
        "ablation_chart": lambda: viz.ablation_chart(ablate_heads(run, num_sentences=32)),
        "attention_difference": lambda: viz.attention_difference(
            compare_attention(run, tuned, SENTENCE)
        ),
        "training_curves": curves,
        "fill_mask_over_training": lambda: viz.fill_mask_over_training(
            fill_mask_over_training(run, checkpoint_text, top_k=5)
        ),
        "fill_mask_chart": lambda: viz.fill_mask_chart(fill_mask(run, checkpoint_text)),
        "masking_lab_table": lambda: viz.masking_lab_table(
            masking_lab(run, "The river runs through the old town past the market.", seed=3)
        ),
        "embedding_scatter": embeddings,
        "confusion_matrix": confusion,
    }


def writer(out: Path) -> tuple[str, Callable]:
    """kaleido when it can render here, else a screenshot in headless Chromium."""
    from minibert import viz

    probe = out / ".probe.png"
    try:
        viz.save_image(viz.confusion_matrix([[1]], ["a"]), probe)
        probe.unlink()
        return "kaleido", lambda fig, path, scale: viz.save_image(fig, path, scale=scale)
    except viz.ImageExportError as error:
        logger.warning("kaleido not usable (%s); using a Chromium screenshot", error)

    sys.path.insert(0, str(REPO / "tests"))
    from browser_support import launch_chromium, open_offline_page

    def screenshot(fig, path: Path, scale: float) -> None:
        with tempfile.TemporaryDirectory() as folder:
            page_path = viz.to_html(fig, Path(folder) / "figure.html")
            with launch_chromium() as browser, open_offline_page(browser) as offline:
                offline.page.goto(page_path.as_uri())
                offline.page.wait_for_selector(".main-svg")
                offline.page.locator(".js-plotly-plot").screenshot(path=str(path))
                offline.assert_clean()

    return "chromium screenshot", screenshot


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from minibert import viz

    viz.use_theme(args.theme)
    args.out.mkdir(parents=True, exist_ok=True)
    how, write = writer(args.out)
    logger.info("writing PNGs with %s into %s", how, args.out)
    with tempfile.TemporaryDirectory() as folder:
        run, tuned = args.run, args.finetune_run
        if run is None or tuned is None:
            start = time.perf_counter()
            made_run, made_tuned = make_runs(Path(folder), args.steps)
            run, tuned = run or made_run, tuned or made_tuned
            logger.info("made the runs in %.0f s", time.perf_counter() - start)
        wanted = set(args.only.split(",")) if args.only else None
        for name, make in figures(run, tuned).items():
            if wanted and name not in wanted:
                continue
            start = time.perf_counter()
            fig = make()
            path = args.out / f"{name}.png"
            write(fig, path, args.scale)
            logger.info("%-26s %5.1f s  %s", name, time.perf_counter() - start, path)


if __name__ == "__main__":
    main()
