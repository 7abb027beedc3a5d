"""Minimum-area rectangle of a box as the competition CLEval variant sizes it.

The variant runs rotating calipers over scipy's convex hull of the float32 points, in
float32 arithmetic (numpy 2 keeps float32 scalars float32, NEP 50), keeps the first hull edge
of minimum rectangle area (strict `<`), and calls `ar` = side across that edge / side along
it, capped at 100. A box's character count and the cost of an unmatched detection are
functions of `ar` (docs/cleval.md, facts 1 and 8). Rectangles tie on all four edges, so the
hull's start vertex (`cleval_qhull`) and the last bit of float32 rounding decide between
`ar` and 1/`ar`; both are reproduced where they matter.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from doclab.metrics.cleval.qhull import convex_quads, cross, monotone_hull, qhull_start, quad_hulls

EPS32 = np.finfo(np.float32).eps
_TIE = 1e-5  # relative area gap within which float32 rounding may pick either rectangle


def _square_may_differ(d: np.ndarray) -> np.ndarray:
    """Whether libm's powf(d, 2) - what scalar `d ** 2` runs - may round d*d the other way.

    d*d is exact in float64. glibc's powf is not correctly rounded, but on 300k random
    squares it only ever disagreed with d * d when the exact square lay within 0.0014 ulp of
    a rounding midpoint; 0.01 ulp leaves a wide margin.
    """
    exact = d.astype(np.float64) ** 2
    rounded = exact.astype(np.float32)
    ulp = np.spacing(rounded).astype(np.float64)
    return np.abs(np.abs(exact - rounded) - ulp / 2) < ulp * 1e-2


def _caliper_ratios(hulls: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rectangle of every hull edge: its `ar` and its area, all boxes at once.

    Float32 throughout, in the variant's operation order: unit vector = difference over a
    float64 square root cast back to float32, projections as float32 dot products. Hulls
    shorter than K repeat their last vertex; the zero-length edges that makes are skipped
    and the real edges keep their order.

    Args:
        hulls: (N, K, 2) hull vertices in the variant's order.
    Returns:
        (ratios (K, N) float32, 0 on skipped edges; areas (K, N) float32, inf there;
        (N,) whether a squared side length may differ from the variant's scalar `** 2`).
    """
    hx, hy = (np.ascontiguousarray(hulls[..., i].T, dtype=np.float32) for i in (0, 1))
    nxt = (np.arange(len(hx)) + 1) % len(hx)
    dx, dy = hx - hx[nxt], hy - hy[nxt]
    with np.errstate(divide="ignore", invalid="ignore"):
        dist = np.sqrt((dx * dx + dy * dy).astype(np.float64)).astype(np.float32)
        ux, uy = (hx[nxt] - hx) / dist, (hy[nxt] - hy) / dist
        along = ux[:, None] * hx[None] + uy[:, None] * hy[None]
        across = -uy[:, None] * hx[None] + ux[:, None] * hy[None]
        len_p = along.max(axis=1) - along.min(axis=1)
        len_o = across.max(axis=1) - across.min(axis=1)
        ratios = np.minimum(np.float32(100), len_o / (len_p + EPS32))
    valid = dist > 0
    areas = np.where(valid, len_p * len_o, np.float32(np.inf))
    suspicious = np.any(valid & (_square_may_differ(dx) | _square_may_differ(dy)), axis=0)
    return np.where(valid, ratios, np.float32(0)), areas, suspicious


def _scalar_ratio(hull: np.ndarray) -> np.float32:
    """`ar` of one hull through numpy float32 scalar arithmetic, as the variant computes it
    (scalar `x ** 2` included), for the few boxes whose answer hinges on the last bit."""
    ring = list(hull.astype(np.float32)) + [hull[0].astype(np.float32)]
    best = None
    for p0, p1 in zip(ring[:-1], ring[1:]):
        dist = math.sqrt((p0[0] - p1[0]) ** 2 + (p0[1] - p1[1]) ** 2)
        unit = ((p1[0] - p0[0]) / dist, (p1[1] - p0[1]) / dist)
        normal = (-unit[1], unit[0])
        along = [np.dot(unit, p) for p in ring]
        across = [np.dot(normal, p) for p in ring]
        len_p, len_o = max(along) - min(along), max(across) - min(across)
        if best is None or len_p * len_o < best[0]:
            best = (len_p * len_o, len_p, len_o)
    return min(np.float32(100), best[2] / (best[1] + EPS32))


def _hulls(points: np.ndarray, counts: np.ndarray) -> list[tuple]:
    """Hull batches: (rows, hulls (n, K, 2), kind, polygons).

    Strictly convex quads ("quad") are their own hull, walked counter-clockwise from an
    arbitrary vertex; other polygons ("polygon") get a monotone-chain hull, padded. Either
    start is corrected to qhull's only when a tie makes it matter. Fewer than 3 hull points:
    degenerate, no hull.
    """
    fast = np.zeros(len(counts), dtype=bool)
    quad = np.flatnonzero(counts == 4)
    if len(quad):
        fast[quad] = convex_quads(points[quad, :4])
    batches = []
    if fast.any():
        quads = points[fast, :4]
        clockwise = cross(quads[:, 0], quads[:, 1], quads[:, 2]) < 0
        batches.append((np.flatnonzero(fast), np.where(clockwise[:, None, None], quads[:, ::-1], quads), "quad", quads))
    polygons = [points[i, :counts[i]] for i in np.flatnonzero(~fast)]
    hulls = [monotone_hull([tuple(p) for p in poly.tolist()]) for poly in polygons]
    keep = [i for i, h in enumerate(hulls) if len(h) >= 3]
    if keep:
        width = max(len(hulls[i]) for i in keep)
        padded = np.stack([polygons[i][hulls[i] + [hulls[i][-1]] * (width - len(hulls[i]))] for i in keep])
        batches.append((np.flatnonzero(~fast)[keep], padded, "polygon", [polygons[i] for i in keep]))
    return batches


def _started(hull: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """The hull rotated to start where qhull starts it (unchanged if qhull's start is not a
    hull vertex here, i.e. in the collinear cases the model does not cover)."""
    start = qhull_start(polygon)
    hit = np.flatnonzero(np.all(hull == polygon[start], axis=1)) if start is not None else []
    return np.roll(hull, -int(hit[0]), axis=0) if len(hit) else hull


def _values(hulls: np.ndarray, value: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`value` of the first minimum-area rectangle of each hull, whether near-tied rectangles
    (area within 1e-5, or `ar` within 1e-5 of a rounding step) could give another value,
    and whether a squared side may round differently in the variant's scalar arithmetic."""
    ratios, areas, suspicious = _caliper_ratios(hulls)
    cols = np.arange(len(hulls))
    best = np.argmin(areas, axis=0)
    chosen = value(ratios[best, cols])
    near = areas <= areas[best, cols][None] * (1 + _TIE)
    wobble = np.logical_or.reduce([value(ratios * np.float32(1 + f)) != chosen[None] for f in (-_TIE, 0.0, _TIE)])
    return chosen, np.any(near & wobble, axis=0), suspicious


def _scalar_value(hull: np.ndarray, value: Callable[[np.ndarray], np.ndarray]) -> int:
    return int(value(np.array([_scalar_ratio(hull)], dtype=np.float32))[0])


def variant_box_values(points: np.ndarray, counts: np.ndarray, value: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`value(ar)` per box, with `ar` as the variant computes it (0 for a degenerate box,
    which qhull refuses).

    All boxes go through the vectorised calipers. Only where near-tied rectangles could
    give different values does the hull start get set to qhull's (vectorised for quads),
    and only where a squared side may then still round differently in the variant's scalar
    arithmetic is a box redone one at a time.

    Args:
        points: (N, K, 2) padded polygons (taken as float32, as the variant does).
        counts: (N,) vertex counts.
        value: maps a float32 array of `ar` to integers of the same shape.
    Returns:
        (N,) int64 values.
    """
    pts = points.astype(np.float32).astype(np.float64)
    out = np.full(len(counts), value(np.zeros(1, dtype=np.float32))[0], dtype=np.int64)
    for rows, hulls, kind, polygons in _hulls(pts, counts):
        chosen, tied, _ = _values(hulls, value)
        tied = np.flatnonzero(tied)
        if kind == "quad" and len(tied):
            started = quad_hulls(polygons[tied])
            chosen[tied], still_tied, suspicious = _values(started, value)
            for r in np.flatnonzero(still_tied & suspicious):
                chosen[tied[r]] = _scalar_value(started[r], value)
        elif kind == "polygon":
            for r in tied:
                hull = hulls[r, :len(np.unique(hulls[r], axis=0))]  # drop the padding
                chosen[r] = _scalar_value(_started(hull, polygons[r]), value)
        out[rows] = chosen
    return out
