"""Time every lesson notebook top to bottom, as a class would run them, against its budget.

Each lesson runs in a fresh kernel (:func:`minibert.lessons.execute.run_notebook`), in order
00 -> 10, in one runs folder that starts empty, exactly as a student's checkout does: the first
lesson that needs a pretrained model pays for it (about 90 s in full mode, once), lesson 06 trains
its own run, and later lessons reuse it. The budget beside each time is the issue's promise:
300 s per lesson in full mode and 60 s in fast mode (``MINIBERT_FAST=1``, what CI runs), on a
2-core CPU.

    python bench/bench_lessons.py                        # full mode, all lessons (about 15 min)
    python bench/bench_lessons.py --mode fast            # CI's mode (about 4 min)
    python bench/bench_lessons.py --mode both            # fast, then full (about 20 min)
    python bench/bench_lessons.py 04 07 --mode full      # some lessons
    python bench/bench_lessons.py --out bench-out/lessons   # keep executed notebooks + HTML

With ``--out``, each executed notebook is saved (``NN-topic.<mode>.ipynb``, and an offline HTML
export) so its printed numbers can be read, plus ``timings.json``. The data cache is the
user's (``$MINIBERT_CACHE`` or ``~/.cache/minibert``); a cold cache adds the corpus preparation
(about 15 s) to the first lesson. Run on a quiet machine: the figures are wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's minibert, installed or not

from minibert.lessons.core import FAST_BUDGET_S, FULL_BUDGET_S  # noqa: E402

BUDGETS_S = {"full": FULL_BUDGET_S, "fast": FAST_BUDGET_S}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: all), e.g. 04 07")
    parser.add_argument("--mode", choices=("full", "fast", "both"), default="full")
    parser.add_argument(
        "--runs", type=Path, default=None, help="the runs folder (default: a new temporary one)"
    )
    parser.add_argument("--out", type=Path, default=None, help="save executed notebooks here")
    parser.add_argument(
        "--timeout", type=float, default=900, help="seconds one cell may take (default 900)"
    )
    return parser.parse_args()


def chosen_sources(numbers: list[str]) -> list[Path]:
    from minibert.lessons import build

    sources = build.lesson_sources(REPO / "notebooks")
    if not numbers:
        return sources
    wanted = {n.zfill(2) for n in numbers}
    picked = [s for s in sources if s.stem[:2] in wanted]
    missing = wanted - {s.stem[:2] for s in picked}
    if missing:
        sys.exit(f"no lesson numbered {', '.join(sorted(missing))} in notebooks/")
    return picked


def time_mode(mode: str, sources: list[Path], runs: Path, out: Path | None, timeout: float):
    from minibert.lessons import build
    from minibert.lessons.execute import run_notebook

    os.environ["MINIBERT_RUNS"] = str(runs)
    if mode == "fast":
        os.environ["MINIBERT_FAST"] = "1"
    else:
        os.environ.pop("MINIBERT_FAST", None)
    budget = BUDGETS_S[mode]
    rows = []
    for source in sources:
        started = time.strftime("%H:%M:%S")
        ran = run_notebook(build.student_notebook(source), cwd=source.parent, timeout=timeout)
        verdict = "ok" if ran.seconds <= budget else "OVER"
        print(
            f"{mode:4s} {source.stem:36s} {ran.seconds:7.1f} s  (budget {budget:.0f} s, {verdict})"
            f"  started {started}",
            flush=True,
        )
        for index, seconds, line in ran.slowest(3):
            print(f"       cell {index:3d} {seconds:7.1f} s  {line[:70]}", flush=True)
        rows.append(
            {
                "lesson": source.stem,
                "mode": mode,
                "seconds": round(ran.seconds, 2),
                "budget_s": budget,
                "slowest_cells": [
                    {"cell": i, "seconds": round(s, 2), "source": line}
                    for i, s, line in ran.slowest(5)
                ],
            }
        )
        if out is not None:
            import nbformat

            out.mkdir(parents=True, exist_ok=True)
            nbformat.write(ran.notebook, out / f"{source.stem}.{mode}.ipynb")
            build.export_html(ran.notebook, out / f"{source.stem}.{mode}.html")
    return rows


def main() -> None:
    args = parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # The kernels import minibert from this checkout even when it is not installed.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPO), os.environ.get("PYTHONPATH")])
    )
    sources = chosen_sources(args.lessons)
    modes = ["fast", "full"] if args.mode == "both" else [args.mode]
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
        f"load {os.getloadavg()[0]:.2f}; lessons: {' '.join(s.stem[:2] for s in sources)}",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-lessons-") as scratch:
        for mode in modes:
            # Each mode starts from an empty runs folder (a fast run is too short to reuse).
            runs = args.runs or Path(scratch) / f"runs-{mode}"
            rows += time_mode(mode, sources, runs, args.out, args.timeout)
    print("\nlesson                               " + "  ".join(f"{m:>8s}" for m in modes))
    for stem in dict.fromkeys(r["lesson"] for r in rows):
        cells = {r["mode"]: r["seconds"] for r in rows if r["lesson"] == stem}
        print(f"{stem:36s} " + "  ".join(f"{cells.get(m, float('nan')):7.1f}s" for m in modes))
    for mode in modes:
        total = sum(r["seconds"] for r in rows if r["mode"] == mode)
        over = [r["lesson"] for r in rows if r["mode"] == mode and r["seconds"] > BUDGETS_S[mode]]
        print(
            f"{mode}: {total:.0f} s in all; over the {BUDGETS_S[mode]:.0f} s budget: {over or 'none'}"
        )
    if args.out is not None:
        (args.out / "timings.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
