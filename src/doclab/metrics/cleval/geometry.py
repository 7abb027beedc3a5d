"""Vectorised polygon primitives shared by the CLEval and IoU metrics (overlap areas are in
`cleval_overlap`).

Polygons travel as a padded batch: an (N, K, 2) float64 array in which a polygon with
fewer than K vertices repeats its last vertex. A repeated vertex adds a zero-length edge,
which changes no area, no point-in-polygon parity and no clipping result, so every
routine below can treat the batch as if all polygons had K vertices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import shapely

_CONVEX_WINDING_LIMIT = 3 * np.pi  # a simple convex ring turns by 2*pi, a pentagram by 4*pi


def cyclic(a: np.ndarray, step: int = 1, axis: int = 1) -> np.ndarray:
    """`a` with index i holding element i + step (mod n) along `axis`: the next vertex
    (step 1) or the previous one (step -1). Same as np.roll(a, -step), with less overhead."""
    n = a.shape[axis]
    return np.take(a, (np.arange(n) + step) % n, axis=axis)


def pack_polygons(polygons: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack polygons of any vertex count into a padded batch.

    Args:
        polygons: (n_i, 2) vertex arrays.
    Returns:
        (points (N, K, 2) float64, counts (N,) int64); K is at least 1.
    """
    counts = np.fromiter((len(p) for p in polygons), dtype=np.int64, count=len(polygons))
    if len(polygons) == 0:
        return np.zeros((0, 1, 2)), counts
    width = int(counts.max())
    if int(counts.min()) == width:
        return np.asarray(polygons, dtype=np.float64).reshape(len(polygons), width, 2), counts
    points = np.empty((len(polygons), width, 2))
    for i, poly in enumerate(polygons):
        n = len(poly)
        points[i, :n] = poly
        points[i, n:] = poly[n - 1] if n else 0.0
    return points, counts


def finite_polygons(polygons: Sequence[np.ndarray], what: str) -> tuple[np.ndarray, np.ndarray]:
    """`pack_polygons`, refusing NaN or infinite coordinates.

    Args:
        polygons: (n_i, 2) vertex arrays.
        what: whose polygons ("GT", "prediction"), for the error message.
    Returns:
        (points (N, K, 2), counts (N,)).
    Raises:
        ValueError: naming the first bad polygon by position.
    """
    points, counts = pack_polygons(polygons)
    bad = np.flatnonzero(~np.isfinite(points).all(axis=(1, 2)))
    if len(bad):
        raise ValueError(f"{what} polygon #{bad[0] + 1} has non-finite coordinates")
    return points, counts


def signed_areas(points: np.ndarray) -> np.ndarray:
    """Shoelace area of each polygon (positive when counter-clockwise in x-right/y-up axes).

    Args:
        points: (N, K, 2) padded batch.
    Returns:
        (N,) signed areas.
    """
    x, y = points[..., 0], points[..., 1]
    return 0.5 * np.sum(x * cyclic(y) - cyclic(x) * y, axis=1)


def bounding_boxes(points: np.ndarray) -> np.ndarray:
    """(N, 4) array of x_min, y_min, x_max, y_max for a padded batch."""
    return np.concatenate([points.min(axis=1), points.max(axis=1)], axis=1)


def convex_mask(points: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Which polygons are simple, convex and non-degenerate.

    Convex means every turn has the same sign and the ring winds once; any zero-length
    edge (duplicate vertex) or zero area counts as not convex, which only sends the
    polygon down the slower exact path.

    Args:
        points: (N, K, 2) padded batch.
        counts: (N,) true vertex counts.
    Returns:
        (N,) bool.
    """
    n, k = points.shape[:2]
    if n == 0:
        return np.zeros(0, dtype=bool)
    if k == 4 and np.all(counts == 4):  # a quad turning the same way at every corner is convex
        x, y = points[..., 0], points[..., 1]
        ex, ey = cyclic(x) - x, cyclic(y) - y
        turns = ex * cyclic(ey) - ey * cyclic(ex)
        return np.all(turns > 0, axis=1) | np.all(turns < 0, axis=1)
    idx = np.arange(k)[None, :]
    valid = idx < counts[:, None]
    nxt = np.where(idx + 1 < counts[:, None], idx + 1, 0)
    edges = np.take_along_axis(points, nxt[..., None], axis=1) - points
    next_edges = np.take_along_axis(edges, nxt[..., None], axis=1)
    cross = edges[..., 0] * next_edges[..., 1] - edges[..., 1] * next_edges[..., 0]
    dot = np.sum(edges * next_edges, axis=-1)
    nonzero = np.all(~valid | np.any(edges != 0, axis=-1), axis=1)
    same_sign = np.all(~valid | (cross >= 0), axis=1) | np.all(~valid | (cross <= 0), axis=1)
    winding = np.abs(np.sum(np.where(valid, np.arctan2(cross, dot), 0.0), axis=1))
    return nonzero & same_sign & (winding < _CONVEX_WINDING_LIMIT) & (counts >= 3) & (signed_areas(points) != 0)


def box_overlap_pairs(boxes_a: np.ndarray, boxes_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs whose bounding boxes overlap with positive area (the only pairs that can
    have a positive intersection area).

    Args:
        boxes_a: (A, 4) boxes; boxes_b: (B, 4) boxes.
    Returns:
        (ia, ib) int arrays of equal length, in row-major order.
    """
    overlap = ((boxes_a[:, None, 0] < boxes_b[None, :, 2]) & (boxes_b[None, :, 0] < boxes_a[:, None, 2])
               & (boxes_a[:, None, 1] < boxes_b[None, :, 3]) & (boxes_b[None, :, 1] < boxes_a[:, None, 3]))
    return np.nonzero(overlap)


def points_in_polygons(xy: np.ndarray, polygons: np.ndarray, ip: np.ndarray, ik: np.ndarray) -> np.ndarray:
    """Crossing-number point-in-polygon test for chosen (point, polygon) pairs.

    Same arithmetic, in the same order, as Polygon3's `isInside` (the classic PNPOLY loop)
    used by both reference implementations, so boundary points fall the same way:
    left/top edges inside, right/bottom edges outside (docs/cleval.md, fact 3).

    Args:
        xy: (P, 2) points.
        polygons: (N, K, 2) padded batch.
        ip, ik: pair indices into xy and polygons.
    Returns:
        (len(ip),) bool.
    """
    if len(ip) == 0:
        return np.zeros(0, dtype=bool)
    x, y = xy[ip, 0][:, None], xy[ip, 1][:, None]
    vi = polygons[ik]
    vj = cyclic(vi, -1)
    xi, yi, xj, yj = vi[..., 0], vi[..., 1], vj[..., 0], vj[..., 1]
    straddles = ((yi <= y) & (y < yj)) | ((yj <= y) & (y < yi))
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = (xj - xi) * (y - yi) / (yj - yi) + xi
    crossings = np.count_nonzero(straddles & (x < x_cross), axis=1)
    return (crossings & 1).astype(bool)


@dataclass(frozen=True)
class PolygonBatch:
    """A padded polygon batch with the per-polygon facts every metric needs.

    Attributes:
        points: (N, K, 2) float64, short polygons padded by repeating their last vertex.
        counts: (N,) true vertex counts.
        boxes: (N, 4) bounding boxes.
        areas: (N,) absolute shoelace areas (Polygon3's `area()` for the CLEval references).
        convex: (N,) simple, convex and non-degenerate (see `convex_mask`).
        simple: (N,) convex or otherwise a valid (non-self-intersecting) ring.
    """

    points: np.ndarray
    counts: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    convex: np.ndarray
    simple: np.ndarray

    @classmethod
    def build(cls, polygons: Sequence[np.ndarray]) -> PolygonBatch:
        """Pack polygons ((n_i, 2) arrays, n_i >= 3) and compute their facts."""
        return cls.from_padded(*pack_polygons(polygons))

    @classmethod
    def from_padded(cls, points: np.ndarray, counts: np.ndarray) -> PolygonBatch:
        """Compute the facts of an already padded batch ((N, K, 2) points, (N,) counts)."""
        convex = convex_mask(points, counts)
        simple = convex.copy()
        rest = np.flatnonzero(~convex)
        if len(rest):
            simple[rest] = shapely.is_valid(shapely_rings(points, counts, rest))
        return cls(points, counts, bounding_boxes(points), np.abs(signed_areas(points)), convex, simple)

    def __len__(self) -> int:
        return len(self.counts)


def shapely_rings(points: np.ndarray, counts: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """shapely Polygons of the chosen rows of a padded batch (as given, possibly invalid)."""
    return np.array([shapely.Polygon(points[i, :max(counts[i], 3)]) for i in rows], dtype=object)


