"""Benchmark: post-processing search on cached maps vs re-running the detector per candidate.

    uv run --no-sync python tests/benchmarks/bench_tune.py [--data data/processed --model models/detector.pt]
        [--params params.yaml] [--candidates 50] [--search random|grid] [--workers 2]

Times one inference pass of the trained detector over the validation split, then the cached
search as `tune_postprocess` runs it: one caching pass plus scoring `--candidates` candidates
(random: that many seeded draws of `tune.space`; grid: every point of `tune.space`, whatever
`--candidates` says) with `--workers` processes. Prints ms per candidate, the speed-up over running the detector once
per candidate, (candidates x inference) / (cache + search) (target >= 30), and a candidate's
cost as a fraction of one inference pass.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from doclab.config import load_params
from doclab.tune.search import score_all, search_postprocess
from timing import measure

TARGET_RATIO = 30


def main() -> int:
    # torch loads inside main, not at the top: the search's spawned workers re-import this
    # script and must not pay for a torch import they never use.
    from doclab.detection.dataset import load_ground_truth
    from doclab.tune.cache import cache_split_maps

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--data", default="data/processed", type=Path)
    parser.add_argument("--model", default="models/detector.pt", type=Path)
    parser.add_argument("--candidates", default=50, type=int)
    parser.add_argument("--search", default="random", choices=("random", "grid"))
    parser.add_argument("--workers", default=2, type=int)
    args = parser.parse_args()
    if not args.model.is_file() or not (args.data / "splits.json").is_file():
        print(f"no trained model at {args.model} or no processed data in {args.data}: run dvc repro first",
              file=sys.stderr)
        return 2
    params = load_params(args.params)
    tune = dataclasses.replace(params.tune, search=args.search, trials=args.candidates, workers=args.workers)
    ground_truth = load_ground_truth(args.data, "val")

    def inference() -> None:
        with cache_split_maps(params, args.data, args.model):
            pass

    def cache_and_search() -> None:
        start = time.perf_counter()
        with cache_split_maps(params, args.data, args.model) as cache:
            cache_seconds.append(time.perf_counter() - start)
            found.append(search_postprocess(cache, ground_truth, params.postprocess, tune, params.seed))

    # Warm-up pass, not timed: the first pass also pays for kernel selection and a cold file cache.
    with cache_split_maps(params, args.data, args.model) as cache:
        images = len(cache.keys)
        single, _ = measure({"one candidate": lambda: score_all(cache, ground_truth, [params.postprocess], 1)}, 3)
    found, cache_seconds = [], []
    wall, cpu = measure({"inference": inference}, 1)
    total_wall, _ = measure({"cache + search": cache_and_search}, 1)
    result, count = found[0], len(found[0].candidates)
    inference_s, total_s = wall["inference"] / 1000, total_wall["cache + search"] / 1000
    per_candidate_ms = (total_s - cache_seconds[0]) * 1000 / count
    ratio = count * inference_s / total_s
    print(f"{images} val images at {params.image_size} px, {params.model}, device {params.device}; "
          f"{args.search} search, {count} candidates, {args.workers} worker(s)")
    print(f"one inference pass over val:   {inference_s:8.2f} s  (this process's CPU {cpu['inference'] / 1000:.1f} s)")
    print(f"cache + search:                {total_s:8.2f} s  (caching pass {cache_seconds[0]:.2f} s)")
    print(f"search per candidate:          {per_candidate_ms:8.1f} ms  (one candidate alone, in-process: "
          f"{single['one candidate']:.0f} ms)")
    print(f"({count} x inference) / (cache + search) = {ratio:.1f}  (target >= {TARGET_RATIO}: "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'})")
    print(f"per-candidate cost / inference pass = {per_candidate_ms / 1000 / inference_s:.3f} "
          f"(one candidate alone, in-process: {single['one candidate'] / 1000 / inference_s:.3f})")
    print(f"best {tune.metric} {result.scores[result.best_index][tune.metric]:.4f} "
          f"vs untuned {result.untuned[tune.metric]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
