"""The vectorised quad path (detection.quads, detection.offset) against one-quad-at-a-time pyclipper code."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from doclab.config import PostprocessParams
from doclab.detection import offset
from doclab.detection.offset import unclip, unclipped_rects
from doclab.detection.postprocess import clockwise_from_top_left, db_postprocess, mean_inside
from doclab.detection.quads import clockwise_quads


def random_boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """(count, 4, 2) float32 cv2.boxPoints of rotated rectangles: words, thin slivers and specks, some off the map."""
    widths = rng.uniform(0.5, 200, count) * rng.choice([1.0, 0.05, 0.01], count)
    rects = zip(rng.uniform(-5, 520, (count, 2)).tolist(), zip(widths.tolist(), rng.uniform(0.5, 30, count).tolist()),
                rng.uniform(-90, 90, count).tolist())
    return np.stack([cv2.boxPoints((tuple(c), s, a)) for c, s, a in rects])


def pyclipper_rect(box: np.ndarray, ratio: float):
    expanded = unclip(box, ratio)
    return None if expanded is None else cv2.minAreaRect(expanded.astype(np.float32))


@pytest.mark.parametrize("ratio", [0.2, 1.3, 1.5, 2.0, 3.0])
def test_unclipped_rects_are_bit_identical_to_pyclipper_and_mostly_skip_it(ratio, monkeypatch):
    boxes = random_boxes(np.random.default_rng(int(ratio * 10)), 3000)
    fallbacks = []
    monkeypatch.setattr(offset, "unclip", lambda box, r: fallbacks.append(1) or unclip(box, r))
    rects = unclipped_rects(boxes, ratio)
    expected = [pyclipper_rect(box, ratio) for box in boxes]
    assert rects == expected  # exact tuples of floats, None where pyclipper gives no ring
    assert any(rect is None for rect in expected)
    assert len(fallbacks) < (0.4 if ratio < 1 else 0.1) * len(boxes)  # the closed form does the work


def test_degenerate_quads_give_what_pyclipper_gives():
    boxes = np.array([np.zeros((4, 2)), [[0, 0], [5, 0], [10, 0], [0, 0]], [[1, 1], [1, 1], [3, 1], [3, 4]]], np.float32)
    assert unclipped_rects(boxes, 1.5) == [pyclipper_rect(box, 1.5) for box in boxes]
    assert unclipped_rects(np.zeros((0, 4, 2), np.float32), 1.5) == []


def test_clockwise_quads_reorder_like_one_at_a_time():
    boxes = random_boxes(np.random.default_rng(0), 500).astype(np.float64)
    boxes[::2] = boxes[::2, ::-1]  # both directions
    boxes = np.roll(boxes, 1, axis=1)
    expected = np.stack([clockwise_from_top_left(box) for box in boxes])
    np.testing.assert_array_equal(clockwise_quads(boxes), expected)


def text_like_map(seed: int, size: int = 256, regions: int = 40) -> np.ndarray:
    """(size, size) float32: blurred rotated word boxes, some unsure, some touching, plus noise specks."""
    rng = np.random.default_rng(seed)
    prob = np.zeros((size, size), np.float32)
    for _ in range(regions):
        rect = (tuple(rng.uniform(0, size, 2)), (rng.uniform(4, 80), rng.uniform(3, 16)), rng.uniform(-10, 10))
        cv2.fillPoly(prob, [np.round(cv2.boxPoints(rect)).astype(np.int32)], float(rng.uniform(0.3, 0.95)))
    prob = cv2.GaussianBlur(prob, (0, 0), 1.2)
    return prob + rng.uniform(0, 0.35, prob.shape).astype(np.float32) * (rng.random(prob.shape) < 0.02)


def one_at_a_time(prob: np.ndarray, params: PostprocessParams, scale: float) -> list[tuple[np.ndarray, float]]:
    """The quad path contour by contour, with pyclipper (the code the vectorised path replaced)."""
    bitmap = (prob > params.thresh).view(np.uint8)
    found = []
    for contour in cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)[0][:params.max_candidates]:
        rect = cv2.minAreaRect(contour)
        if min(rect[1]) * (1 + params.box_unclip_ratio) + 1 < params.min_size:
            continue
        box = cv2.boxPoints(rect)
        score = mean_inside(prob, contour if params.score_mode == "slow" else box)
        expanded = unclip(box, params.box_unclip_ratio) if score >= params.box_thresh else None
        if expanded is None:
            continue
        rect = cv2.minAreaRect(expanded.astype(np.float32))
        if min(rect[1]) >= params.min_size:
            points = np.clip(clockwise_from_top_left(cv2.boxPoints(rect)) / scale, 0, prob.shape[0] / scale)
            found.append((points.astype(np.float32), score))
    return found


@pytest.mark.parametrize("score_mode", ["fast", "slow"], ids=["box-score", "contour-score"])
def test_db_postprocess_quads_equal_the_one_at_a_time_path(score_mode):
    maps = np.stack([text_like_map(seed) for seed in range(3)])
    rng = np.random.default_rng(1)
    for _ in range(4):
        params = PostprocessParams(thresh=float(rng.uniform(0.2, 0.5)), box_thresh=float(rng.uniform(0.0, 0.6)),
                                   box_unclip_ratio=float(rng.uniform(0.5, 3.0)), score_mode=score_mode)
        detections = db_postprocess(maps, params, scales=[0.5] * 3, original_sizes=[(512, 512)] * 3)
        for prob, found in zip(maps, detections):
            expected = one_at_a_time(prob, params, 0.5)
            assert len(found) == len(expected) > 0
            for detection, (points, score) in zip(found, expected):
                np.testing.assert_array_equal(detection.points, points)
                assert detection.score == score and isinstance(detection.score, float)


def test_box_thresh_is_a_filter_on_the_box_thresh_zero_quads():
    maps = np.stack([text_like_map(7)])
    everything = db_postprocess(maps, PostprocessParams(box_thresh=0.0))[0]
    strict = db_postprocess(maps, dataclasses.replace(PostprocessParams(), box_thresh=0.5))[0]
    kept = [d for d in everything if d.score >= 0.5]
    assert 0 < len(strict) == len(kept) < len(everything)
    assert all(np.array_equal(a.points, b.points) for a, b in zip(strict, kept))
