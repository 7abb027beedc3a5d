"""ICDAR 2015 style IoU detection metric (Karatzas et al. 2015, the RRC "DetEval IoU" script).

Per image: detections whose area lies more than half inside a don't-care GT region are
dropped; then GT and detections are matched one-to-one, greedily in index order, when their
IoU reaches the threshold. Recall, precision and hmean come from match counts summed over
all images.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import shapely

from doclab.metrics.cleval.boxes import DONT_CARE_TEXT
from doclab.metrics.cleval.geometry import PolygonBatch, box_overlap_pairs, finite_polygons, shapely_rings
from doclab.metrics.cleval.overlap import intersection_areas

IOU_THRESHOLD = 0.5
DONT_CARE_AREA_SHARE = 0.5  # ICDAR 2015: a detection mostly inside a don't-care box is ignored


def _hmean(recall: float, precision: float) -> float:
    return 2 * recall * precision / (recall + precision) if recall + precision else 0.0


def _care_mask(count: int, texts: Sequence[str | None] | None, ignore: Sequence[bool] | None) -> np.ndarray:
    """GT boxes that count: not flagged don't-care and not transcribed "###"."""
    flagged = [bool(ignore[i]) if ignore is not None else False for i in range(count)]
    marked = [texts[i] == DONT_CARE_TEXT if texts is not None else False for i in range(count)]
    return ~np.array(flagged, dtype=bool) & ~np.array(marked, dtype=bool)


def _region_areas(batch: PolygonBatch) -> np.ndarray:
    """Areas of the regions the polygons enclose (self-intersecting rings made valid first,
    as `intersection_areas` does)."""
    areas = batch.areas.copy()
    rows = np.flatnonzero(~batch.simple)
    if len(rows):
        areas[rows] = shapely.area(shapely.make_valid(shapely_rings(batch.points, batch.counts, rows)))
    return areas


def _overlaps(gt: PolygonBatch, det: PolygonBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """IoU and intersection over detection area for every pair whose boxes overlap.

    Returns:
        (ig, idet, iou, share) with share = intersection / detection area.
    """
    ig, idet = box_overlap_pairs(gt.boxes, det.boxes)
    inter = intersection_areas(gt, det, ig, idet)
    gt_area, det_area = _region_areas(gt)[ig], _region_areas(det)[idet]
    union = gt_area + det_area - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
        share = np.where(det_area > 0, inter / det_area, 0.0)
    return ig, idet, iou, share


class IoUMetric:
    """IoU-0.5 detection metric accumulated over images.

    Args:
        iou_threshold: minimum IoU for a match (inclusive).
        max_detections: detections per image that count, in input order (as for CLEval).
    """

    def __init__(self, iou_threshold: float = IOU_THRESHOLD, max_detections: int = 500) -> None:
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.reset()

    def reset(self) -> None:
        """Forget all images seen so far."""
        self.num_gt = self.num_det = self.num_matched = 0
        self._per_image: list[dict] = []

    def update(self, gt_polygons: Sequence[np.ndarray], pred_polygons: Sequence[np.ndarray],
               gt_texts: Sequence[str | None] | None = None, gt_ignore: Sequence[bool] | None = None) -> dict:
        """Score one image and add it to the running totals.

        Args:
            gt_polygons: (N_i, 2) GT polygons; polygons with fewer than 3 points are skipped.
            pred_polygons: (M_j, 2) detected polygons, in the detector's order.
            gt_texts: GT transcriptions; "###" marks a don't-care region.
            gt_ignore: don't-care flags.
        Returns:
            {"recall", "precision", "hmean"} of this image (1.0 where there is nothing to find).
        Raises:
            ValueError: non-finite coordinates.
        """
        return self.add(self.score(self.prepare(gt_polygons, gt_texts, gt_ignore), pred_polygons))

    def prepare(self, gt_polygons: Sequence[np.ndarray], gt_texts: Sequence[str | None] | None = None,
                gt_ignore: Sequence[bool] | None = None) -> tuple[PolygonBatch, np.ndarray]:
        """One image's GT polygons (3 points or more) and their care flags, to score several detection sets against.

        Raises:
            ValueError: non-finite coordinates.
        """
        gt_points, gt_counts = finite_polygons(gt_polygons, "GT")
        keep_gt = gt_counts >= 3
        return (PolygonBatch.from_padded(gt_points[keep_gt], gt_counts[keep_gt]),
                _care_mask(len(gt_counts), gt_texts, gt_ignore)[keep_gt])

    def score(self, prepared: tuple[PolygonBatch, np.ndarray], pred_polygons: Sequence[np.ndarray]) -> dict:
        """One image's {"iou_gt", "iou_det", "iou_matched"} counts against prepared GT (`prepare`), not added.

        Raises:
            ValueError: non-finite coordinates.
        """
        gt, care = prepared
        det_points, det_counts = finite_polygons(list(pred_polygons)[:self.max_detections], "prediction")
        keep_det = det_counts >= 3
        det = PolygonBatch.from_padded(det_points[keep_det], det_counts[keep_det])
        ig, idet, iou, share = _overlaps(gt, det)
        det_care = np.ones(len(det), dtype=bool)
        det_care[idet[~care[ig] & (share > DONT_CARE_AREA_SHARE)]] = False
        matched_gt, matched_det = np.zeros(len(gt), dtype=bool), np.zeros(len(det), dtype=bool)
        hits = (iou >= self.iou_threshold) & care[ig] & det_care[idet]
        for g, d in zip(ig[hits], idet[hits]):  # row-major order: GT by GT, as ICDAR 2015
            if not matched_gt[g] and not matched_det[d]:
                matched_gt[g] = matched_det[d] = True
        return {"iou_gt": int(care.sum()), "iou_det": int(det_care.sum()), "iou_matched": int(matched_gt.sum())}

    def add(self, counts: dict) -> dict:
        """Add one image's counts (`score`) to the running totals.

        Returns:
            {"recall", "precision", "hmean"} of this image (1.0 where there is nothing to find).
        """
        n_gt, n_det, n_match = counts["iou_gt"], counts["iou_det"], counts["iou_matched"]
        self.num_gt += n_gt
        self.num_det += n_det
        self.num_matched += n_match
        recall = n_match / n_gt if n_gt else 1.0
        precision = n_match / n_det if n_det else (1.0 if n_gt == 0 else 0.0)
        self._per_image.append(dict(counts))
        return {"recall": float(recall), "precision": float(precision), "hmean": _hmean(recall, precision)}

    def per_image(self) -> list[dict]:
        """One {"iou_gt", "iou_det", "iou_matched"} row of counts per image, in update order."""
        return [dict(row) for row in self._per_image]

    def compute(self) -> dict:
        """{"iou/recall", "iou/precision", "iou/hmean"} from match counts over all images
        (0 where a denominator is 0)."""
        recall = self.num_matched / self.num_gt if self.num_gt else 0.0
        precision = self.num_matched / self.num_det if self.num_det else 0.0
        return {"iou/recall": float(recall), "iou/precision": float(precision), "iou/hmean": _hmean(recall, precision)}
