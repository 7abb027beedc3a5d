"""DB post-processing on hand-made maps, and the targets -> post-processing round trip."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import shapely

from doclab.config import PostprocessParams
from doclab.detection.postprocess import Detection, clockwise_from_top_left, db_postprocess
from doclab.detection.targets import make_db_targets

PARAMS = PostprocessParams(box_thresh=0.6)  # thresh 0.3, box_unclip_ratio 1.5, min_size 3, quads


def blob_map(*blobs, shape=(100, 200), value=0.9):
    """(1, H, W) float32 map with `value` on each (y0, y1, x0, x1) slice."""
    prob = np.zeros((1, *shape), np.float32)
    for y0, y1, x0, x1 in blobs:
        prob[0, y0:y1, x0:x1] = value
    return prob


def expected_unclip(x0, y0, x1, y1, ratio=1.5):
    """The kernel's contour runs through the outer pixel centres: (x0..x1-1, y0..y1-1)."""
    w, h = x1 - 1 - x0, y1 - 1 - y0
    d = w * h * ratio / (2 * (w + h))
    return np.array([[x0 - d, y0 - d], [x1 - 1 + d, y0 - d], [x1 - 1 + d, y1 - 1 + d], [x0 - d, y1 - 1 + d]])


def iou(a, b):
    a, b = shapely.Polygon(a), shapely.Polygon(b)
    return a.intersection(b).area / a.union(b).area


def test_one_rectangle_gives_one_unclipped_clockwise_quad():
    (detections,) = db_postprocess(blob_map((40, 60, 50, 150)), PARAMS)
    assert len(detections) == 1
    detection = detections[0]
    assert isinstance(detection, Detection) and detection.points.dtype == np.float32
    np.testing.assert_allclose(detection.points, expected_unclip(50, 40, 150, 60), atol=1.0)
    assert detection.score == pytest.approx(0.9)


def test_two_blobs_two_detections():
    (detections,) = db_postprocess(blob_map((10, 30, 20, 80), (50, 80, 100, 180)), PARAMS)
    assert len(detections) == 2
    centres = sorted(tuple(d.points.mean(0)) for d in detections)
    np.testing.assert_allclose(centres, [(49.5, 19.5), (139.5, 64.5)], atol=0.5)


def test_below_box_thresh_empty_or_tiny_gives_nothing():
    assert db_postprocess(blob_map((40, 60, 50, 150), value=0.5), PARAMS) == [[]]
    assert db_postprocess(blob_map((40, 42, 50, 52)), PARAMS) == [[]]  # 2 x 2 pixels < min_size 3
    assert db_postprocess(np.zeros((2, 64, 64), np.float16), PARAMS) == [[], []]


def test_min_size_applies_to_the_unclipped_box():
    thin_line = blob_map((20, 22, 20, 180), shape=(40, 200))  # kernel outline 1 px tall
    assert db_postprocess(thin_line, PARAMS) == [[]]  # unclipped by 1.5: 2.5 px < 3
    (detections,) = db_postprocess(thin_line, dataclasses.replace(PARAMS, box_unclip_ratio=3.0))
    assert len(detections) == 1  # unclipped by 3: 4 px


def test_score_is_the_mean_probability_inside():
    prob = blob_map((40, 60, 50, 150), value=0.7)
    prob[0, 40:60, 100:150] = 0.9
    (detections,) = db_postprocess(prob, PARAMS)
    assert detections[0].score == pytest.approx(0.8, abs=1e-3)
    assert 0.0 <= detections[0].score <= 1.0


def test_slow_score_follows_the_contour_fast_the_box():
    prob = blob_map((20, 80, 20, 40))  # an L: vertical bar ...
    prob[0, 60:80, 40:120] = 0.9  # ... and foot
    fast = db_postprocess(prob, dataclasses.replace(PARAMS, box_thresh=0.0))[0][0].score
    slow = db_postprocess(prob, dataclasses.replace(PARAMS, box_thresh=0.0, score_mode="slow"))[0][0].score
    assert slow == pytest.approx(0.9, abs=0.01) and fast < 0.6


def test_polygon_mode_returns_a_polygon_covering_the_region():
    prob = blob_map((20, 80, 20, 40))
    prob[0, 60:80, 40:120] = 0.9
    (detections,) = db_postprocess(prob, dataclasses.replace(PARAMS, polygon=True))
    assert len(detections) == 1 and len(detections[0].points) >= 4
    polygon = shapely.Polygon(detections[0].points)
    assert polygon.is_valid and polygon.contains(shapely.Polygon([(20, 20), (39, 20), (39, 79), (20, 79)]))
    assert polygon.area < 2 * 60 * 100  # an L, not its bounding box


def test_letterbox_scale_and_original_size_map_back_to_the_original():
    prob = blob_map((20, 40, 20, 60), (20, 40, 160, 190))  # the second blob is in the padding
    (detections,) = db_postprocess(prob, PARAMS, scales=[0.5], original_sizes=[(200, 300)])
    assert len(detections) == 1  # 300 * 0.5 = 150 map columns hold the image
    np.testing.assert_allclose(detections[0].points, expected_unclip(20, 20, 60, 40) / 0.5, atol=2.0)


def test_points_are_clipped_to_the_original_image():
    (detections,) = db_postprocess(blob_map((0, 30, 0, 60)), PARAMS, scales=[1.0], original_sizes=[(100, 200)])
    points = detections[0].points
    assert points.min() == 0.0 and (points[:, 0] <= 200).all() and (points[:, 1] <= 100).all()


def test_max_candidates_limits_the_count():
    prob = blob_map(*[(10, 30, x, x + 10) for x in range(0, 200, 20)])
    assert len(db_postprocess(prob, PARAMS)[0]) == 10
    assert len(db_postprocess(prob, dataclasses.replace(PARAMS, max_candidates=3))[0]) == 3


def test_shrunk_targets_unclip_back_to_the_original_quads():
    a = np.deg2rad(10)
    rotation = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    quads = [
        np.array([[20, 20], [100, 20], [100, 60], [20, 60]], np.float64),
        np.array([[-30, -20], [30, -20], [30, 20], [-30, 20]]) @ rotation + [170, 100],
        np.array([[40, 110], [110, 110], [110, 150], [40, 150]], np.float64),
    ]
    targets = make_db_targets(quads, [False] * 3, 180, 240)
    (detections,) = db_postprocess(targets["prob_map"][None], PARAMS)
    assert len(detections) == 3
    for quad in quads:
        assert max(iou(quad, d.points) for d in detections) > 0.8


def test_clockwise_from_top_left_reorders_any_start_and_direction():
    square = np.array([[0, 0], [10, 0], [10, 5], [0, 5]], np.float64)
    np.testing.assert_array_equal(clockwise_from_top_left(square[::-1]), square)
    np.testing.assert_array_equal(clockwise_from_top_left(np.roll(square, 2, axis=0)), square)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="expected"):
        db_postprocess(np.zeros((8, 8), np.float32), PARAMS)
    with pytest.raises(ValueError, match="scales"):
        db_postprocess(np.zeros((2, 8, 8), np.float32), PARAMS, scales=[1.0])
