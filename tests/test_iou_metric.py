"""IoU-0.5 metric (ICDAR 2015 rules): matching, don't-care handling, totals, and agreement
with a brute-force shapely implementation on the shared reference cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import shapely

from doclab.data.formats.ufo import read_ufo
from doclab.metrics.iou import IoUMetric

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cleval_reference"


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned quad, clockwise on screen from the top-left corner."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def test_perfect_match() -> None:
    metric = IoUMetric()
    gt = [box(0, 0, 100, 20), box(0, 40, 50, 60)]
    assert metric.update(gt, [g[::-1].copy() for g in gt]) == {"recall": 1.0, "precision": 1.0, "hmean": 1.0}
    assert metric.compute() == {"iou/recall": 1.0, "iou/precision": 1.0, "iou/hmean": 1.0}


def test_threshold_is_inclusive() -> None:
    gt = [box(0, 0, 100, 10)]
    assert IoUMetric().update(gt, [box(0, 0, 100, 5)])["recall"] == 1.0  # IoU exactly 0.5
    assert IoUMetric().update(gt, [box(0, 0, 100, 4.9)])["recall"] == 0.0


def test_matching_is_one_to_one_in_index_order() -> None:
    metric = IoUMetric()
    result = metric.update([box(0, 0, 100, 20)], [box(0, 0, 100, 20), box(1, 0, 100, 20)])
    assert result["recall"] == 1.0 and result["precision"] == 0.5
    # GT 0 takes detection 0 (first above the threshold), so GT 1 is left with nothing
    gt = [box(0, 0, 100, 20), box(0, 0, 90, 20)]
    assert IoUMetric().update(gt, [box(0, 0, 95, 20)])["recall"] == 0.5


def test_detection_inside_dont_care_is_ignored() -> None:
    gt = [box(0, 0, 100, 20), box(200, 0, 300, 20)]
    preds = [box(0, 0, 100, 20), box(210, 0, 290, 20)]
    by_text = IoUMetric().update(gt, preds, gt_texts=["WORD", "###"])
    by_flag = IoUMetric().update(gt, preds, gt_ignore=[False, True])
    assert by_text == by_flag == {"recall": 1.0, "precision": 1.0, "hmean": 1.0}
    # only 40% of this detection lies in the don't-care box: it stays, as a false positive
    assert IoUMetric().update(gt, [preds[0], box(260, 0, 360, 20)], gt_texts=["WORD", "###"])["precision"] == 0.5


def test_totals_are_summed_over_images() -> None:
    metric = IoUMetric()
    metric.update([box(0, 0, 100, 20)], [box(0, 0, 100, 20)])
    metric.update([box(0, 0, 100, 20), box(0, 50, 100, 70)], [box(300, 0, 400, 20)])
    assert metric.compute() == pytest.approx({"iou/recall": 1 / 3, "iou/precision": 0.5, "iou/hmean": 0.4})
    metric.reset()
    assert metric.compute() == {"iou/recall": 0.0, "iou/precision": 0.0, "iou/hmean": 0.0}


def test_empty_image_and_detection_cap() -> None:
    assert IoUMetric().update([], []) == {"recall": 1.0, "precision": 1.0, "hmean": 1.0}
    assert IoUMetric().update([], [box(0, 0, 10, 10)])["precision"] == 0.0
    far = [box(1000 + 3 * i, 1000, 1002 + 3 * i, 1010) for i in range(500)]
    assert IoUMetric().update([box(0, 0, 100, 20)], far + [box(0, 0, 100, 20)])["recall"] == 0.0


def test_non_finite_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="GT polygon #2"):
        IoUMetric().update([box(0, 0, 10, 10), box(0, 0, np.inf, 10)], [])


def _brute_force(gt: list, preds: list) -> tuple[int, int, int]:
    """(matched, GT, detections) by the ICDAR 2015 loop, with shapely geometry."""
    gt = [shapely.make_valid(shapely.Polygon(p)) for p in gt if len(p) >= 3]
    preds = [shapely.make_valid(shapely.Polygon(p)) for p in preds if len(p) >= 3]
    used_gt, used_det = set(), set()
    for i, g in enumerate(gt):
        for j, d in enumerate(preds):
            inter = g.intersection(d).area
            if i not in used_gt and j not in used_det and inter / (g.area + d.area - inter) >= 0.5:
                used_gt.add(i)
                used_det.add(j)
    return len(used_gt), len(gt), len(preds)


@pytest.mark.parametrize("case", ["shifted", "split", "merged", "noise", "polygon"])
def test_agrees_with_brute_force_on_reference_cases(case: str) -> None:
    if not (REFERENCE / case / "gt.json").exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    gt, pred = read_ufo(REFERENCE / case / "gt.json"), read_ufo(REFERENCE / case / "pred.json")
    metric, totals = IoUMetric(), np.zeros(3)
    for name, (_, words) in gt.items():
        detections = [w.points for w in pred[name][1]] if name in pred else []
        metric.update([w.points for w in words], detections)
        totals += _brute_force([w.points for w in words], detections)
    result = metric.compute()
    assert result["iou/recall"] == pytest.approx(totals[0] / totals[1], abs=1e-12)
    assert result["iou/precision"] == pytest.approx(totals[0] / totals[2], abs=1e-12)
