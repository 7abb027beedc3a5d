"""DB post-processing: probability maps -> scored text quads or polygons.

Liao et al., "Real-time Scene Text Detection with Differentiable Binarization" (AAAI
2020), section "Optimization", inference: binarise the probability map at a fixed
threshold, take each connected region as a shrunk text kernel, and dilate it back by the
unclip offset D' = A' * r' / L' (A' area, L' perimeter, r' unclip ratio). On the hard
label kernels (shrink D = A (1 - r^2) / L, r = 0.4) r' = 1.5 restores roughly square
text; a long line's kernel is thin (about 0.16 of its height) and needs r' near 3, so r'
is worth tuning on the model's actual maps.

Coordinates: x, y continuous pixels with pixel centres at integers, as in the targets.
numpy, OpenCV and pyclipper only (no torch), so it runs anywhere, also in the tuning stage
on cached maps. Quads go through `detection.quads`, in the steps the tuning search shares
among its candidates.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from doclab.config import PostprocessParams
from doclab.detection.offset import unclip
from doclab.detection.quads import cannot_reach, find_kernels, image_region, mean_inside, to_original, unclip_kernels

__all__ = ["Detection", "clockwise_from_top_left", "db_postprocess", "mean_inside", "unclip"]


@dataclass(frozen=True)
class Detection:
    """One detected text region.

    Attributes:
        points: (N, 2) float32 x, y in original-image pixels, clockwise (on screen) from
            the top-left-most point; N = 4 for quads.
        score: mean probability inside the candidate region, in [0, 1].
    """

    points: np.ndarray
    score: float


def db_postprocess(
    prob_maps: np.ndarray,
    params: PostprocessParams,
    *,
    scales: Sequence[float] | None = None,
    original_sizes: Sequence[tuple[int, int]] | None = None,
) -> list[list[Detection]]:
    """Detections for a batch of letterboxed probability maps.

    Args:
        prob_maps: (B, H, W) float16/float32 probabilities of the letterboxed inputs: each
            image resized by its scale (aspect kept) and padded at the right and bottom.
        params: `thresh` binarises the map; `max_candidates` caps the regions looked at;
            a region whose mean probability is under `box_thresh`, or whose unclipped
            min-area rectangle has a side under `min_size` (map pixels), is dropped;
            `score_mode` "fast" averages over the min-area quad (quads) or the
            simplified polygon (polygons), "slow" over the exact region outline;
            `polygon` picks min-area quads unclipped by `box_unclip_ratio` or polygons
            (approxPolyDP, epsilon 0.2 % of the perimeter) unclipped by `polygon_unclip_ratio`.
        scales: per image, original -> map scale factor (map = original * scale). None:
            1 for every image (points stay in map coordinates).
        original_sizes: per image, (height, width) of the original image, in that order.
            None: the map size. Only the map region covering the image is searched, and
            points are clipped to x in [0, width], y in [0, height].
    Returns:
        Per image, its detections in findContours order (at most `max_candidates`).
    """
    prob_maps = np.asarray(prob_maps)
    if prob_maps.ndim != 3:
        raise ValueError(f"prob_maps: expected (B, H, W), got shape {prob_maps.shape}")
    batch, height, width = prob_maps.shape
    scales = [1.0] * batch if scales is None else list(scales)
    original_sizes = [(height, width)] * batch if original_sizes is None else list(original_sizes)
    if len(scales) != batch or len(original_sizes) != batch:
        raise ValueError(f"got {batch} maps, {len(scales)} scales and {len(original_sizes)} original sizes")
    return [_detect(prob, params, scale, size) for prob, scale, size in zip(prob_maps, scales, original_sizes)]


def _detect(prob: np.ndarray, params: PostprocessParams, scale: float, size: tuple[int, int]) -> list[Detection]:
    """Detections in one (H, W) map; see `db_postprocess`."""
    prob = image_region(prob, scale, size)
    if not params.polygon:
        kernels = find_kernels(prob, params.thresh, params.max_candidates, params.score_mode, params.min_size,
                               params.box_unclip_ratio)
        quads = unclip_kernels(kernels, params.box_unclip_ratio, params.min_size, params.box_thresh)
        return [Detection(points, score)
                for points, score in zip(to_original(quads.points, scale, size), quads.scores.tolist())]
    bitmap = (prob > params.thresh).view(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    detections = []
    for contour in contours[: params.max_candidates]:
        found = _polygon_candidate(prob, contour, params)
        if found is not None:
            points, score = found
            detections.append(Detection(to_original(points[None], scale, size)[0], score))
    return detections


def _polygon_candidate(
    prob: np.ndarray, contour: np.ndarray, params: PostprocessParams
) -> tuple[np.ndarray, float] | None:
    """(N >= 4, 2) unclipped simplified polygon and score, or None."""
    approx = cv2.approxPolyDP(contour, 0.002 * cv2.arcLength(contour, True), True).reshape(-1, 2)
    if len(approx) < 4 or cannot_reach(min(cv2.minAreaRect(approx)[1]), params.polygon_unclip_ratio, params.min_size):
        return None
    score = mean_inside(prob, contour if params.score_mode == "slow" else approx)
    if score < params.box_thresh:
        return None
    expanded = unclip(approx, params.polygon_unclip_ratio)
    if expanded is None or len(expanded) < 4:
        return None
    if min(cv2.minAreaRect(expanded.astype(np.float32))[1]) < params.min_size:
        return None
    return clockwise_from_top_left(expanded), score


def clockwise_from_top_left(points: np.ndarray) -> np.ndarray:
    """Reorder a simple polygon (N, 2) to run clockwise on screen (y down) from its
    top-left-most point (smallest x + y, then smallest y)."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    following = np.concatenate([points[1:], points[:1]])
    twice_area = (points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1]).sum()
    if twice_area < 0:  # the shoelace sum is positive for clockwise order when y points down
        points = points[::-1]
    first = np.lexsort((points[:, 1], points.sum(1)))[0]
    return np.concatenate([points[first:], points[:first]])
