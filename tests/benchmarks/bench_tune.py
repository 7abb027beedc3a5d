"""Benchmark: post-processing search on cached maps vs re-running the detector per candidate.

    uv run python tests/benchmarks/bench_tune.py [--data data/processed --model models/detector.pt]
        [--params params.yaml] [--candidates 50] [--workers 2] [--repeats 3] [--quick]

Ours is what `tune_postprocess` does: one caching pass of the detector over the validation
split, then `--candidates` seeded random draws of `tune.space` (and a 50-point grid) scored on
the cached maps (`--workers` processes, this one included). The reference is the naive search:
for each candidate, run the detector over the split again and score that candidate with
`db_postprocess` and the evaluator, as evaluate does; it is timed on a few candidates, side by
side with ours, and its total is candidates x (median per-candidate time). Its scores must
equal the search's for the same candidates exactly. Target: reference / ours >= 30.

Without a trained model (a fresh clone before `dvc repro`), a small one is trained first in
a temporary folder (synthetic pages, a few epochs; `--quick`: a tiny one), not timed.
"""
from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from timing import measure, print_result, profile_top, row

from doclab.config import Params, load_params
from doclab.detection.scorer import GroupScorer
from doclab.detection.search import score_postprocess, search_postprocess

ROOT = Path(__file__).resolve().parents[2]
TARGET_RATIO = 30.0
# The grid variant: 50 combinations in which box_thresh varies fastest (5 x 5 x 2), as a grid in
# params.yaml would; candidates differing only in box_thresh share one post-processing pass.
GRID_50 = {"thresh": (0.2, 0.25, 0.3, 0.35, 0.4), "box_thresh": (0.1, 0.15, 0.2, 0.3, 0.4),
           "box_unclip_ratio": (1.3, 1.5)}
REFERENCE_CANDIDATES = 3  # the naive search is timed on this many candidates, then extrapolated
# Stand-in training set when no trained detector exists: dotted params keys -> values.
STAND_IN = {"data.synthetic.num_images": 80, "data.split.val": 0.25, "detector.train.epochs": 3}
STAND_IN_QUICK = {"data.synthetic.num_images": 24, "data.split.val": 0.3, "data.synthetic.long_side": 512,
                  "preprocess.max_side": 256, "image_size": 128, "detector.train.epochs": 1}


def train_stand_in(params_path: Path, folder: Path, quick: bool) -> tuple[Params, Path, Path]:
    """Preprocess synthetic pages and train a detector briefly in `folder` (untimed setup).

    Args:
        params_path: the repository's params.yaml, overridden with STAND_IN(_QUICK).
        folder: an empty temporary folder.
        quick: the tiny variant.
    Returns:
        (params, processed folder, detector file).
    """
    from doclab.pipeline.preprocess import preprocess
    from doclab.pipeline.train_detector import train_detector

    raw = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    for dotted, value in (STAND_IN_QUICK if quick else STAND_IN).items():
        *parents, leaf = dotted.split(".")
        tree = raw
        for part in parents:
            tree = tree[part]
        tree[leaf] = value
    (folder / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    params = load_params(folder / "params.yaml")
    data, model = folder / "processed", folder / "detector.pt"
    preprocess(params, folder, data, folder / "data.json")
    train_detector(params, data, model, folder / "checkpoints", folder / "live")
    return params, data, model


def _profile_one_candidate(params: Params, data: Path, model: Path, ground_truth, candidate: dict) -> list[str]:
    """cProfile of scoring one candidate in this process as a search worker does, once its GT is
    prepared and its maps converted (profiling the search itself would only show the main process
    waiting for its workers)."""
    from doclab.detection.maps import cache_split_maps

    settings = dataclasses.replace(params.postprocess, **candidate)
    with cache_split_maps(params, data, model) as cache:
        scorer = GroupScorer(cache, ground_truth)
        scorer.score(dataclasses.replace(settings, thresh=settings.thresh / 2), [settings.box_thresh])  # warm-up
        lines = profile_top(lambda: scorer.score(settings, [settings.box_thresh]), entries=14)
    return ["one candidate scored in-process (the work of each search worker):", *lines]


def time_search(params: Params, data: Path, model: Path, candidates: int, workers: int, repeats: int,
                search: str = "random") -> dict:
    """Ours (cache once + search) and the naive reference (inference + scoring per candidate).

    `search` "random" draws `candidates` settings (none share a pass); "grid" searches GRID_50.

    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    # torch loads here, not at the top: the search's spawned workers re-import the main
    # script and must not pay for a torch import they never use.
    from doclab.detection.dataset import load_ground_truth
    from doclab.detection.maps import cache_split_maps

    space = dataclasses.replace(params.tune.space, **GRID_50) if search == "grid" else params.tune.space
    tune = dataclasses.replace(params.tune, search=search, trials=candidates, workers=workers, space=space)
    key = "tune" if search == "random" else f"tune_{search}"
    ground_truth = load_ground_truth(data, "val")
    found, naive, search_ms = [], [], []

    def cache_and_search() -> None:
        with cache_split_maps(params, data, model) as cache:
            start = time.perf_counter()
            found.append(search_postprocess(cache, ground_truth, params.postprocess, tune, params.seed))
            search_ms.append((time.perf_counter() - start) * 1000)

    def rerun_one_candidate() -> None:
        settings = dataclasses.replace(params.postprocess, **found[0].candidates[len(naive) % REFERENCE_CANDIDATES])
        with cache_split_maps(params, data, model) as fresh:
            naive.append((settings, score_postprocess(fresh, ground_truth, settings)))

    cache_and_search()  # warm-up (kernel selection, file cache) and the candidates the reference re-runs
    wall, cpu = measure({"ours": cache_and_search, "reference": rerun_one_candidate},
                        max(repeats, REFERENCE_CANDIDATES))
    result, count = found[-1], len(found[-1].candidates)
    by_settings = {dataclasses.replace(params.postprocess, **c): s for c, s in zip(result.candidates, result.scores)}
    equal = all(by_settings[settings] == scores for settings, scores in naive)
    reference_ms = count * wall["reference"]
    ratio = reference_ms / wall["ours"]
    check = (f"{len(naive)} re-run candidates score {'exactly as' if equal else 'NOT as'} the search; best "
             f"{tune.metric} {result.scores[result.best_index][tune.metric]:.4f} vs untuned {result.untuned[tune.metric]:.4f}")
    met = ratio >= TARGET_RATIO and equal
    metrics = {f"{key}.speedup": ratio, f"{key}.search_s": wall["ours"] / 1000,
               f"{key}.reference_s": reference_ms / 1000, f"{key}.rerun_candidate_ms": wall["reference"],
               f"{key}.candidates": count, f"{key}.val_images": len(ground_truth)}
    notes = [f"{len(ground_truth)} val images at {params.image_size} px, {params.model}, {count} {search} candidates, "
             f"{workers} worker(s); one re-run candidate {wall['reference']:.0f} ms wall, {cpu['reference']:.0f} ms CPU; "
             f"the search alone (ours without its detector pass) {np.median(search_ms[1:]):.0f} ms"]
    profile = [] if met else _profile_one_candidate(params, data, model, ground_truth, result.candidates[0])
    return {"rows": [row(f"tune_postprocess, {count} {search} candidates", wall["ours"], reference_ms, "ms", f">= {TARGET_RATIO:.0f}x, equal",
                         met, check)], "metrics": metrics, "notes": notes, "profile": profile}


def run(repeats: int = 3, quick: bool = False, params_path: Path = ROOT / "params.yaml",
        data: Path = ROOT / "data/processed", model: Path = ROOT / "models/detector.pt",
        candidates: int = 50, workers: int = 2) -> dict:
    """The trained detector of this checkout when there is one, else a stand-in trained first.

    Args:
        repeats: timed searches (median; at least REFERENCE_CANDIDATES); `quick` caps it at that.
        quick: the tiny stand-in when no trained model exists, fewest repeats.
        params_path, data, model: the checkout's params, processed folder and detector.
        candidates: random draws of `tune.space`.
        workers: search processes.
    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    repeats = REFERENCE_CANDIDATES if quick else repeats
    if model.is_file() and (data / "splits.json").is_file():
        params = load_params(params_path)
        result = _merged([time_search(params, data, model, candidates, workers, repeats, search)
                          for search in ("random", "grid")])
        result["notes"].append(f"trained detector: {model}")
        return result
    with tempfile.TemporaryDirectory(prefix="doclab-bench-tune-") as folder:
        params, stand_in_data, stand_in_model = train_stand_in(params_path, Path(folder), quick)
        result = time_search(params, stand_in_data, stand_in_model, candidates, workers, repeats)
    result["notes"].append(f"no {model.relative_to(ROOT) if model.is_relative_to(ROOT) else model}: a stand-in detector trained on synthetic pages "
                           f"({STAND_IN_QUICK if quick else STAND_IN})")
    return result


def _merged(results: list[dict]) -> dict:
    """One suite result from several: rows, notes and profiles concatenated, metrics united."""
    return {"rows": [r for result in results for r in result["rows"]],
            "metrics": {k: v for result in results for k, v in result["metrics"].items()},
            "notes": [n for result in results for n in result["notes"]],
            "profile": [line for result in results for line in result["profile"]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default=ROOT / "params.yaml", type=Path)
    parser.add_argument("--data", default=ROOT / "data/processed", type=Path)
    parser.add_argument("--model", default=ROOT / "models/detector.pt", type=Path)
    parser.add_argument("--candidates", default=50, type=int)
    parser.add_argument("--workers", default=2, type=int)
    parser.add_argument("--repeats", default=3, type=int)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.params, args.data, args.model, args.candidates, args.workers))


if __name__ == "__main__":
    main()
