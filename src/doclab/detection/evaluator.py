"""The one detection evaluator: per-image polygons -> CLEval (competition mode) and IoU-0.5 over a split.

    evaluator = DetectionEvaluator(load_ground_truth(data_dir, "val"))
    for batch in batches:
        evaluator.process(batch_keys, batch_detections)   # per image: Detections or (N, 2) point arrays
    evaluator.evaluate()   # {"cleval/hmean": ..., "cleval_global/...": ..., "iou/hmean": ...}
    evaluator.per_image()  # [{"image", "recall", "precision", "hmean", "detections", "words", counts...}, ...]

Training validation (`evaluate_detector`), the post-processing search (`detection.search`) and the
evaluate stage (`detection.evaluation`) all score through it, so their numbers cannot drift apart.
Detectron2-style: `reset`, then `process` any number of times, then `evaluate`.

No torch here: the search's worker processes import it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doclab.detection.postprocess import Detection
from doclab.metrics.detection import DetectionScores, ImageScore, PreparedImage

SplitGroundTruth = dict[str, tuple[list[np.ndarray], list[bool]]]


def _points(found: Detection | np.ndarray) -> np.ndarray:
    return found.points if isinstance(found, Detection) else found


class DetectionEvaluator:
    """Accumulates CLEval (competition mode) and IoU-0.5 over images; `evaluate` scores all seen since `reset`.

    CLEval's competition mode has no don't-care regions, so the GT ignore flags go to IoU only.

    Args:
        ground_truth: `load_ground_truth(data_dir, split)`: {key: (polygons (N_i, 2), ignore flags)},
            in the same pixels as the detections.
    """

    def __init__(self, ground_truth: SplitGroundTruth) -> None:
        self.ground_truth = ground_truth
        self._prepared: dict[str, PreparedImage] = {}  # per key, made on first use and kept across `reset`
        self.reset()

    def reset(self) -> None:
        """Forget all images seen so far."""
        self._scores = DetectionScores(mode="competition")

    def process(self, keys: Sequence[str], detections: Sequence[Sequence[Detection | np.ndarray]]) -> None:
        """Score a batch of images and add them to the running totals.

        Args:
            keys: image keys of `ground_truth`, one per image.
            detections: per image, its `Detection`s or (M_j, 2) point arrays, in the detector's order.
        Raises:
            ValueError: `keys` and `detections` differ in length, or non-finite coordinates.
            KeyError: a key without ground truth.
        """
        if len(keys) != len(detections):
            raise ValueError(f"DetectionEvaluator.process: {len(keys)} keys but {len(detections)} detection lists")
        for key, found in zip(keys, detections):
            self.add(key, self.score(key, found))

    def score(self, key: str, found: Sequence[Detection | np.ndarray]) -> ImageScore:
        """One image's counts for `found`, not added: what `process` adds, for callers that score
        the same image several times (the post-processing search). The image's GT is prepared
        once per evaluator.

        Raises:
            ValueError: non-finite coordinates.
            KeyError: a key without ground truth.
        """
        prepared = self._prepared.get(key)
        if prepared is None:
            polygons, ignore = self.ground_truth[key]
            prepared = self._prepared[key] = self._scores.prepare(polygons, gt_ignore=ignore)
        return self._scores.score(prepared, [_points(d) for d in found])

    def add(self, key: str, scored: ImageScore) -> None:
        """Add one image's counts (from `score`) to the running totals."""
        self._scores.add(key, scored)

    def evaluate(self) -> dict[str, float]:
        """`cleval/...`, `cleval_global/...` and `iou/...` metrics of every image processed, plain floats."""
        return {name: float(value) for name, value in self._scores.compute().items()}

    def per_image(self) -> list[dict]:
        """One row per image, in process order (`DetectionScores.per_image`).

        recall/precision/hmean are the image's CLEval (competition) scores; detections and words count
        its predicted and GT polygons; the CLEval character counts and IoU match counts follow.
        """
        return self._scores.per_image()
