"""Turn raw GT/detection polygons into what CLEval scores: integer polygons, character
counts, pseudo-character centres (PCCs) and the price of an unmatched detection.

Two variants (see docs/cleval.md, whose numbered facts the comments cite):
- "competition": the receipt competition's polygon CLEval. Transcriptions are ignored; a box
  holds round(0.5 + max(ar, 1/ar)) characters (cap 100) with `ar` from the minimum-area
  rectangle (`cleval_hull`); PCCs are interpolated along the top and bottom polylines.
- "cleval": the clovaai `cleval` package (0.1.1), quads only, float32 inputs; a GT box holds
  len(text) characters (pseudo count with cap 10 when there is no text or it is don't-care),
  `ar` is mean horizontal over mean vertical side, PCCs are spread along the mid-line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import cv2
import numpy as np

from doclab.metrics.cleval.geometry import PolygonBatch, cyclic, finite_polygons
from doclab.metrics.cleval.hull import EPS32, variant_box_values

Mode = Literal["competition", "cleval"]
DONT_CARE_TEXT = "###"
_VERTICAL_AR_THRESHOLD = 0.5  # Baek et al. 2020: boxes with ar below this are read top-down


@dataclass(frozen=True)
class GroundTruth:
    """Scorable GT boxes of one image.

    Attributes:
        polygons: integer-truncated polygons.
        chars: (G,) character count per box.
        centres: (P, 2) pseudo-character centres of all boxes, box by box.
        owner: (P,) index of the box each centre belongs to.
        dont_care: (G,) boxes excluded from scoring (cleval mode only).
    """

    polygons: PolygonBatch
    chars: np.ndarray
    centres: np.ndarray
    owner: np.ndarray
    dont_care: np.ndarray


@dataclass(frozen=True)
class Detections:
    """Scorable detections of one image: integer polygons plus what unmatched ones cost.

    Attributes:
        polygons: integer-truncated polygons.
        raw: (D, K, 2) the polygons before truncation, padded (for the aspect ratio).
        mode: the CLEval variant.
    """

    polygons: PolygonBatch
    raw: np.ndarray
    mode: Mode

    def false_positive_chars(self, rows: np.ndarray) -> np.ndarray:
        """Characters charged for each unmatched detection in `rows` (docs/cleval.md, fact 8)."""
        if len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        if self.mode == "competition":
            return variant_box_values(self.raw[rows], self.polygons.counts[rows], _competition_fp_cost)
        ar = _package_aspect_ratios(self.raw[rows])
        return np.minimum(np.rint(0.5 + 1 / (1e-5 + ar)), 10).astype(np.int64)


def scorable_polygons(polygons: Sequence[np.ndarray], mode: Mode,
                      what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The polygons a variant scores, padded, with their vertex counts and input positions.

    Both variants skip polygons with fewer than 4 points (fact 4). The package takes 4-point
    quads only, in float32: longer polygons become their minimum-area rectangle (OpenCV).

    Args:
        polygons: (n_i, 2) vertex arrays.
        mode: CLEval variant.
        what: "GT" or "prediction", for error messages.
    Returns:
        (points (N, K, 2) float64, counts (N,), rows (N,) positions in `polygons`).
    Raises:
        ValueError: non-finite coordinates.
    """
    points, counts = finite_polygons(polygons, what)
    rows = np.flatnonzero(counts >= 4)
    if len(rows) == 0:
        return np.zeros((0, 4, 2)), np.zeros(0, dtype=np.int64), rows
    points, counts = points[rows, :int(counts[rows].max())], counts[rows]
    if mode == "competition":
        return points, counts, rows
    quads = points[:, :4].astype(np.float32)
    for i in np.flatnonzero(counts > 4):
        quads[i] = cv2.boxPoints(cv2.minAreaRect(points[i, :counts[i]].astype(np.float32)))
    return quads.astype(np.float64), np.full(len(rows), 4), rows


def _package_aspect_ratios(quads: np.ndarray) -> np.ndarray:
    """Mean top/bottom side over mean left/right side, from float32 coordinate differences."""
    q = quads.astype(np.float32)
    side = np.sqrt(np.sum((q - cyclic(q)).astype(np.float64) ** 2, axis=-1))
    return ((side[:, 0] + side[:, 2]) / 2 + 1e-5) / ((side[:, 1] + side[:, 3]) / 2 + 1e-5)


def _competition_char_count(ar: np.ndarray) -> np.ndarray:
    """round(0.5 + max(ar, 1/(ar + eps))) capped at 100, in float32 (fact 1)."""
    longest = np.maximum(ar, np.float32(1) / (ar + EPS32))
    return np.minimum(np.rint(np.float32(0.5) + longest), 100).astype(np.int64)


def _competition_fp_cost(ar: np.ndarray) -> np.ndarray:
    """round(0.5 + 1/(ar + eps)) capped at 100, in float32 (fact 8)."""
    return np.minimum(np.rint(np.float32(0.5) + np.float32(1) / (ar + EPS32)), 100).astype(np.int64)


def _competition_centres(points: np.ndarray, counts: np.ndarray, chars: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCCs of the polygon variant (fact 2).

    The first half of the vertices is the top polyline, the second half reversed the bottom
    one; each of the S sections of a line is resampled at `chars` steps, section starts and
    the line's end exact, points in between truncated to int. Centre c averages resampled
    points c*S and (c+1)*S of both lines, summed in the variant's order.

    Args:
        points: (N, K, 2) padded polygons; counts: (N,) vertex counts; chars: (N,) characters.
    Returns:
        (centres (P, 2), owner (P,)), box by box.
    """
    centres = np.zeros((int(chars.sum()), 2))
    owner = np.repeat(np.arange(len(counts)), chars)
    first = np.cumsum(chars) - chars
    for size in np.unique(counts):
        rows = np.flatnonzero(counts == size)
        half, sections = size // 2, size // 2 - 1
        local = np.repeat(np.arange(len(rows)), chars[rows])
        c = np.arange(len(local)) - np.repeat(np.cumsum(chars[rows]) - chars[rows], chars[rows])
        n = chars[rows][local]
        total = np.zeros((len(local), 2))
        for line in (points[rows, :half], points[rows, half:size][:, ::-1]):
            for m in (c * sections, (c + 1) * sections):
                sec = np.minimum(m // n, sections - 1)
                step = m - sec * n
                start, stop = line[local, sec], line[local, sec + 1]
                inner = np.trunc(start + ((stop - start) / n[:, None]) * step[:, None])
                exact = np.where((m == sections * n)[:, None], line[local, -1], start)
                total = total + np.where(((step == 0) | (m == sections * n))[:, None], exact, inner)
        centres[first[rows][local] + c] = total / 4
    return centres, owner


def _package_centres(quads: np.ndarray, chars: np.ndarray, ar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCCs of the package: evenly spaced on the line joining the mid-points of the left and
    right sides (top and bottom sides for vertical boxes), in float32 like its inputs."""
    q = quads.astype(np.float32)
    start_corners = np.where((ar >= _VERTICAL_AR_THRESHOLD)[:, None], np.array([[0, 3]]), np.array([[3, 2]]))
    end_corners = np.where((ar >= _VERTICAL_AR_THRESHOLD)[:, None], np.array([[1, 2]]), np.array([[0, 1]]))
    rows = np.arange(len(q))[:, None]
    first = (q[rows, start_corners[:, :1]][:, 0] + q[rows, start_corners[:, 1:]][:, 0]) / np.float32(2)
    last = (q[rows, end_corners[:, :1]][:, 0] + q[rows, end_corners[:, 1:]][:, 0]) / np.float32(2)
    owner = np.repeat(np.arange(len(q)), chars)
    c = (np.arange(len(owner)) - np.repeat(np.cumsum(chars) - chars, chars)).astype(np.float32)
    unit = (last[owner] - first[owner]) / chars[owner, None].astype(np.float32)
    centres = first[owner] + unit / np.float32(2) + unit * c[:, None]
    return centres.astype(np.float64), owner


def prepare_ground_truth(polygons: Sequence[np.ndarray], texts: Sequence[str | None] | None,
                         ignore: Sequence[bool] | None, mode: Mode) -> GroundTruth:
    """Scorable GT of one image.

    Args:
        polygons: (N_i, 2) vertex arrays.
        texts: transcriptions (used by the "cleval" mode only, fact 1).
        ignore: don't-care flags (used by the "cleval" mode only, fact 6).
        mode: CLEval variant.
    Returns:
        GroundTruth of the polygons the variant scores.
    Raises:
        ValueError: non-finite coordinates.
    """
    points, counts, rows = scorable_polygons(polygons, mode, "GT")
    if mode == "competition":
        chars = variant_box_values(points, counts, _competition_char_count)
        centres, owner = _competition_centres(points, counts, chars)
        dont_care = np.zeros(len(rows), dtype=bool)
    else:
        ar = _package_aspect_ratios(points)
        text = [texts[i] for i in rows] if texts is not None else [None] * len(rows)
        dont_care = np.array([bool(ignore[i]) for i in rows] if ignore is not None else [False] * len(rows), dtype=bool)
        dont_care |= np.array([t == DONT_CARE_TEXT for t in text], dtype=bool)
        pseudo = np.minimum(np.rint(0.5 + np.maximum(ar, 1 / ar)), 10).astype(np.int64)
        chars = np.array([p if d or t is None else len(t) for p, d, t in zip(pseudo, dont_care, text)], dtype=np.int64)
        centres, owner = _package_centres(points, chars, ar)
    return GroundTruth(PolygonBatch.from_padded(np.trunc(points), counts), chars, centres, owner, dont_care)


def prepare_detections(polygons: Sequence[np.ndarray], mode: Mode, max_detections: int) -> Detections:
    """Scorable detections of one image: the first `max_detections` in input order (fact 5),
    then the variant's polygon filter (raises ValueError on non-finite coordinates)."""
    points, counts, _ = scorable_polygons(list(polygons)[:max_detections], mode, "prediction")
    return Detections(PolygonBatch.from_padded(np.trunc(points), counts), points, mode)
