"""Validation and normalisation of annotated polygons (one word at a time)."""
from __future__ import annotations

import cv2
import numpy as np
import shapely


def signed_area(points: np.ndarray) -> float:
    """Shoelace area; positive when the polygon runs clockwise on screen (y axis down)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def normalise_order(points: np.ndarray) -> np.ndarray:
    """Clockwise on screen; quads start at the top-left corner (smallest x + y), as UFO expects."""
    if signed_area(points) < 0:
        points = points[::-1]
    if len(points) == 4:
        points = np.roll(points, -int(np.argmin(points.sum(axis=1))), axis=0)
    return np.ascontiguousarray(points)


def check_polygon(points: np.ndarray, width: int, height: int, min_side: float,
                  scale: tuple[float, float] = (1.0, 1.0)) -> tuple[np.ndarray | None, str]:
    """Validate one polygon against an image of size (width, height).

    Args:
        points: (N, 2) polygon in image pixels.
        width, height: image size the points refer to.
        scale: how far `points` were resized from the source image (for messages in source pixels).
        min_side: polygons whose minimum-area rectangle is thinner than this are degenerate.
    Returns:
        (clean points or None, message). With points: message is '' or a note that points were
        clipped into the image. Without points: message says why the polygon is unusable.
    """
    if len(points) < 3:
        return None, f"polygon has {len(points)} point(s), needs at least 3"
    if not np.isfinite(points).all():
        return None, "polygon has NaN or infinite coordinates"
    clipped = np.clip(points, [0.0, 0.0], [float(width), float(height)])
    note = ""
    if not np.array_equal(clipped, points):
        outside = float(np.abs(clipped - points).max())
        if shapely.Polygon(points).is_valid and shapely.Polygon(clipped).area <= 0:
            return None, "polygon lies outside the image"
        source_w, source_h = round(width / scale[0]), round(height / scale[1])
        note = (f"points outside the {source_w}x{source_h} image clipped "
                f"(by up to {outside / min(scale):.1f} px)")
    polygon = shapely.Polygon(clipped)
    # A bow-tie's two lobes have opposite signs, so its raw area can be 0: measure the repaired shape.
    if shapely.make_valid(polygon).area <= 0:
        return None, "zero-area polygon"
    if not polygon.is_valid:
        return None, "self-intersecting polygon"
    (_, _), (rect_w, rect_h), _ = cv2.minAreaRect(clipped.astype(np.float32))
    if min(rect_w, rect_h) < min_side:
        return None, f"degenerate polygon ({min(rect_w, rect_h):.2f} px thin after resizing, below preprocess.min_word_side)"
    return normalise_order(clipped), note
