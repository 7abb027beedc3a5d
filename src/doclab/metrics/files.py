"""Score a UFO prediction file against a UFO ground-truth file (`doclab eval-det`)."""
from __future__ import annotations

from pathlib import Path

from doclab.data.formats.ufo import read_ufo
from doclab.data.records import DataError
from doclab.metrics.cleval.boxes import Mode
from doclab.metrics.cleval.metric import CLEvalMetric
from doclab.metrics.iou import IoUMetric


def evaluate_ufo(gt_path: str | Path, pred_path: str | Path, mode: Mode = "competition") -> dict:
    """CLEval and IoU-0.5 scores of a prediction file.

    Every GT image counts; one missing from the predictions has no detections (and scores 0,
    as in the competition). Detections are taken in file order (the first 500 count).

    Args:
        gt_path: UFO JSON with the ground truth (transcriptions, "###" / illegibility for
            don't-care regions where the mode uses them).
        pred_path: UFO JSON with the detections.
        mode: CLEval variant, "competition" or "cleval" (see `CLEvalMetric`).
    Returns:
        one flat dict: `CLEvalMetric.compute()` keys plus `IoUMetric.compute()` keys.
    Raises:
        DataError: unreadable or malformed file, a prediction for an image the GT lacks, or
            non-finite coordinates; the message names the file and the image.
    """
    gt = read_ufo(gt_path)
    pred = read_ufo(pred_path)
    unknown = [name for name in pred if name not in gt]
    if unknown:
        raise DataError(f"{pred_path}: image {unknown[0]!r} is not in the ground truth {gt_path}")
    cleval, iou = CLEvalMetric(mode=mode), IoUMetric()
    for name, (_, words) in gt.items():
        polygons = [w.points for w in words]
        texts, ignore = [w.text for w in words], [w.ignore for w in words]
        detections = [w.points for w in pred[name][1]] if name in pred else []
        try:
            cleval.update(polygons, detections, gt_texts=texts, gt_ignore=ignore)
            iou.update(polygons, detections, gt_texts=texts, gt_ignore=ignore)
        except ValueError as exc:
            source = gt_path if str(exc).startswith("GT") else pred_path
            raise DataError(f"{source}: image {name!r}: {exc}") from None
    return {**cleval.compute(), **iou.compute()}
