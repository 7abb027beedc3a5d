"""Post-processing search on cached probability maps: candidates, scoring, worker processes.

    result = search_postprocess(cache, ground_truth, params.postprocess, params.tune, params.seed)
    result.best  # the full PostprocessParams with the highest `tune.metric`

No torch here: worker processes import this module (spawn), and start in a second instead
of the several seconds a torch import takes.
"""
from __future__ import annotations

import dataclasses
import itertools
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from doclab.config import PostprocessParams, TuneParams, TuneSpace
from doclab.detection.evaluator import DetectionEvaluator, SplitGroundTruth
from doclab.detection.map_cache import MapCache
from doclab.detection.postprocess import db_postprocess
from doclab.detection.scorer import GroupScorer, score_box_threshes
from doclab.processes import leave_with

__all__ = ["MapCache", "SearchResult", "TUNED_KEYS", "grid_candidates", "make_candidates", "random_candidates",
           "score_all", "score_box_threshes", "score_postprocess", "search_postprocess"]

# The searched keys, in the order grid candidates vary (the last fastest) and random draws are made.
TUNED_KEYS = ("thresh", "box_thresh", "box_unclip_ratio", "polygon_unclip_ratio", "polygon")

Candidate = dict[str, float | bool]


@dataclass(frozen=True)
class SearchResult:
    """Every candidate's metrics and the winner.

    Attributes:
        candidates: the tuned values of each candidate, in search order.
        scores: metrics of each candidate (`cleval/...`, `cleval_global/...`, `iou/...`).
        untuned: metrics of the untuned baseline (`params.postprocess`).
        best_index: index of the best candidate (highest metric; the first one on ties).
        best: the full tuned post-processing params.
    """

    candidates: list[Candidate]
    scores: list[dict[str, float]]
    untuned: dict[str, float]
    best_index: int
    best: PostprocessParams


def grid_candidates(space: TuneSpace) -> list[Candidate]:
    """Every combination of `space`, the last key of `TUNED_KEYS` varying fastest.

    Returns:
        prod(len(list) for each key) candidates.
    """
    lists = [getattr(space, name) for name in TUNED_KEYS]
    return [dict(zip(TUNED_KEYS, values)) for values in itertools.product(*lists)]


def random_candidates(space: TuneSpace, trials: int, seed: int) -> list[Candidate]:
    """`trials` seeded draws: floats uniform in [min, max] of their list, `polygon` from its list.

    Per trial the keys are drawn in `TUNED_KEYS` order from one `np.random.default_rng(seed)`;
    a key with a single value (min == max, or one polygon choice) is fixed and draws nothing.

    Returns:
        `trials` candidates.
    """
    rng = np.random.default_rng(seed)
    candidates = []
    for _ in range(trials):
        candidate: Candidate = {}
        for name in TUNED_KEYS:
            values = getattr(space, name)
            if name == "polygon":
                candidate[name] = bool(values[int(rng.integers(len(values)))]) if len(set(values)) > 1 else values[0]
            else:
                low, high = min(values), max(values)
                candidate[name] = float(rng.uniform(low, high)) if low < high else float(low)
        candidates.append(candidate)
    return candidates


def make_candidates(tune: TuneParams, seed: int) -> list[Candidate]:
    """The candidates of `tune.search` ('grid' or 'random') over `tune.space`."""
    if tune.search == "grid":
        return grid_candidates(tune.space)
    return random_candidates(tune.space, tune.trials, seed)


def score_postprocess(cache: MapCache, ground_truth: SplitGroundTruth, postprocess: PostprocessParams) -> dict[str, float]:
    """Post-process every cached map with one setting and score the polygons.

    Args:
        cache: the split's maps.
        ground_truth: `load_ground_truth(data_dir, split)`: {key: (polygons (N_i, 2), ignore flags)}.
        postprocess: the setting to score.
    Returns:
        CLEval (competition mode) and IoU-0.5 metrics, plain floats (`DetectionEvaluator.evaluate`).
    """
    detections = db_postprocess(cache.maps, postprocess, scales=cache.scales, original_sizes=cache.original_sizes)
    evaluator = DetectionEvaluator(ground_truth)
    evaluator.process(cache.keys, detections)
    return evaluator.evaluate()


# Per worker process: the scorer over the cache and ground truth received once when the worker starts.
_WORKER_STATE: dict[str, Any] = {}


def _init_worker(cache: MapCache, ground_truth: SplitGroundTruth, parent: int) -> None:
    leave_with(parent)
    cv2.setNumThreads(1)  # the processes already fill the cores
    _WORKER_STATE["scorer"] = GroupScorer(cache, ground_truth)


def _score_in_worker(task: tuple[PostprocessParams, list[float], float]) -> list[dict[str, float]]:
    return _WORKER_STATE["scorer"].score(*task)


def _group_by_box_thresh(settings: Sequence[PostprocessParams]) -> dict[PostprocessParams, list[int]]:
    """{setting with box_thresh 0: indices of the settings equal to it but for box_thresh}, first-seen order."""
    groups: dict[PostprocessParams, list[int]] = {}
    for index, setting in enumerate(settings):
        groups.setdefault(dataclasses.replace(setting, box_thresh=0.0), []).append(index)
    return groups


def _tasks(groups: dict[PostprocessParams, list[int]],
           settings: Sequence[PostprocessParams]) -> tuple[list[tuple], list[int]]:
    """(setting, its box_threshes, the largest box_unclip_ratio of its thresh) per group, ordered by
    thresh so that consecutive groups share one contour pass, and each task's group index."""
    largest: dict[float, float] = {}
    for shared in groups:
        largest[shared.thresh] = max(largest.get(shared.thresh, 0.0), shared.box_unclip_ratio)
    tasks = [(shared, [settings[i].box_thresh for i in indices], largest[shared.thresh])
             for shared, indices in groups.items()]
    order = sorted(range(len(tasks)), key=lambda i: tasks[i][0].thresh)
    return [tasks[i] for i in order], order


def score_all(cache: MapCache, ground_truth: SplitGroundTruth, settings: Sequence[PostprocessParams],
              workers: int) -> list[dict[str, float]]:
    """Metrics of each setting, in order, in `workers` processes: this one and `workers - 1` spawned.

    Settings that differ only in `box_thresh` share one post-processing pass (a grid's
    box_thresh values cost scoring only), and those with the same `thresh` one contour pass
    where they run in the same process. Each spawned worker receives the cache once at start-up:
    a spilled cache as its file name (the worker memory-maps it), an in-memory one as a pickled
    copy. This process scores groups from the end of the list meanwhile, so no core waits for a
    worker to start. Results do not depend on `workers`: each group is scored alone, over all
    maps in order.
    """
    groups = _group_by_box_thresh(settings)
    tasks, order = _tasks(groups, settings)
    scorer = GroupScorer(cache, ground_truth)
    if workers <= 1 or len(tasks) <= 1:
        results = [scorer.score(*task) for task in tasks]
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(tasks)) - 1, mp_context=context, initializer=_init_worker,
                                 initargs=(cache, ground_truth, os.getpid())) as pool:
            futures = [pool.submit(_score_in_worker, task) for task in tasks]
            mine = {index: scorer.score(*tasks[index]) for index in reversed(range(len(tasks)))
                    if futures[index].cancel()}  # a task the workers have not taken yet
            results = [mine[index] if index in mine else future.result() for index, future in enumerate(futures)]
    by_group = [results[order.index(i)] for i in range(len(tasks))]
    scores: list[dict[str, float]] = [{} for _ in settings]
    for indices, group_scores in zip(groups.values(), by_group):
        for index, score in zip(indices, group_scores):
            scores[index] = score
    return scores


def best_index(scores: Sequence[dict[str, float]], metric: str) -> int:
    """Index of the highest `metric`; the earliest candidate wins ties."""
    values = [score[metric] for score in scores]
    return values.index(max(values))


def search_postprocess(cache: MapCache, ground_truth: SplitGroundTruth, untuned: PostprocessParams, tune: TuneParams,
                       seed: int) -> SearchResult:
    """Score the written post-processing and, when `tune.enabled`, every candidate of `tune` on the cached maps.

    The written `params.postprocess` is always the first candidate and wins ties, so the result is
    never worse on validation than what the user wrote; with `tune.enabled: false` it is the only one.

    Args:
        cache: the validation maps.
        ground_truth: {key: (polygons, ignore flags)} for `cache.keys`.
        untuned: `params.postprocess`; each candidate replaces its tuned keys.
        tune: enabled, search kind, space, trials, workers and the metric to maximise.
        seed: random-search seed (`params.seed`).
    Returns:
        The `SearchResult`.
    """
    written = {key: getattr(untuned, key) for key in TUNED_KEYS}
    searched = make_candidates(tune, seed) if tune.enabled else []
    candidates = [written] + [c for c in searched if {**written, **c} != written]
    settings = [dataclasses.replace(untuned, **candidate) for candidate in candidates]
    scores = score_all(cache, ground_truth, settings, tune.workers)
    index = best_index(scores, tune.metric)
    return SearchResult(candidates, scores, scores[0], index, settings[index])
