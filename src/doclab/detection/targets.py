"""DBNet training targets: shrunk text kernels and the threshold (border) map.

Liao et al., "Real-time Scene Text Detection with Differentiable Binarization"
(AAAI 2020), section "Label generation": each text polygon G is shrunk by
D = A (1 - r^2) / L (A area, L perimeter, r shrink ratio) to give the probability
map's kernel G_s, and dilated by the same D to give G_d; inside G_d the threshold
map holds 1 - min(dist(pixel, edges of G) / D, 1), rescaled to [thresh_min, thresh_max].

Coordinates are continuous pixel coordinates with pixel centres at integers (the
convention of cv2.fillPoly). Runs in DataLoader workers: numpy, OpenCV and pyclipper only.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np
import pyclipper

from doclab.detection.borders import draw_borders, polygon_edges

# Polygons go to pyclipper and cv2.fillPoly in fixed point with this many fractional
# bits: pyclipper works on integers (it truncates floats) and fillPoly's `shift` draws
# sub-pixel vertices, so small text is not biased by up to a pixel towards the origin.
FRACTION_BITS = 3
_ONE = 1 << FRACTION_BITS


def _draw_kernels(prob_map: np.ndarray, prob_mask: np.ndarray, fixed_points: list[np.ndarray],
                  distances: np.ndarray) -> list[int]:
    """Fill each polygon's kernel (shrunk by its distance) into `prob_map`; blank the rest out of `prob_mask`.

    Returns:
        Indices of the polygons that kept a kernel (NaN distance or nothing left: blanked).
    """
    kept = []
    for index, (fixed, distance) in enumerate(zip(fixed_points, distances.tolist())):
        kernel = []
        if not math.isnan(distance):
            offsetter = pyclipper.PyclipperOffset(arc_tolerance=0.25 * _ONE)
            offsetter.AddPath(fixed.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
            kernel = offsetter.Execute(-distance * _ONE)
        if not kernel:
            cv2.fillPoly(prob_mask, [fixed], 0.0, shift=FRACTION_BITS)
            continue
        cv2.fillPoly(prob_map, [np.asarray(ring, np.int32) for ring in kernel], 1.0, shift=FRACTION_BITS)
        kept.append(index)
    return kept


def make_db_targets(
    polygons: Sequence[np.ndarray],
    ignore: Sequence[bool],
    height: int,
    width: int,
    *,
    shrink_ratio: float = 0.4,
    thresh_min: float = 0.3,
    thresh_max: float = 0.7,
    min_text_size: float = 3.0,
) -> dict[str, np.ndarray]:
    """Probability and threshold targets for one image.

    A polygon that is don't-care, has zero area, has a min-area-rectangle short side
    below `min_text_size`, or shrinks to nothing is blanked out of `prob_mask` (its
    filled outline set to 0) and contributes to no other map, as in DBNet.

    Args:
        polygons: text polygons, each (N >= 3, 2) float x, y in pixels of the (resized,
            augmented) image; parts outside the image are clipped.
        ignore: one flag per polygon, True for don't-care text ("###").
        height: map height H in pixels.
        width: map width W in pixels.
        shrink_ratio: r in D = A (1 - r^2) / L.
        thresh_min: threshold-map value away from text borders.
        thresh_max: threshold-map value on text borders.
        min_text_size: shortest allowed side (pixels) of a polygon's min-area rectangle.
    Returns:
        float32 (H, W) arrays: `prob_map` (1 on shrunk kernels), `prob_mask` (0 on
        ignored text), `thresh_map` (in [thresh_min, thresh_max]) and `thresh_mask`
        (1 inside the dilated polygons). They are views of one (4, H, W) block: one
        large allocation is several times cheaper than four.
    """
    if len(polygons) != len(ignore):
        raise ValueError(f"got {len(polygons)} polygons but {len(ignore)} ignore flags")
    block = np.empty((4, height, width), np.float32)
    prob_map, prob_mask, thresh_map, thresh_mask = block
    block[0::3] = 0.0
    prob_mask.fill(1.0)
    thresh_map.fill(thresh_min)
    points = [np.asarray(p, np.float64).reshape(-1, 2) for p in polygons]
    short = [i for i, p in enumerate(points) if len(p) < 3]
    if short:
        raise ValueError(f"polygon {short[0]} has {len(points[short[0]])} points, expected at least 3")
    distances = shrink_distances(points, shrink_ratio, min_text_size)
    distances[np.asarray(ignore, bool)] = np.nan
    fixed_points = _fixed_point(points)
    kept = _draw_kernels(prob_map, prob_mask, fixed_points, distances)
    if kept:
        for i in kept:
            cv2.fillPoly(thresh_mask, [fixed_points[i]], 1.0, shift=FRACTION_BITS)
        draw_borders(thresh_map, [points[i] for i in kept], distances[kept], thresh_min, thresh_max)
        # G_d is the polygon (filled above) plus every pixel closer than D to its outline,
        # i.e. where the threshold map rose above its float32 thresh_min.
        floor = float(np.float32(thresh_min))
        cv2.max(thresh_mask, cv2.threshold(thresh_map, floor, 1.0, cv2.THRESH_BINARY)[1], dst=thresh_mask)
    return {"prob_map": prob_map, "prob_mask": prob_mask, "thresh_map": thresh_map, "thresh_mask": thresh_mask}


def shrink_distances(polygons: Sequence[np.ndarray], shrink_ratio: float, min_text_size: float) -> np.ndarray:
    """The DBNet offset D = A (1 - r^2) / L of each polygon, NaN where it is too small.

    Args:
        polygons: (N_i >= 3, 2) float64 x, y per polygon.
        shrink_ratio: r.
        min_text_size: shortest allowed side of a polygon's min-area rectangle.
    Returns:
        (P,) float64 D in pixels; NaN for zero area or a min-area rectangle short side
        below `min_text_size`.
    """
    distances = np.full(len(polygons), np.nan)
    if not polygons:
        return distances
    starts, ends, first = polygon_edges(list(polygons))
    area = np.abs(np.add.reduceat(starts[:, 0] * ends[:, 1] - ends[:, 0] * starts[:, 1], first)) / 2
    perimeter = np.add.reduceat(np.hypot(*(ends - starts).T), first)
    valid = area > 0
    # A polygon of area A and perimeter L lies in no strip narrower than 2A / L, so its
    # min-area rectangle's short side is at least that: only small ones need the rectangle.
    for i in np.flatnonzero(valid & (2 * area < min_text_size * perimeter)):
        valid[i] = min(cv2.minAreaRect(polygons[i].astype(np.float32))[1]) >= min_text_size
    distances[valid] = area[valid] * (1.0 - shrink_ratio**2) / perimeter[valid]
    return distances


def _fixed_point(polygons: list[np.ndarray]) -> list[np.ndarray]:
    """(N_i, 2) int32 copies in units of 1 / 2^FRACTION_BITS pixel, converted all at once."""
    if not polygons:
        return []
    fixed = np.round(np.concatenate(polygons) * _ONE).astype(np.int32)
    return np.split(fixed, np.cumsum([len(p) for p in polygons])[:-1])
