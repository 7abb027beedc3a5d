"""CLEval (Baek et al. 2020, "CLEval: Character-Level Evaluation for Text Detection and
Recognition Tasks"), detection part, vectorised with numpy.

Matching (section 3.1 of the paper): a GT box and a detection are candidates when the
detection covers at least one of the GT's pseudo-character centres (PCCs) and at least 30% of
the detection's area lies in the GT box (area-precision constraint). One-to-one, one-to-many
(split) and many-to-one (merge) matches are found as in the clovaai reference; scoring
(section 3.2) counts each covered PCC once and subtracts a granularity penalty of
(matches - 1) per split GT (recall) and per merging detection (precision).

The two reference implementations differ in how boxes become characters, see
`cleval_boxes`; the matching and scoring here are shared.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import shapely

from doclab.metrics.cleval.boxes import Detections, GroundTruth, Mode, prepare_detections, prepare_ground_truth
from doclab.metrics.cleval.geometry import box_overlap_pairs, points_in_polygons
from doclab.metrics.cleval.overlap import intersection_areas

AREA_PRECISION_CONSTRAINT = 0.3  # Baek et al. 2020; docs/cleval.md, fact 6


@dataclass
class CharCounts:
    """Character tallies of one image (or summed over images), as the references report them."""

    num_char_gt: int = 0
    num_char_det: int = 0
    num_char_tp: int = 0
    num_char_fp: int = 0
    gran_score_recall: int = 0
    gran_score_precision: int = 0
    num_splitted: int = 0
    num_merged: int = 0
    num_char_overlapped: int = 0

    def add(self, other: CharCounts) -> None:
        """Accumulate another tally into this one."""
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def scores(self) -> tuple[float, float, float]:
        """(recall, precision, hmean); 0 where a denominator is 0 (docs/cleval.md, fact 7)."""
        found = self.num_char_tp
        recall = max(0, found - self.gran_score_recall) / self.num_char_gt if self.num_char_gt else 0.0
        precision = max(0, found - self.gran_score_precision) / self.num_char_det if self.num_char_det else 0.0
        hmean = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        return float(recall), float(precision), float(hmean)


def _dont_care_intersections(gt: GroundTruth, det: Detections, inter: np.ndarray, ig: np.ndarray,
                             idet: np.ndarray) -> np.ndarray:
    """Recompute intersections with don't-care boxes after removing the cared GT boxes that
    overlap them, as the package does before matching (Area(DC) - Area(GT))."""
    rows = np.flatnonzero(gt.dont_care[ig])
    if len(rows) == 0:
        return inter
    geoms = [shapely.make_valid(shapely.Polygon(gt.polygons.points[g, :gt.polygons.counts[g]]))
             for g in range(len(gt.chars))]
    cared = [geoms[g] for g in np.flatnonzero(~gt.dont_care)]
    inter = inter.copy()
    for r in rows:
        region = geoms[ig[r]]
        for other in cared:
            if region.intersection(other).area > 0:
                region = region.difference(other)
        d = idet[r]
        poly = shapely.make_valid(shapely.Polygon(det.polygons.points[d, :det.polygons.counts[d]]))
        inter[r] = region.intersection(poly).area
    return inter


def _area_precision(gt: GroundTruth, det: Detections) -> np.ndarray:
    """(G, D) float32 share of each detection's area inside each GT box."""
    ap = np.zeros((len(gt.chars), len(det.polygons)), dtype=np.float32)
    ig, idet = box_overlap_pairs(gt.polygons.boxes, det.polygons.boxes)
    inter = intersection_areas(gt.polygons, det.polygons, ig, idet)
    inter = _dont_care_intersections(gt, det, inter, ig, idet)
    area = det.polygons.areas[idet]
    with np.errstate(divide="ignore", invalid="ignore"):
        ap[ig, idet] = np.where(area > 0, inter / area, 0.0)
    return ap


def _pcc_inclusion(gt: GroundTruth, det: Detections) -> tuple[np.ndarray, np.ndarray]:
    """(centre, detection) pairs where the detection contains the centre (fact 3).

    Candidates come from the centres sorted by y: each detection takes the run whose y lies
    within its box, then the x range, then the exact crossing test.
    """
    if len(gt.centres) == 0 or len(det.polygons) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    box = det.polygons.boxes
    order = np.argsort(gt.centres[:, 1], kind="stable")
    ys = gt.centres[order, 1]
    lo, hi = np.searchsorted(ys, box[:, 1], side="left"), np.searchsorted(ys, box[:, 3], side="right")
    runs = hi - lo
    idet = np.repeat(np.arange(len(box)), runs)
    ip = order[np.arange(runs.sum()) - np.repeat(np.cumsum(runs) - runs - lo, runs)]
    x = gt.centres[ip, 0]
    near = (box[idet, 0] <= x) & (x <= box[idet, 2])
    ip, idet = ip[near], idet[near]
    inside = points_in_polygons(gt.centres, det.polygons.points, ip, idet)
    return ip[inside], idet[inside]


def _dont_care_detections(gt: GroundTruth, ap: np.ndarray, pcc_sum: np.ndarray) -> np.ndarray:
    """Detections that mostly cover don't-care regions are left out of scoring."""
    dc = np.flatnonzero(gt.dont_care)
    if len(dc) == 0:
        return np.zeros(ap.shape[1], dtype=bool)
    covers = np.any(ap[dc] >= np.float32(AREA_PRECISION_CONSTRAINT), axis=0)
    shares = np.where(pcc_sum[dc] > 0, ap[dc], np.float32(0))
    summed = np.add.accumulate(shares, axis=0, dtype=np.float32)[-1]  # the package adds float32 in order
    return covers | (summed >= np.float32(AREA_PRECISION_CONSTRAINT))


def _match(ap: np.ndarray, pcc_sum: np.ndarray, valid_gt: np.ndarray, valid_det: np.ndarray) -> np.ndarray:
    """(G, D) match matrix: union of one-to-one, one-to-many and many-to-one matches."""
    candidate = (ap >= np.float32(AREA_PRECISION_CONSTRAINT)) & (pcc_sum > 0)
    valid = valid_gt[:, None] & valid_det[None, :]
    # one-to-one: the only candidate of its GT and of its detection, counting every box
    single = (candidate.sum(axis=1) == 1)[:, None] & (candidate.sum(axis=0) == 1)[None, :]
    match = candidate & single & valid
    # one-to-many: a GT with several candidate detections (split)
    split = candidate & valid
    match |= split & (split.sum(axis=1) >= 2)[:, None]
    # many-to-one: a detection covering PCCs of several GTs whose area shares add up (merge)
    touching = (pcc_sum > 0) & valid
    share = np.where(touching, ap.astype(np.float64), 0.0).sum(axis=0)
    match |= touching & ((touching.sum(axis=0) >= 2) & (share >= AREA_PRECISION_CONSTRAINT))[None, :]
    return match


def score_image(gt: GroundTruth, det: Detections) -> CharCounts:
    """Match one image's GT and detections and tally characters.

    Args:
        gt: prepared GT boxes.
        det: prepared detections.
    Returns:
        the image's CharCounts.
    """
    n_det = len(det.polygons)
    ap = _area_precision(gt, det)
    inc_p, inc_d = _pcc_inclusion(gt, det)
    pcc_sum = np.bincount(gt.owner[inc_p] * n_det + inc_d, minlength=ap.size).reshape(ap.shape)
    valid_gt, valid_det = ~gt.dont_care, ~_dont_care_detections(gt, ap, pcc_sum)
    match = _match(ap, pcc_sum, valid_gt, valid_det)
    kept = match[gt.owner[inc_p], inc_d]
    tp = int(np.count_nonzero(np.bincount(inc_p[kept], minlength=len(gt.centres))))
    per_det, per_gt = match.sum(axis=0)[valid_det], match.sum(axis=1)[valid_gt]
    unmatched = np.flatnonzero(valid_det & (match.sum(axis=0) == 0)) if n_det else np.zeros(0, dtype=np.int64)
    fp = int(det.false_positive_chars(unmatched).sum())
    return CharCounts(
        num_char_gt=int(gt.chars[valid_gt].sum()),
        num_char_det=int(kept.sum()) + fp,
        num_char_tp=tp,
        num_char_fp=fp,
        gran_score_recall=int(np.maximum(per_gt - 1, 0).sum()),
        gran_score_precision=int(np.maximum(per_det - 1, 0).sum()),
        num_splitted=int((per_gt > 1).sum()),
        num_merged=int((per_det > 1).sum()),
        num_char_overlapped=int(kept.sum()) - tp,
    )


class CLEvalMetric:
    """CLEval detection metric accumulated over images.

    Args:
        mode: "competition" (the receipt competition's polygon variant, the leaderboard number)
            or "cleval" (the clovaai `cleval` package on quads, with GT text lengths).
        max_detections: detections per image that count, in input order (fact 5).
    """

    def __init__(self, mode: Mode = "competition", max_detections: int = 500) -> None:
        if mode not in ("competition", "cleval"):
            raise ValueError(f"mode must be 'competition' or 'cleval', got {mode!r}")
        self.mode = mode
        self.max_detections = max_detections
        self.reset()

    def reset(self) -> None:
        """Forget all images seen so far."""
        self._per_image: list[tuple[float, float, float]] = []
        self._counts: list[CharCounts] = []
        self._totals = CharCounts()

    def update(self, gt_polygons: Sequence[np.ndarray], pred_polygons: Sequence[np.ndarray],
               gt_texts: Sequence[str | None] | None = None, gt_ignore: Sequence[bool] | None = None) -> dict:
        """Score one image and add it to the running totals.

        Args:
            gt_polygons: (N_i, 2) GT polygons in pixels.
            pred_polygons: (M_j, 2) detected polygons in pixels, in the detector's order.
            gt_texts: GT transcriptions ("cleval" mode: character counts; "###" is don't-care).
            gt_ignore: don't-care flags ("cleval" mode only; the competition has none, fact 6).
        Returns:
            {"recall", "precision", "hmean"} of this image.
        Raises:
            ValueError: non-finite coordinates.
        """
        return self.add(self.score(self.prepare(gt_polygons, gt_texts, gt_ignore), pred_polygons))

    def prepare(self, gt_polygons: Sequence[np.ndarray], gt_texts: Sequence[str | None] | None = None,
                gt_ignore: Sequence[bool] | None = None) -> GroundTruth:
        """One image's scorable GT (`prepare_ground_truth` in this mode), to score several detection sets against.

        Raises:
            ValueError: non-finite coordinates.
        """
        return prepare_ground_truth(gt_polygons, gt_texts, gt_ignore, self.mode)

    def score(self, gt: GroundTruth, pred_polygons: Sequence[np.ndarray]) -> CharCounts:
        """One image's character counts against prepared GT (`prepare`), not added to the totals.

        Raises:
            ValueError: non-finite coordinates.
        """
        return score_image(gt, prepare_detections(pred_polygons, self.mode, self.max_detections))

    def add(self, counts: CharCounts) -> dict:
        """Add one image's counts (`score`) to the running totals.

        Returns:
            {"recall", "precision", "hmean"} of this image.
        """
        self._totals.add(counts)
        self._counts.append(counts)
        scores = counts.scores()
        self._per_image.append(scores)
        return dict(zip(("recall", "precision", "hmean"), scores))

    def compute(self) -> dict:
        """Scores so far.

        Returns:
            "cleval/recall|precision|hmean": mean over images of the per-image scores (the
            competition's number); "cleval_global/recall|precision|hmean": from characters
            summed over all images; "cleval/num_split", "cleval/num_merge", "cleval/num_images".
        """
        per_image = np.array(self._per_image, dtype=np.float64).reshape(-1, 3)
        means = per_image.mean(axis=0) if len(per_image) else np.zeros(3)
        recall, precision, hmean = self._totals.scores()
        return {
            "cleval/recall": float(means[0]), "cleval/precision": float(means[1]), "cleval/hmean": float(means[2]),
            "cleval_global/recall": recall, "cleval_global/precision": precision, "cleval_global/hmean": hmean,
            "cleval/num_split": self._totals.num_splitted, "cleval/num_merge": self._totals.num_merged,
            "cleval/num_images": len(self._per_image),
        }

    def per_image(self) -> list[dict]:
        """One row per image in update order: {"recall", "precision", "hmean"} plus its CharCounts fields.

        The counts are what the global scores sum, so a bootstrap over images can recompute them
        (`doclab.metrics.bootstrap`).
        """
        return [{**dict(zip(("recall", "precision", "hmean"), scores)),
                 **{f.name: getattr(counts, f.name) for f in fields(counts)}}
                for scores, counts in zip(self._per_image, self._counts)]

    def counts(self) -> dict:
        """Character tallies summed over all images, named as in the reference outputs."""
        return {f.name: getattr(self._totals, f.name) for f in fields(self._totals)}
