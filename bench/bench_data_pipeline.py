"""Time the embedded data pipeline cold and warm, per stage, and print its statistics.

    python bench/bench_data_pipeline.py                 # wiki-sample, fresh temporary cache
    python bench/bench_data_pipeline.py --corpus lee-news --vocab-size 4096

The cold run uses an empty cache folder (a temporary one unless --cache-dir is given), so every
stage runs: load, wikitext parsing, cleaning, splitting, WordPiece training, encoding. The warm
runs repeat the call on the same cache twice: once in this process, and once in a fresh Python
process, whose wall time includes interpreter start-up and imports, i.e. what a user waits for
when running a notebook cell or the CLI a second time. The tokenizer is loaded lazily after a
cache hit; its first-use time (mostly importing transformers) is shown separately.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from minibert.data.pipeline import DataConfig, prepare_data
from minibert.data.stats import compare_stats, format_reports

_WARM_PROCESS = """
import json, sys, time
started = time.perf_counter()
from minibert.data.pipeline import DataConfig, prepare_data
imported = time.perf_counter()
data = prepare_data(DataConfig.from_dict(json.loads(sys.argv[1])), cache_dir=sys.argv[2], progress=False)
prepared = time.perf_counter()
vocab = len(data.tokenizer)
loaded = time.perf_counter()
print(json.dumps({"from_cache": data.from_cache, "import": imported - started,
                  "prepare_data": prepared - imported, "tokenizer_first_use": loaded - prepared,
                  "vocab": vocab, "timings": data.timings}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", default="wiki-sample")
    parser.add_argument("--vocab-size", type=int, default=8192)
    parser.add_argument("--cache-dir", help="cache folder (default: a fresh temporary folder)")
    args = parser.parse_args()

    config = DataConfig(corpus=args.corpus, vocab_size=args.vocab_size)
    with tempfile.TemporaryDirectory(prefix="minibert-bench-") as tmp:
        cache = args.cache_dir or tmp
        print(
            f"corpus {args.corpus!r}, vocab {args.vocab_size}, cache {cache}, {os.cpu_count()} CPU cores"
        )

        started = time.perf_counter()
        cold = prepare_data(config, cache_dir=cache, progress=False)
        cold_wall = time.perf_counter() - started
        if cold.from_cache:
            print(
                "note: the cache already held this entry; pass an empty --cache-dir for a cold run"
            )

        started = time.perf_counter()
        warm = prepare_data(config, cache_dir=cache, progress=False)
        warm_wall = time.perf_counter() - started

        result = subprocess.run(
            [sys.executable, "-c", _WARM_PROCESS, json.dumps(config.to_dict()), cache],
            check=True,
            capture_output=True,
            text=True,
        )
        fresh = json.loads(result.stdout.strip().splitlines()[-1])

    print("\n== corpus statistics (parsed -> cleaned) ==")
    print(compare_stats(cold.stats["parsed"], cold.stats["cleaned"], ("parsed", "cleaned")))
    print(
        f"\ntrain: {cold.stats['train'].documents} documents, {cold.stats['train'].words:,} words; "
        f"valid: {cold.stats['valid'].documents} documents, {cold.stats['valid'].words:,} words"
    )
    print("\n== what each step removed ==")
    print(format_reports(cold.reports))
    print("\n== tokenizer on the validation documents ==")
    print(cold.tokenizer_report)

    print("\n== timings (seconds) ==")
    stages = list(cold.timings)
    width = max(len(s) for s in stages + list(warm.timings)) + 2
    print(f"{'stage'.ljust(width)}{'cold':>8}{'warm':>8}")
    for stage in stages + [s for s in warm.timings if s not in cold.timings]:
        c = cold.timings.get(stage)
        w = warm.timings.get(stage)
        print(
            f"{stage.ljust(width)}{'' if c is None else f'{c:.2f}':>8}{'' if w is None else f'{w:.2f}':>8}"
        )
    print(f"\ncold prepare_data, this process: {cold_wall:.2f} s")
    print(f"warm prepare_data, this process: {warm_wall:.2f} s (cache hit: {warm.from_cache})")
    total_fresh = fresh["import"] + fresh["prepare_data"] + fresh["tokenizer_first_use"]
    print(
        f"warm, fresh Python process:      import {fresh['import']:.2f} s + prepare_data "
        f"{fresh['prepare_data']:.2f} s + tokenizer first use {fresh['tokenizer_first_use']:.2f} s "
        f"= {total_fresh:.2f} s (cache hit: {fresh['from_cache']})"
    )


if __name__ == "__main__":
    main()
