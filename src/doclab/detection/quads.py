"""DB quads in two steps, so a post-processing search can share the first among candidates.

    kernels = find_kernels(prob, thresh=0.3, max_candidates=1000, score_mode="fast", min_size=3.0, ratio=2.0)
    quads = unclip_kernels(kernels, ratio=1.5, min_size=3.0, box_thresh=0.3)
    quads.points  # (Q, 4, 2) float64 map pixels, clockwise on screen from the top-left-most corner

`find_kernels` depends on `thresh` only: binarise, contours, min-area boxes and their scores.
`unclip_kernels` depends on the unclip ratio: the unclipped boxes and the `min_size` check.
`box_thresh` only drops kernels by score, so a search may unclip with none and filter after:
the quads at box_thresh b are exactly those with score >= b, in the same order.
`db_postprocess` runs these same steps for one setting, so the search scores exactly what
evaluate and predict later detect.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from doclab.detection.offset import unclipped_rects


@dataclass(frozen=True)
class Kernels:
    """The shrunk text regions of one map at one threshold, in findContours order.

    Attributes:
        boxes: (K, 4, 2) float32 min-area boxes (cv2.boxPoints of cv2.minAreaRect).
        sides: (K,) the shortest side of each box.
        scores: (K,) mean probability inside (see `find_kernels`); NaN for kernels too small to
            reach `min_size` at the largest ratio asked for, which are never scored.
    """

    boxes: np.ndarray
    sides: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Quads:
    """Unclipped quads of one map.

    Attributes:
        points: (Q, 4, 2) float64 corners in map pixels, clockwise from the top-left-most one.
        scores: (Q,) their kernels' scores.
    """

    points: np.ndarray
    scores: np.ndarray


def cannot_reach(sides: np.ndarray, ratio: float, min_size: float) -> np.ndarray:
    """Whether kernels with these shortest sides stay under `min_size` once unclipped.

    Unclipping grows every width by 2 D' = 2 A r' / L <= r' * (shortest width) (a region
    of area A and perimeter L lies in a strip of width 2 A / L), so this drops specks
    before they are scored; the extra pixel covers fixed-point rounding.
    """
    return sides * (1 + ratio) + 1 < min_size


def mean_inside(prob: np.ndarray, polygon: np.ndarray) -> float:
    """Mean of `prob` (H, W) float32 over the pixels inside `polygon` (N, 2), computed on
    a mask the size of the polygon's bounding rectangle only (clipped to the map).

    Returns:
        The mean in [0, 1] for a probability map; 0 if no pixel centre is inside.
    """
    polygon = np.round(polygon.reshape(-1, 2)).astype(np.int32)
    x, y, w, h = cv2.boundingRect(polygon)
    return _mean_in_rect(prob, polygon, x, y, x + w, y + h)


def _mean_in_rect(prob: np.ndarray, polygon: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> float:
    """`mean_inside` of an int32 polygon whose bounding rectangle is [x0, x1) x [y0, y1)."""
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, prob.shape[1]), min(y1, prob.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0.0
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(mask, [polygon], 1, offset=(-x0, -y0))
    return cv2.mean(prob[y0:y1, x0:x1], mask)[0]


def _box_scores(prob: np.ndarray, boxes: np.ndarray) -> list[float]:
    """`mean_inside` of each (4, 2) box, rounding and bounding rectangles done for all at once."""
    corners = np.round(boxes).astype(np.int32)
    low = np.maximum(corners.min(axis=1), 0)  # cv2.boundingRect of integer points, clipped to the map
    high = np.minimum(corners.max(axis=1) + 1, [prob.shape[1], prob.shape[0]])
    scores = []
    for box, (x0, y0), (x1, y1) in zip(corners, low.tolist(), high.tolist()):
        if x1 <= x0 or y1 <= y0:
            scores.append(0.0)
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [box], 1, offset=(-x0, -y0))
        scores.append(cv2.mean(prob[y0:y1, x0:x1], mask)[0])
    return scores


def find_kernels(prob: np.ndarray, thresh: float, max_candidates: int, score_mode: str, min_size: float,
                 ratio: float) -> Kernels:
    """Binarise at `thresh` and describe each region: min-area box, shortest side, score.

    Args:
        prob: (H, W) float32 probabilities (the image's part of the map).
        thresh: binarisation threshold (pixels > thresh are text).
        max_candidates: regions looked at, in findContours order.
        score_mode: "fast" averages over the box, "slow" over the exact region outline.
        min_size, ratio: kernels that cannot reach `min_size` unclipped by `ratio` (the largest
            ratio that will be asked for) are not scored.
    Returns:
        The `Kernels`.
    """
    bitmap = (prob > thresh).view(np.uint8)
    contours = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)[0][:max_candidates]
    rects = [cv2.minAreaRect(contour) for contour in contours]
    if not rects:
        return Kernels(np.zeros((0, 4, 2), np.float32), np.zeros(0), np.zeros(0))
    sides = np.array([min(rect[1]) for rect in rects])
    boxes = np.stack([cv2.boxPoints(rect) for rect in rects])
    scores = np.full(len(rects), np.nan)
    scored = np.flatnonzero(~cannot_reach(sides, ratio, min_size))
    if score_mode == "slow":
        scores[scored] = [mean_inside(prob, contours[i]) for i in scored]
    else:
        scores[scored] = _box_scores(prob, boxes[scored])
    return Kernels(boxes, sides, scores)


def clockwise_quads(points: np.ndarray) -> np.ndarray:
    """`postprocess.clockwise_from_top_left` of each (4, 2) quad of (Q, 4, 2) points, as float64."""
    points = np.asarray(points, np.float64).reshape(-1, 4, 2)
    following = np.roll(points, -1, axis=1)
    twice_area = (points[..., 0] * following[..., 1] - following[..., 0] * points[..., 1]).sum(axis=1)
    points = np.where((twice_area < 0)[:, None, None], points[:, ::-1], points)
    first = np.lexsort((points[..., 1], points.sum(axis=2)), axis=1)[:, :1]
    order = (first + np.arange(4)) % 4
    return np.take_along_axis(points, order[..., None], axis=1)


def unclip_kernels(kernels: Kernels, ratio: float, min_size: float, box_thresh: float = -np.inf) -> Quads:
    """The kernels scoring >= `box_thresh`, unclipped by `ratio`, whose min-area rectangle keeps
    both sides >= `min_size` (map pixels).

    Returns:
        The `Quads`, in kernel order.
    """
    return unclip_many([kernels], ratio, min_size, box_thresh)[0]


def unclip_many(kernels: Sequence[Kernels], ratio: float, min_size: float, box_thresh: float = -np.inf) -> list[Quads]:
    """`unclip_kernels` of several maps' kernels, the offsets computed for all of them at once."""
    keep = [np.flatnonzero(~cannot_reach(k.sides, ratio, min_size) & (k.scores >= box_thresh)) for k in kernels]
    rects = unclipped_rects(np.concatenate([k.boxes[kept] for k, kept in zip(kernels, keep)]), ratio)
    found, start = [], 0
    for k, kept in zip(kernels, keep):
        mine, start = rects[start:start + len(kept)], start + len(kept)
        big = [i for i, rect in enumerate(mine) if rect is not None and min(rect[1]) >= min_size]
        if not big:
            found.append(Quads(np.zeros((0, 4, 2)), np.zeros(0)))
            continue
        points = clockwise_quads(np.stack([cv2.boxPoints(mine[i]) for i in big]))
        found.append(Quads(points, k.scores[kept[big]]))
    return found


def image_region(prob: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    """The float32 part of a letterboxed (H, W) map that covers its image of (height, width) `size`:
    the padding holds no text, so only the top-left block the image was resized into is searched."""
    height = min(prob.shape[0], math.ceil(size[0] * scale))
    width = min(prob.shape[1], math.ceil(size[1] * scale))
    return np.ascontiguousarray(prob[:height, :width], dtype=np.float32)


def to_original(points: np.ndarray, scale: float, size: tuple[int, int]) -> np.ndarray:
    """(Q, N, 2) map points -> float32 original-image pixels, clipped to the (height, width) `size`."""
    points = points / scale
    np.clip(points[..., 0], 0, size[1], out=points[..., 0])
    np.clip(points[..., 1], 0, size[0], out=points[..., 1])
    return points.astype(np.float32)
