"""Scoring groups of post-processing settings on cached maps: one pass per group, shared work kept.

    scorer = GroupScorer(cache, ground_truth)
    scorer.score(setting, box_threshes=[0.2, 0.3])  # one metrics dict per box_thresh

No torch here: the search's worker processes import it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from doclab.config import PostprocessParams
from doclab.detection.evaluator import DetectionEvaluator, SplitGroundTruth
from doclab.detection.map_cache import MapCache
from doclab.detection.postprocess import db_postprocess
from doclab.detection.quads import Kernels, find_kernels, image_region, to_original, unclip_many
from doclab.metrics.detection import ImageScore


class GroupScorer:
    """Scores groups of settings on one cache; what a search process keeps between groups.

    It holds one evaluator (each image's GT prepared once) and the kernels of the last threshold
    (`detection.quads`): settings that differ only in the unclip ratio reuse the contour pass of
    their `thresh`. Maps are converted to float32 per pass, as `db_postprocess` does, so a process
    holds no more map memory than the cache.

    Args:
        cache: the split's maps.
        ground_truth: {key: (polygons, ignore flags)} for `cache.keys`.
    """

    def __init__(self, cache: MapCache, ground_truth: SplitGroundTruth) -> None:
        self.cache = cache
        self.evaluator = DetectionEvaluator(ground_truth)
        self._kernels: tuple[tuple, list[Kernels]] | None = None

    def _quads(self, setting: PostprocessParams, largest_ratio: float) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per image (quads (Q, 4, 2) in image pixels, scores (Q,)) at box_thresh 0, as db_postprocess finds them."""
        key = (setting.thresh, setting.max_candidates, setting.score_mode, setting.min_size, largest_ratio)
        if self._kernels is None or self._kernels[0] != key:
            self._kernels = key, [find_kernels(image_region(prob, scale, size), setting.thresh, setting.max_candidates,
                                               setting.score_mode, setting.min_size, largest_ratio)
                                  for prob, scale, size in zip(self.cache.maps, self.cache.scales,
                                                               self.cache.original_sizes)]
        quads = unclip_many(self._kernels[1], setting.box_unclip_ratio, setting.min_size, 0.0)
        return [(to_original(q.points, scale, size), q.scores)
                for q, scale, size in zip(quads, self.cache.scales, self.cache.original_sizes)]

    def _polygons(self, setting: PostprocessParams) -> list[tuple[list[np.ndarray], np.ndarray]]:
        detections = db_postprocess(self.cache.maps, dataclasses.replace(setting, box_thresh=0.0),
                                    scales=self.cache.scales, original_sizes=self.cache.original_sizes)
        return [([d.points for d in found], np.array([d.score for d in found])) for found in detections]

    def score(self, setting: PostprocessParams, box_threshes: Sequence[float],
              largest_ratio: float | None = None) -> list[dict[str, float]]:
        """Metrics of `setting` with each of `box_threshes`, from one post-processing pass.

        `box_thresh` only drops regions whose score is under it, after everything else is
        decided: the detections at box_thresh b are exactly those at 0 with score >= b, in the
        same order. An image whose kept detections are the same for two values is scored once.

        Args:
            setting: the setting (its box_thresh is ignored).
            box_threshes: the values to score.
            largest_ratio: the largest box_unclip_ratio asked of this `thresh` (kernels too small
                for it are not scored); default the setting's own. Results do not depend on it.
        Returns:
            One metrics dict per box_thresh, equal to `score_postprocess` with that box_thresh.
        """
        ratio = setting.box_unclip_ratio if largest_ratio is None else max(largest_ratio, setting.box_unclip_ratio)
        found = self._polygons(setting) if setting.polygon else self._quads(setting, ratio)
        seen: dict[tuple[int, bytes], ImageScore] = {}
        metrics = []
        for box_thresh in box_threshes:
            self.evaluator.reset()
            for index, (key, (points, scores)) in enumerate(zip(self.cache.keys, found)):
                kept = scores >= box_thresh
                memo = (index, kept.tobytes())
                if memo not in seen:
                    seen[memo] = self.evaluator.score(key, [p for p, keep in zip(points, kept) if keep])
                self.evaluator.add(key, seen[memo])
            metrics.append(self.evaluator.evaluate())
        return metrics


def score_box_threshes(cache: MapCache, ground_truth: SplitGroundTruth, postprocess: PostprocessParams,
                       box_threshes: Sequence[float]) -> list[dict[str, float]]:
    """Metrics of `postprocess` with each of `box_threshes`, from one post-processing pass (`GroupScorer.score`).

    Returns:
        One metrics dict per box_thresh, equal to `score_postprocess` with that box_thresh.
    """
    return GroupScorer(cache, ground_truth).score(postprocess, box_threshes)
