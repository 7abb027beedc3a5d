"""Unclip many quads at once, bit for bit as `postprocess.unclip` does one with pyclipper.

    rects = unclipped_rects(boxes, 1.5)  # per quad: cv2.minAreaRect of its unclipped ring, or None

`unclip` offsets a polygon with Clipper 6.4 (pyclipper): vertices in fixed point (1/8 px, numpy
rounding), round joins with an arc tolerance of 1/4 px, then a union that cleans the ring. For a
convex quad that ring has a closed form: each edge pushed out by D along its unit normal, each
corner an arc of `steps` points rotated by a fixed angle. Here those points are computed for all
quads together with Clipper's own double arithmetic in the same order (products, rotations,
rounding half away from zero), and the libm trigonometry it calls (Python's `math`), so every
point is the integer pyclipper gives. The union of a strictly convex ring keeps its vertices but
duplicates and collinear ones, which are dropped here the same way (exact integer tests). A quad
outside that case (a corner too sharp or too flat for the rounded offset, a ring that is not
strictly convex after rounding) is offset by pyclipper itself, so the results never differ.
"""
from __future__ import annotations

import math

import cv2
import numpy as np
import pyclipper

FIXED_POINT = 8  # units per pixel of the offset (postprocess.unclip's _ONE)
ARC_TOLERANCE = 0.25 * FIXED_POINT  # postprocess.unclip's arc_tolerance
_CLIPPER_DEFAULT_ARC = 0.25  # Clipper's def_arc_tolerance: the cap relative to |delta|


def unclip(polygon: np.ndarray, ratio: float) -> np.ndarray | None:
    """Dilate a polygon by D' = A * ratio / L with round joins (DBNet's unclip), with pyclipper.

    Args:
        polygon: (N, 2) x, y.
        ratio: r' (0 keeps the polygon as it is, up to 1/8-pixel rounding).
    Returns:
        (M, 2) float64 points of the largest resulting ring, or None for a degenerate polygon.
    """
    points = polygon.reshape(-1, 2).astype(np.float32)
    perimeter = cv2.arcLength(points, True)
    if perimeter <= 0:
        return None
    distance = cv2.contourArea(points) * ratio / perimeter
    offsetter = pyclipper.PyclipperOffset(arc_tolerance=ARC_TOLERANCE)  # round corners to within 1/4 pixel
    fixed = (points * FIXED_POINT).round().astype(np.int64)
    offsetter.AddPath(fixed.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    rings = offsetter.Execute(distance * FIXED_POINT)
    if not rings:
        return None
    ring = rings[0] if len(rings) == 1 else max(rings, key=lambda r: abs(pyclipper.Area(r)))
    return np.array(ring, np.float64) / FIXED_POINT


def _rounded(values: np.ndarray) -> np.ndarray:
    """Clipper's Round(): half away from zero, as int64."""
    return np.where(values < 0, np.trunc(values - 0.5), np.trunc(values + 0.5)).astype(np.int64)


def _offsets(boxes: np.ndarray, ratio: float) -> np.ndarray:
    """Offset distance D * FIXED_POINT per quad, as `unclip` computes it with cv2.contourArea and
    cv2.arcLength on the float32 quad (doubles summed from the last vertex, float32 side lengths)."""
    previous = np.roll(boxes, 1, axis=1)
    terms = previous[..., 0].astype(np.float64) * boxes[..., 1] - previous[..., 1].astype(np.float64) * boxes[..., 0]
    area = np.abs((((0.0 + terms[:, 0]) + terms[:, 1]) + terms[:, 2]) + terms[:, 3]) * 0.5
    step = boxes - previous  # float32 differences, as arcLength takes them
    sides = np.sqrt(step[..., 0] * step[..., 0] + step[..., 1] * step[..., 1]).astype(np.float64)
    perimeter = (((0.0 + sides[:, 0]) + sides[:, 1]) + sides[:, 2]) + sides[:, 3]
    return area * ratio / perimeter * FIXED_POINT


def _arc_constants(deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clipper's (sin, cos, steps per radian) of the round joins for positive offsets `deltas`.

    Plain IEEE arithmetic in numpy, the trigonometry from libm through `math`, as Clipper calls it.
    """
    size = np.abs(deltas)
    tolerance = np.where(ARC_TOLERANCE > size * _CLIPPER_DEFAULT_ARC, size * _CLIPPER_DEFAULT_ARC, ARC_TOLERANCE)
    steps = math.pi / _libm(math.acos, 1 - tolerance / size)
    steps = np.minimum(steps, size * math.pi)
    two_pi = math.pi * 2
    angle = two_pi / steps
    return _libm(math.sin, angle), _libm(math.cos, angle), steps / two_pi


def _libm(function, values: np.ndarray) -> np.ndarray:
    """`function` of each value, through Python's `math` (libm, as C++ code calls it; numpy's own
    vectorised trigonometry may differ in the last bit)."""
    return np.fromiter(map(function, values.ravel().tolist()), np.float64, values.size).reshape(values.shape)


def _oriented(points: np.ndarray) -> np.ndarray:
    """Fixed-point quads (K, 4, 2) in the orientation Clipper offsets them (its Area() >= 0)."""
    x, y = points[..., 0].astype(np.float64), points[..., 1].astype(np.float64)
    following_x, following_y = np.roll(x, 1, axis=1), np.roll(y, 1, axis=1)
    area = -((following_x + x) * (following_y - y)).sum(axis=1) * 0.5
    return np.where((area < 0)[:, None, None], points[:, ::-1], points)


def _normals(points: np.ndarray) -> np.ndarray:
    """Clipper's unit normals (K, 4, 2) of the edges j -> j + 1."""
    step = (np.roll(points, -1, axis=1) - points).astype(np.float64)
    scale = 1 * 1.0 / np.sqrt(step[..., 0] * step[..., 0] + step[..., 1] * step[..., 1])
    return np.stack([step[..., 1] * scale, -(step[..., 0] * scale)], axis=-1)


def _corner_steps(normals: np.ndarray, deltas: np.ndarray, per_radian: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Arc points per corner (K, 4) and whether every corner takes Clipper's round join (K,).

    Corner j joins edge j - 1 (normal k) and edge j (normal j). Clipper rounds a corner only when
    |sinA * delta| >= 1 and sinA * delta > 0; other corners (nearly straight, concave) are left to it.
    """
    previous = np.roll(normals, 1, axis=1)
    sin_a = previous[..., 0] * normals[..., 1] - normals[..., 0] * previous[..., 1]
    cos_a = previous[..., 0] * normals[..., 0] + previous[..., 1] * normals[..., 1]
    round_join = (np.abs(sin_a * deltas[:, None]) >= 1.0) & (sin_a * deltas[:, None] > 0)
    sin_a = np.clip(sin_a, -1.0, 1.0)
    angles = np.fromiter(map(math.atan2, sin_a.ravel().tolist(), cos_a.ravel().tolist()), np.float64, sin_a.size)
    steps = _rounded(per_radian[:, None] * np.abs(angles.reshape(sin_a.shape)))
    return np.maximum(steps, 1), round_join.all(axis=1)


def _rings(points: np.ndarray, normals: np.ndarray, deltas: np.ndarray, sin: np.ndarray, cos: np.ndarray,
           steps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every quad's offset ring in Clipper's order: per corner its arc points, then the end point.

    Returns:
        (points (P, 2) int64 of all rings one after another, ring lengths (K,)).
    """
    count = steps.shape[0]
    longest = int(steps.max()) if count else 0
    source = points.astype(np.float64)
    previous = np.roll(normals, 1, axis=1)
    x, y = previous[..., 0].copy(), previous[..., 1].copy()
    arcs = np.zeros((count, 4, longest + 1, 2), np.int64)
    delta, sin, cos = deltas[:, None], sin[:, None], cos[:, None]
    for index in range(longest):
        arcs[:, :, index, 0] = _rounded(source[..., 0] + x * delta)
        arcs[:, :, index, 1] = _rounded(source[..., 1] + y * delta)
        x, y = x * cos - sin * y, x * sin + y * cos
    ends = _rounded(source + normals * delta[..., None])
    arcs[np.arange(count)[:, None], np.arange(4)[None, :], steps] = ends
    keep = np.arange(longest + 1)[None, None, :] <= steps[..., None]
    return arcs[keep], (steps + 1).sum(axis=1)


def _cyclic_neighbours(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ring of each point, index of its predecessor, of its successor) in rings stored one after another."""
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ring = np.repeat(np.arange(len(lengths)), lengths)
    index = np.arange(int(ends[-1]) if len(ends) else 0)
    before = np.where(index == starts[ring], ends[ring] - 1, index - 1)
    after = np.where(index == ends[ring] - 1, starts[ring], index + 1)
    return ring, before, after


def _clean_convex(flat: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rings as Clipper's union returns a convex ring: repeated and collinear points dropped,
    starting right after the top-most point (the right-most of a tie), in the same direction.

    Returns:
        (points, lengths, convex): `convex` is False for a ring that is not strictly convex and
        turning once after rounding (pyclipper decides those).
    """
    ring, before, _ = _cyclic_neighbours(lengths)
    distinct = np.any(flat != flat[before], axis=1)
    flat, ring = flat[distinct], ring[distinct]
    lengths = np.bincount(ring, minlength=len(lengths))
    ring, before, after = _cyclic_neighbours(lengths)
    incoming, outgoing = flat - flat[before], flat[after] - flat
    cross = incoming[:, 0] * outgoing[:, 1] - incoming[:, 1] * outgoing[:, 0]
    dot = incoming[:, 0] * outgoing[:, 0] + incoming[:, 1] * outgoing[:, 1]
    count, sign = len(lengths), np.sign(cross)
    spikes = np.bincount(ring, (cross == 0) & (dot <= 0), count) > 0  # the union would reshape these
    positive, negative = np.bincount(ring, sign > 0, count), np.bincount(ring, sign < 0, count)
    winding = np.abs(np.bincount(ring, np.arctan2(cross, dot), count)) / (2 * math.pi)
    convex = ~spikes & (positive + negative >= 3) & ((positive == 0) | (negative == 0)) & (np.abs(winding - 1) < 0.25)
    flat, ring = flat[sign != 0], ring[sign != 0]
    lengths = np.bincount(ring, minlength=count)
    starts = np.cumsum(lengths) - lengths
    top = np.lexsort((-flat[:, 0], flat[:, 1], ring))[starts[lengths > 0]]  # per ring: least y, then most x
    first = np.zeros(count, np.int64)
    first[lengths > 0] = top - starts[lengths > 0] + 1
    local = np.arange(len(flat)) - starts[ring]
    order = starts[ring] + (first[ring] + local) % np.maximum(lengths[ring], 1)
    return flat[order], lengths, convex


def unclipped_rects(boxes: np.ndarray, ratio: float) -> list[tuple | None]:
    """`cv2.minAreaRect` of each quad's unclipped ring, bit for bit as from `unclip(box, ratio)`.

    Args:
        boxes: (K, 4, 2) float32 quads (cv2.boxPoints).
        ratio: the unclip ratio r' (offset D = A r' / L).
    Returns:
        Per quad, the rotated rectangle ((cx, cy), (w, h), angle) of its unclipped ring as float32
        points, or None where `unclip` gives no ring.
    """
    boxes = np.ascontiguousarray(boxes, np.float32).reshape(-1, 4, 2)
    if len(boxes) == 0:
        return []
    with np.errstate(divide="ignore", invalid="ignore"):
        return _unclipped_rects(boxes, ratio)


def _unclipped_rects(boxes: np.ndarray, ratio: float) -> list[tuple | None]:
    """`unclipped_rects` of a non-empty (K, 4, 2) float32 batch (floating-point warnings silenced by the caller)."""
    deltas = _offsets(boxes, ratio)
    fixed = (boxes * np.float32(FIXED_POINT)).round().astype(np.int64)
    distinct = np.all(np.any(fixed != np.roll(fixed, 1, axis=1), axis=2), axis=1)
    simple = distinct & np.isfinite(deltas) & (deltas > 0)
    deltas = np.where(simple, deltas, 1.0)  # placeholders where pyclipper decides
    sin, cos, per_radian = _arc_constants(deltas)
    points = _oriented(fixed)
    normals = np.where(simple[:, None, None], _normals(points), 0.0)
    steps, rounded = _corner_steps(normals, deltas, per_radian)
    simple &= rounded
    steps = np.where(simple[:, None], steps, 0)
    flat, lengths = _rings(points, normals, deltas, sin, cos, steps)
    flat, lengths, convex = _clean_convex(flat, lengths)
    simple &= convex
    scaled = (flat / FIXED_POINT).astype(np.float32)
    rects: list[tuple | None] = []
    for index, end in enumerate(np.cumsum(lengths).tolist()):
        if simple[index]:
            rects.append(cv2.minAreaRect(scaled[end - lengths[index]:end]))
        else:
            expanded = unclip(boxes[index], ratio)
            rects.append(None if expanded is None else cv2.minAreaRect(expanded.astype(np.float32)))
    return rects
