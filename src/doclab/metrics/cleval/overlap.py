"""Intersection areas of many polygon pairs at once, for the CLEval and IoU metrics.

Convex pairs (the usual word quads) go through Green's theorem in a fixed number of array
operations; a convex polygon against a non-convex simple one is clipped (Sutherland-Hodgman);
anything else falls back to shapely.
"""
from __future__ import annotations

import numpy as np
import shapely

from doclab.metrics.cleval.geometry import PolygonBatch, cyclic, shapely_rings, signed_areas


def _compact(points: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Move kept vertices to the front of each row and pad with the last kept one."""
    order = np.argsort(~keep, axis=1, kind="stable")
    points = np.take_along_axis(points, order[..., None], axis=1)
    counts = keep.sum(axis=1)
    width = max(int(counts.max()), 1)
    points = points[:, :width]
    last = np.take_along_axis(points, np.maximum(counts - 1, 0)[:, None, None], axis=1)
    pad = np.arange(width)[None, :] >= counts[:, None]
    points = np.where(pad[..., None], last, points)
    points[counts == 0] = 0.0
    return points


def clip_areas(subjects: np.ndarray, clips: np.ndarray) -> np.ndarray:
    """Intersection areas by Sutherland-Hodgman clipping, all pairs at once.

    Exact for any simple subject as long as each clip polygon is convex.

    Args:
        subjects: (M, S, 2) padded polygons.
        clips: (M, C, 2) padded convex polygons.
    Returns:
        (M,) non-negative areas.
    """
    clips = np.where((signed_areas(clips) < 0)[:, None, None], clips[:, ::-1], clips)
    current = subjects
    for k in range(clips.shape[1]):
        a = clips[:, k][:, None, :]
        edge = clips[:, (k + 1) % clips.shape[1]][:, None, :] - a
        prev = cyclic(current, -1)
        side_cur = edge[..., 0] * (current[..., 1] - a[..., 1]) - edge[..., 1] * (current[..., 0] - a[..., 0])
        side_prev = cyclic(side_cur, -1)
        inside_cur, inside_prev = side_cur >= 0, side_prev >= 0
        crossing = inside_cur != inside_prev
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(crossing, side_prev / (side_prev - side_cur), 0.0)
        hit = prev + t[..., None] * (current - prev)
        candidates = np.stack([hit, current], axis=2).reshape(len(current), -1, 2)
        keep = np.stack([crossing, inside_cur], axis=2).reshape(len(current), -1)
        current = _compact(candidates, keep)
    return np.abs(signed_areas(current))


def _ccw_columns(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(K, M) x and y columns of counter-clockwise polygons: pair index last, so every
    operation below runs over all pairs at once and reduces over the short vertex axes."""
    points = np.where((signed_areas(points) < 0)[:, None, None], points[:, ::-1], points)
    return np.ascontiguousarray(points[..., 0].T), np.ascontiguousarray(points[..., 1].T)


def _boundary_inside(rx: np.ndarray, ry: np.ndarray, px: np.ndarray, py: np.ndarray, keep_shared: bool) -> np.ndarray:
    """Sum of cross(start, end) over the parts of each edge of ring r inside the convex
    partner p (Cyrus-Beck clipping of every edge against every half-plane at once).

    An edge lying on the partner's boundary line counts only when `keep_shared` and both run
    the same way, so a boundary the two polygons share is counted once, from one side.

    Args:
        rx, ry: (E, M) vertex columns of one polygon of each pair, counter-clockwise.
        px, py: (F, M) vertex columns of its convex partner, counter-clockwise.
        keep_shared: count shared boundary (True for exactly one side of the pair).
    Returns:
        (M,) sum of cross products.
    """
    nxt_r, nxt_p = (np.arange(len(rx)) + 1) % len(rx), (np.arange(len(px)) + 1) % len(px)
    nx, ny = px[nxt_p] - px, py[nxt_p] - py
    # relative to the plane's own vertex, so both ends of a shared edge give exactly 0
    side = nx[None] * (ry[:, None] - py[None]) - ny[None] * (rx[:, None] - px[None])
    s0, s1 = side, side[nxt_r]
    flat = s0 == s1
    with np.errstate(divide="ignore", invalid="ignore"):
        t = s0 / (s0 - s1)
    t_lo = np.max(np.where(s1 > s0, t, 0.0), axis=1)
    t_hi = np.min(np.where(s1 < s0, t, 1.0), axis=1)
    empty = np.any(flat & (s0 < 0), axis=1)
    dx, dy = rx[nxt_r] - rx, ry[nxt_r] - ry
    on_line = flat & (s0 == 0) & ((nx != 0) | (ny != 0))[None]  # padding gives null planes
    if on_line.any():
        same_way = dx[:, None] * nx[None] + dy[:, None] * ny[None] > 0
        empty |= np.any(on_line & ~(same_way & keep_shared), axis=1)
    x0, y0, x1, y1 = rx + t_lo * dx, ry + t_lo * dy, rx + t_hi * dx, ry + t_hi * dy
    return np.sum(np.where(empty | (t_hi <= t_lo), 0.0, x0 * y1 - y0 * x1), axis=0)


def convex_intersection_areas(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Intersection areas of convex polygon pairs by Green's theorem.

    The boundary of the intersection is the part of each polygon's boundary inside the
    other; summing x dy - y dx over both parts gives twice its area. No clipping, no
    variable-length vertex lists, so every pair is done in the same few array operations.

    Args:
        first, second: (M, K, 2) padded convex polygons, any orientation.
    Returns:
        (M,) non-negative areas.
    """
    origin = first[:, :1, :]
    fx, fy = _ccw_columns(first - origin)
    sx, sy = _ccw_columns(second - origin)
    twice = _boundary_inside(fx, fy, sx, sy, True) + _boundary_inside(sx, sy, fx, fy, False)
    return np.maximum(twice / 2, 0.0)


def intersection_areas(a: PolygonBatch, b: PolygonBatch, ia: np.ndarray, ib: np.ndarray) -> np.ndarray:
    """Area of polygon a[ia[m]] intersected with polygon b[ib[m]] for every pair m.

    Two convex polygons: Green's theorem; a convex polygon and a simple one: clipping; both
    vectorised over all such pairs. The rest go through shapely, self-intersecting rings
    made valid first (a corner case on which the references' GPC clipper has no
    better-defined answer).

    Args:
        a, b: polygon batches.
        ia, ib: pair indices.
    Returns:
        (len(ia),) float64 areas.
    """
    areas = np.zeros(len(ia))
    both = a.convex[ia] & b.convex[ib]
    if both.any():
        areas[both] = convex_intersection_areas(a.points[ia[both]], b.points[ib[both]])
    clip_a = a.convex[ia] & b.simple[ib] & ~both
    clip_b = b.convex[ib] & a.simple[ia] & ~clip_a & ~both
    if clip_a.any():
        areas[clip_a] = clip_areas(b.points[ib[clip_a]], a.points[ia[clip_a]])
    if clip_b.any():
        areas[clip_b] = clip_areas(a.points[ia[clip_b]], b.points[ib[clip_b]])
    rest = ~(both | clip_a | clip_b)
    if rest.any():
        ra, rb = ia[rest], ib[rest]
        ua, inv_a = np.unique(ra, return_inverse=True)
        ub, inv_b = np.unique(rb, return_inverse=True)
        geoms_a = shapely.make_valid(shapely_rings(a.points, a.counts, ua))[inv_a]
        geoms_b = shapely.make_valid(shapely_rings(b.points, b.counts, ub))[inv_b]
        areas[rest] = shapely.area(shapely.intersection(geoms_a, geoms_b))
    return areas
