"""Detection on the test split: tuned post-processing, CLEval + IoU, per-image scores, submission rows.

    result = evaluate_detection(params, Path("data/processed"), Path("models/detector.pt"), post)
    result.metrics["cleval/hmean"], result.per_image[0], result.box_thresh_curve
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doclab.config import Params, PostprocessParams
from doclab.detection.dataset import load_ground_truth
from doclab.detection.evaluator import DetectionEvaluator
from doclab.detection.maps import cache_split_maps
from doclab.detection.postprocess import Detection, db_postprocess
from doclab.detection.search import MapCache, score_box_threshes

BOX_THRESH_CURVE = tuple(round(0.1 * step, 1) for step in range(1, 10))


@dataclass(frozen=True)
class DetectionResult:
    """One split's detection results.

    Attributes:
        metrics: `cleval/...`, `cleval_global/...` and `iou/...` over the split.
        per_image: one {"image", "recall", "precision", "hmean", "detections", "words"} row per image.
        detections: per image id, its detections (processed-image pixels).
        ground_truth: per image id, (GT polygons, don't-care flags).
        box_thresh_curve: rows {"box_thresh", "cleval_hmean"}: the score with only box_thresh changed.
    """

    metrics: dict[str, float]
    per_image: list[dict]
    detections: dict[str, list[Detection]]
    ground_truth: dict[str, tuple[list[np.ndarray], list[bool]]]
    box_thresh_curve: list[dict]


def score_images(cache: MapCache, ground_truth: dict, post: PostprocessParams
                 ) -> tuple[dict[str, float], list[dict], dict[str, list[Detection]]]:
    """Post-process every cached map and score it, keeping the per-image results.

    Returns:
        (split metrics, per-image rows, detections per image id); metrics and rows are
        `DetectionEvaluator.evaluate()` and `.per_image()`.
    """
    detections = db_postprocess(cache.maps, post, scales=cache.scales, original_sizes=cache.original_sizes)
    evaluator = DetectionEvaluator(ground_truth)
    evaluator.process(cache.keys, detections)
    found = dict(zip(cache.keys, detections))
    metrics, rows = evaluator.evaluate(), evaluator.per_image()
    return metrics, rows, found


def evaluate_detection(params: Params, data_dir: Path, detector_path: Path, post: PostprocessParams,
                       split: str = "test") -> DetectionResult:
    """Score the trained detector with the given post-processing on one split.

    Args:
        params: image_size, device, batch_size and detector settings for inference.
        data_dir: the processed folder.
        detector_path: models/detector.pt.
        post: the tuned post-processing (models/postprocess.json).
        split: the split to score.
    Returns:
        The metrics, per-image rows, detections and the box_thresh curve.
    """
    ground_truth = load_ground_truth(data_dir, split)
    with cache_split_maps(params, data_dir, detector_path, split) as cache:
        metrics, rows, found = score_images(cache, ground_truth, post)
        scored = score_box_threshes(cache, ground_truth, post, BOX_THRESH_CURVE)
    curve = [{"box_thresh": b, "cleval_hmean": s["cleval/hmean"]} for b, s in zip(BOX_THRESH_CURVE, scored)]
    return DetectionResult(metrics, rows, found, ground_truth, curve)
