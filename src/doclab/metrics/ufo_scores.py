"""Score a UFO prediction file against a UFO ground-truth file (`doclab eval-det`)."""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import shapely

from doclab.data.formats.ufo import read_ufo
from doclab.data.records import DataError
from doclab.metrics.bootstrap import DETECTION_STATISTICS, RESAMPLES, compare_tables, detection_table
from doclab.metrics.cleval.boxes import Mode
from doclab.metrics.detection import DetectionScores

# Detections are clipped to this many image sizes around the image: a point far outside cannot be
# text of the image, and huge coordinates (1e15) would otherwise drown the metric's arithmetic.
CLIP_MARGIN = 1.0


def polygon_problems(polygons: Sequence[np.ndarray]) -> Counter:
    """How many polygons have fewer than 3 points, zero area, or cross themselves (they are still scored)."""
    found: Counter = Counter()
    for points in polygons:
        if len(points) < 3:
            found["fewer than 3 points"] += 1
            continue
        shape = shapely.Polygon(points)
        if shape.area == 0:
            found["zero area"] += 1
        elif not shape.is_valid:
            found["self-intersecting"] += 1
    return found


def _clip(detections: list[np.ndarray], size: tuple[int, int] | None) -> tuple[list[np.ndarray], int]:
    """Detections clipped to CLIP_MARGIN image sizes around the image; how many were clipped."""
    if size is None:
        return detections, 0
    width, height = size
    low, high = np.array([-CLIP_MARGIN * width, -CLIP_MARGIN * height]), np.array([(1 + CLIP_MARGIN) * width,
                                                                                   (1 + CLIP_MARGIN) * height])
    clipped = [np.clip(points, low, high) for points in detections]
    return clipped, sum(not np.array_equal(a, b) for a, b in zip(clipped, detections))


def _sizes(gt: dict, pred: dict) -> dict[str, tuple[int, int] | None]:
    """Each image's (width, height): from either file, else the extent of its GT words (None without words)."""
    sizes = {}
    for name, (size, words) in gt.items():
        size = size or (pred[name][0] if name in pred else None)
        if size is None and words:
            corner = np.max([np.nanmax(w.points, axis=0) for w in words if len(w.points)], axis=0)
            size = (max(int(corner[0]), 1), max(int(corner[1]), 1))
        sizes[name] = size
    return sizes


def compare_ufo(gt_path: str | Path, a_path: str | Path, b_path: str | Path, mode: Mode = "competition",
                resamples: int = RESAMPLES, seed: int = 0, notes: list[str] | None = None) -> tuple[dict, dict]:
    """Score two prediction files on the same ground truth and bootstrap B against A over the images.

    Returns:
        (A's `evaluate_ufo` metrics, `compare_tables` of B against A for every detection metric).
    Raises:
        DataError: as `score_ufo`, for either file.
    """
    rows_a = score_ufo(gt_path, a_path, mode, notes)
    rows_b = score_ufo(gt_path, b_path, mode, notes)
    comparison = compare_tables(detection_table(rows_a.per_image()), detection_table(rows_b.per_image()),
                                DETECTION_STATISTICS, resamples, seed)
    return rows_a.compute(), comparison


def evaluate_ufo(gt_path: str | Path, pred_path: str | Path, mode: Mode = "competition",
                 notes: list[str] | None = None) -> dict:
    """CLEval and IoU-0.5 scores of a prediction file: `score_ufo(...).compute()`."""
    return score_ufo(gt_path, pred_path, mode, notes).compute()


def score_ufo(gt_path: str | Path, pred_path: str | Path, mode: Mode = "competition",
              notes: list[str] | None = None) -> DetectionScores:
    """CLEval and IoU-0.5 scores of a prediction file, split-wide and per image.

    Every GT image counts; one missing from the predictions has no detections (and scores 0,
    as in the competition). Detections are taken in file order (the first 500 count).

    Args:
        gt_path: UFO JSON with the ground truth (transcriptions, "###" / illegibility for
            don't-care regions where the mode uses them).
        pred_path: UFO JSON with the detections.
        mode: CLEval variant, "competition" or "cleval" (see `CLEvalMetric`).
        notes: receives one warning line per kind of suspect input (degenerate polygons, clipped
            detections), with counts.
    Returns:
        The scores of every GT image in GT file order: `.compute()` is one flat dict of
        `CLEvalMetric.compute()` and `IoUMetric.compute()` keys, `.per_image()` its rows.
    Raises:
        DataError: unreadable or malformed file, no GT words at all, a prediction for an image the
            GT lacks, or non-finite coordinates; the message names the file and the image.
    """
    gt = read_ufo(gt_path)
    pred = read_ufo(pred_path)
    if not any(words for _, words in gt.values()):
        raise DataError(f"{gt_path}: no ground-truth words in {len(gt)} image(s): nothing to score against")
    unknown = [name for name in pred if name not in gt]
    if unknown:
        raise DataError(f"{pred_path}: image {unknown[0]!r} is not in the ground truth {gt_path}")
    scores = DetectionScores(mode=mode)
    problems = {gt_path: Counter(), pred_path: Counter()}
    clipped = 0
    for name, size in _sizes(gt, pred).items():
        words = gt[name][1]
        polygons = [w.points for w in words]
        texts, ignore = [w.text for w in words], [w.ignore for w in words]
        detections = [w.points for w in pred[name][1]] if name in pred else []
        problems[gt_path] += polygon_problems(polygons)
        problems[pred_path] += polygon_problems(detections)
        try:
            detections, count = _clip(detections, size)
            clipped += count
            scores.update(name, polygons, detections, gt_texts=texts, gt_ignore=ignore)
        except ValueError as exc:
            source = gt_path if str(exc).startswith("GT") else pred_path
            raise DataError(f"{source}: image {name!r}: {exc}") from None
    _report(problems, clipped, pred_path, notes)
    return scores


def _report(problems: dict[str | Path, Counter], clipped: int, pred_path: str | Path, notes: list[str] | None) -> None:
    if notes is None:
        return
    for path, counts in problems.items():
        if counts:
            shown = ", ".join(f"{n} with {kind}" if kind.startswith("fewer") else f"{n} {kind}"
                              for kind, n in sorted(counts.items()))
            notes.append(f"{path}: degenerate polygons scored as given: {shown}")
    if clipped:
        notes.append(f"{pred_path}: {clipped} detection(s) reach more than one image size outside their image: "
                     "clipped there")
