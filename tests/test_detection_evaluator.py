"""DetectionEvaluator: reset, batching and agreement with the metrics it wraps."""
from __future__ import annotations

import numpy as np
import pytest

from doclab.detection.evaluator import DetectionEvaluator
from doclab.detection.postprocess import Detection
from doclab.metrics.cleval.metric import CLEvalMetric
from doclab.metrics.iou import IoUMetric


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


GROUND_TRUTH = {
    "a": ([box(0, 0, 40, 10), box(0, 20, 30, 30)], [False, False]),
    "b": ([box(5, 5, 50, 15), box(60, 5, 90, 15)], [False, True]),  # the second is don't-care
    "c": ([box(10, 10, 20, 40)], [False]),
}
DETECTIONS = {
    "a": [box(1, 0, 40, 11), box(0, 22, 15, 30), box(16, 22, 30, 30)],  # a hit and a split
    "b": [box(5, 5, 90, 15), box(61, 5, 89, 15)],  # a merge over the don't-care box, and a detection inside it
    "c": [],
}
KEYS = list(GROUND_TRUTH)


def evaluated(batches: list[list[str]], as_detections: bool = False) -> DetectionEvaluator:
    evaluator = DetectionEvaluator(GROUND_TRUTH)
    for keys in batches:
        found = [[Detection(points, 0.9) for points in DETECTIONS[k]] if as_detections else DETECTIONS[k]
                 for k in keys]
        evaluator.process(keys, found)
    return evaluator


def test_evaluate_agrees_with_the_metrics_called_directly():
    cleval, iou = CLEvalMetric(mode="competition"), IoUMetric()
    rows = []
    for key in KEYS:
        polygons, ignore = GROUND_TRUTH[key]
        scores = cleval.update(polygons, DETECTIONS[key])
        iou.update(polygons, DETECTIONS[key], gt_ignore=ignore)
        rows.append(scores)
    expected = {name: float(value) for name, value in {**cleval.compute(), **iou.compute()}.items()}
    evaluator = evaluated([KEYS])
    assert evaluator.evaluate() == expected
    assert all(type(value) is float for value in evaluator.evaluate().values())
    assert {"cleval/hmean", "cleval_global/hmean", "cleval/num_images", "iou/hmean"} <= set(expected)
    assert 0.0 < expected["cleval/hmean"] < 1.0 and expected["cleval/num_images"] == 3.0
    per_image = evaluator.per_image()
    assert [row["image"] for row in per_image] == KEYS
    assert [row["detections"] for row in per_image] == [3, 2, 0]
    assert [row["words"] for row in per_image] == [2, 2, 1]
    assert [{k: row[k] for k in ("recall", "precision", "hmean")} for row in per_image] == rows


def test_detections_and_point_arrays_score_the_same():
    assert evaluated([KEYS], as_detections=True).evaluate() == evaluated([KEYS]).evaluate()
    assert evaluated([KEYS], as_detections=True).per_image() == evaluated([KEYS]).per_image()


def test_two_process_calls_equal_one_combined_call():
    one, two = evaluated([KEYS]), evaluated([KEYS[:1], KEYS[1:]])
    assert two.evaluate() == one.evaluate()
    assert two.per_image() == one.per_image()


def test_reset_clears_everything_seen():
    evaluator = evaluated([KEYS])
    evaluator.reset()
    assert evaluator.per_image() == []
    empty = evaluator.evaluate()
    assert empty["cleval/num_images"] == 0.0 and empty["iou/hmean"] == 0.0 and empty["cleval/hmean"] == 0.0
    evaluator.process(["c"], [DETECTIONS["c"]])
    assert evaluator.evaluate() == evaluated([["c"]]).evaluate()


def test_mismatched_lengths_and_unknown_keys_are_errors():
    evaluator = DetectionEvaluator(GROUND_TRUTH)
    with pytest.raises(ValueError, match="2 keys but 1"):
        evaluator.process(["a", "b"], [[]])
    with pytest.raises(KeyError):
        evaluator.process(["missing"], [[]])
