"""The threshold map's borders (DBNet): values rise towards thresh_max within distance D of each polygon's
outline, rectangles in one pass over their box, other polygons edge by edge."""
from __future__ import annotations

import cv2
import numpy as np

# A 4-point polygon whose sides are parallel and perpendicular to within this many pixels
# is drawn as a rectangle: its whole border in one pass over its box, not one per edge.
_RECTANGLE_TOLERANCE = 1e-3


def polygon_edges(polygons: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All closed-polygon edges at once: (E, 2) starts and ends, and each polygon's first edge index."""
    counts = np.array([len(p) for p in polygons])
    starts = np.concatenate(polygons)
    first = np.cumsum(counts) - counts
    following = np.arange(1, len(starts) + 1)
    following[first + counts - 1] = first  # the last vertex joins the first
    return starts, starts[following], first


def _raise_values(values: np.ndarray, x0: int, y0: int, squared: np.ndarray, span: float, top: float) -> None:
    """values[box] = max(values[box], top - span * sqrt(squared)) for the box at (x0, y0).

    `squared` (h, w) float32 is (dist / D)^2 and is overwritten; where dist > D the new
    value falls below thresh_min = top - span, which the map already holds.
    """
    h, w = squared.shape
    cv2.sqrt(squared, dst=squared)
    cv2.addWeighted(squared, -span, squared, 0.0, top, dst=squared)
    view = values[y0 : y0 + h, x0 : x0 + w]
    cv2.max(view, squared, dst=view)


def draw_borders(values: np.ndarray, polygons: list[np.ndarray], distances: np.ndarray,
                  thresh_min: float, thresh_max: float) -> None:
    """values = max(values, thresh_max - (thresh_max - thresh_min) * dist / D) around each
    polygon (N_i, 2) with offset D (P,); `values` (H, W) float32 starts at thresh_min.

    Vectorised: a pixel further than D from an outline does not see it, so each polygon is
    evaluated on its box grown by D (clipped to the image), the whole box per call; every
    quantity that is per polygon or per edge but not per pixel is computed for all of them
    at once beforehand. Overlapping polygons take the max, as in the paper.
    """
    rectangle = _rectangles(polygons)
    if rectangle.any():
        quads = np.stack([p for p, r in zip(polygons, rectangle) if r])
        _draw_rectangles(values, quads, distances[rectangle], thresh_max - thresh_min, thresh_max)
    others = [p for p, r in zip(polygons, rectangle) if not r]
    if others:
        _draw_polygons(values, others, distances[~rectangle], thresh_max - thresh_min, thresh_max)


def _rectangles(polygons: list[np.ndarray]) -> np.ndarray:
    """(P,) bool: 4 points whose opposite sides are equal and parallel and whose first
    corner is square, each to within _RECTANGLE_TOLERANCE pixels."""
    rectangle = np.array([len(p) == 4 for p in polygons])
    if rectangle.any():
        quads = np.stack([p for p, is_quad in zip(polygons, rectangle) if is_quad])
        sides = np.roll(quads, -1, axis=1) - quads
        dot = np.abs((sides[:, 0] * sides[:, 1]).sum(1))  # |side 1 along side 0| * |side 0|
        right_angled = dot <= _RECTANGLE_TOLERANCE * np.hypot(*sides[:, 0].T)
        parallel = (np.abs(sides[:, :2] + sides[:, 2:]) <= _RECTANGLE_TOLERANCE).all((1, 2))
        rectangle[rectangle] = right_angled & parallel
    return rectangle


def _draw_rectangles(values: np.ndarray, quads: np.ndarray, distances: np.ndarray, span: float, top: float) -> None:
    """Rectangles (R, 4, 2), each in one pass over its box: in the frame of its sides, in
    units of D, a pixel is (u, v) from the centre; with U = |u| - a, V = |v| - b (a, b the
    half sides) the squared distance to the outline is max(U, V)^2 + relu(min(U, V))^2
    (inside and beside the sides the larger of U, V is the distance; past a corner both
    are positive and it is the hypotenuse).
    """
    low, size, seen = _boxes(values.shape, quads.min(1), quads.max(1), distances)
    quads, distances, low, size = quads[seen], distances[seen], low[seen], size[seen]
    side = quads[:, 1] - quads[:, 0]
    length = np.hypot(*side.T)
    along, across = _frame(side / length[:, None], low - quads.mean(1), 1.0 / distances)
    half_u = (length / (2 * distances)).astype(np.float32)
    half_v = (np.hypot(*(quads[:, 2] - quads[:, 1]).T) / (2 * distances)).astype(np.float32)
    grid_x, grid_y = _grids(size)
    for (x0, y0), (w, h), (ux, uy, uc), (vx, vy, vc), a, b in zip(
        low.tolist(), size.tolist(), along.tolist(), across.tolist(), half_u, half_v
    ):
        xs, ys = grid_x[:h, :w], grid_y[:h, :w]
        u = cv2.addWeighted(xs, ux, ys, uy, uc)
        np.abs(u, out=u)
        np.subtract(u, a, out=u)
        v = cv2.addWeighted(xs, vx, ys, vy, vc)
        np.abs(v, out=v)
        np.subtract(v, b, out=v)
        larger = cv2.max(u, v)
        cv2.min(u, v, dst=u)
        cv2.threshold(u, 0.0, 0.0, cv2.THRESH_TOZERO, dst=u)
        np.multiply(larger, larger, out=larger)
        cv2.accumulateSquare(u, larger)
        _raise_values(values, x0, y0, larger, span, top)


def _draw_polygons(
    values: np.ndarray, polygons: list[np.ndarray], distances: np.ndarray, span: float, top: float
) -> None:
    """Any polygons, edge by edge: in an edge's frame, in units of D, a pixel is s along
    the edge from its middle and n across it; its squared distance to the segment is
    relu(|s| - half length)^2 + n^2. Each polygon's min over its edges is taken on its box.
    """
    starts, ends, first = polygon_edges(polygons)
    counts = np.diff(np.append(first, len(starts)))
    scale = np.repeat(distances, counts)
    corners = np.array([p.min(0) for p in polygons]), np.array([p.max(0) for p in polygons])
    box_low, box_size, box_seen = _boxes(values.shape, *corners, distances)
    low, size, seen = _boxes(values.shape, np.minimum(starts, ends), np.maximum(starts, ends), scale)
    length = np.hypot(*(ends - starts).T)
    seen &= length > 1e-9  # repeated vertices: the neighbouring edges cover them
    direction = (ends - starts) / np.maximum(length, 1e-9)[:, None]
    along, across = _frame(direction, low - (starts + ends) / 2, 1 / scale)
    low -= np.repeat(box_low, counts, axis=0)  # band boxes relative to their polygon's box
    edges = list(zip(seen.tolist(), low.tolist(), size.tolist(), along.tolist(), across.tolist(),
                     (length / (2 * scale)).astype(np.float32)))
    grid_x, grid_y = _grids(size[seen])
    for (x0, y0), (box_w, box_h), box_in, begin, count in zip(
        box_low.tolist(), box_size.tolist(), box_seen.tolist(), first.tolist(), counts.tolist()
    ):
        if not box_in:
            continue
        squared = np.ones((box_h, box_w), np.float32)
        for edge_in, (bx, by), (w, h), (sx, sy, sc), (nx, ny, nc), half in edges[begin : begin + count]:
            if not edge_in:
                continue
            xs, ys = grid_x[:h, :w], grid_y[:h, :w]
            beyond = cv2.addWeighted(xs, sx, ys, sy, sc)
            np.abs(beyond, out=beyond)
            np.subtract(beyond, half, out=beyond)
            cv2.threshold(beyond, 0.0, 0.0, cv2.THRESH_TOZERO, dst=beyond)  # past the nearer end
            edge = cv2.addWeighted(xs, nx, ys, ny, nc)
            np.multiply(edge, edge, out=edge)
            cv2.accumulateSquare(beyond, edge)
            view = squared[by : by + h, bx : bx + w]
            cv2.min(view, edge, dst=view)
        _raise_values(values, x0, y0, squared, span, top)


def _boxes(
    shape: tuple[int, int], low: np.ndarray, high: np.ndarray, grow: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integer pixel boxes of (K, 2) float corners grown by (K,), clipped to the image.

    Returns:
        x0, y0 (K, 2) int; w, h (K, 2) int; and a (K,) bool mask of non-empty boxes.
    """
    height, width = shape
    start = np.maximum(np.ceil(low - grow[:, None]), 0)
    size = np.minimum(np.floor(high + grow[:, None]), [width - 1, height - 1]) - start + 1
    return start.astype(np.int64), size.astype(np.int64), (size > 0).all(1)


def _frame(direction: np.ndarray, corner: np.ndarray, inverse: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps from a box's local pixel offsets (x', y') to coordinates along and across
    a unit `direction` (K, 2), in units of D (`inverse` = 1 / D, (K,)), measured from a
    reference point; `corner` (K, 2) is the box corner minus that point, in pixels.

    Returns:
        along, across: (K, 3) coefficients (of x', of y', constant).
    """
    corner = corner * inverse[:, None]
    along = np.c_[direction * inverse[:, None], (corner * direction).sum(1)]
    cross = direction[:, 0] * corner[:, 1] - direction[:, 1] * corner[:, 0]
    across = np.c_[-direction[:, 1] * inverse, direction[:, 0] * inverse, cross]
    return along, across


def _grids(size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32 x' and y' pixel grids as large as the largest (w, h) in `size`, sliced per box."""
    height, width = int(size[:, 1].max(initial=1)), int(size[:, 0].max(initial=1))
    grid_x = np.broadcast_to(np.arange(width, dtype=np.float32), (height, width)).copy()
    grid_y = np.broadcast_to(np.arange(height, dtype=np.float32)[:, None], (height, width)).copy()
    return grid_x, grid_y
