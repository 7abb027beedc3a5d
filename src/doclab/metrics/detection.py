"""CLEval and IoU-0.5 together, per image: the split metrics and one row of scores and counts per image.

    scores = DetectionScores()
    scores.update("a.jpg", gt_polygons, detections, gt_ignore=flags)
    scores.compute()    # {"cleval/hmean", ..., "cleval_global/...", "iou/hmean", ...}
    scores.per_image()  # [{"image", "recall", "precision", "hmean", "detections", "words",
                        #   "num_char_gt", ..., "iou_gt", "iou_det", "iou_matched"}, ...]

The rows carry every count the split metrics sum, so `doclab.metrics.bootstrap` can recompute any
split metric on resampled images, and two runs' rows can be compared image by image.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from doclab.metrics.cleval.boxes import GroundTruth, Mode
from doclab.metrics.cleval.geometry import PolygonBatch
from doclab.metrics.cleval.metric import CharCounts, CLEvalMetric
from doclab.metrics.iou import IoUMetric


@dataclass(frozen=True)
class PreparedImage:
    """One image's GT, prepared for both metrics (`DetectionScores.prepare`)."""

    cleval: GroundTruth
    iou: tuple[PolygonBatch, np.ndarray]
    words: int


@dataclass(frozen=True)
class ImageScore:
    """One image's counts for one detection set (`DetectionScores.score`), ready to `add`."""

    cleval: CharCounts
    iou: dict
    detections: int
    words: int


class DetectionScores:
    """Accumulates CLEval (in `mode`) and IoU-0.5 over images, keeping one row per image.

    Args:
        mode: CLEval variant, "competition" (the leaderboard's) or "cleval" (see `CLEvalMetric`).
    """

    def __init__(self, mode: Mode = "competition") -> None:
        self.mode = mode
        self.reset()

    def reset(self) -> None:
        """Forget all images seen so far."""
        self._cleval = CLEvalMetric(mode=self.mode)
        self._iou = IoUMetric()
        self._images: list[tuple[str, int, int]] = []

    def update(self, image: str, gt_polygons: Sequence[np.ndarray], detections: Sequence[np.ndarray],
               gt_texts: Sequence[str | None] | None = None, gt_ignore: Sequence[bool] | None = None) -> dict:
        """Score one image.

        Args:
            image: the image's key (its row's "image").
            gt_polygons: (N_i, 2) GT polygons in pixels.
            detections: (M_j, 2) detected polygons in the same pixels, in the detector's order.
            gt_texts: GT transcriptions (CLEval's "cleval" mode counts their characters; "###" is don't-care).
            gt_ignore: don't-care flags (IoU always; CLEval in "cleval" mode only).
        Returns:
            The image's CLEval {"recall", "precision", "hmean"}.
        Raises:
            ValueError: non-finite coordinates (the message starts with "GT" or "prediction").
        """
        return self.add(image, self.score(self.prepare(gt_polygons, gt_texts, gt_ignore), detections))

    def prepare(self, gt_polygons: Sequence[np.ndarray], gt_texts: Sequence[str | None] | None = None,
                gt_ignore: Sequence[bool] | None = None) -> PreparedImage:
        """One image's GT as both metrics score it: prepare once, then `score` any number of detection sets.

        Raises:
            ValueError: non-finite GT coordinates.
        """
        return PreparedImage(self._cleval.prepare(gt_polygons, gt_texts, gt_ignore),
                             self._iou.prepare(gt_polygons, gt_texts, gt_ignore), len(gt_polygons))

    def score(self, prepared: PreparedImage, detections: Sequence[np.ndarray]) -> ImageScore:
        """One image's CLEval and IoU counts for `detections` (as in `update`), not added to the totals.

        Raises:
            ValueError: non-finite coordinates (the message starts with "prediction").
        """
        return ImageScore(self._cleval.score(prepared.cleval, detections), self._iou.score(prepared.iou, detections),
                          len(detections), prepared.words)

    def add(self, image: str, scored: ImageScore) -> dict:
        """Add one image's counts (`score`) as the row of `image`.

        Returns:
            The image's CLEval {"recall", "precision", "hmean"}.
        """
        scores = self._cleval.add(scored.cleval)
        self._iou.add(scored.iou)
        self._images.append((image, scored.detections, scored.words))
        return scores

    def compute(self) -> dict:
        """`CLEvalMetric.compute()` keys plus `IoUMetric.compute()` keys over every image so far."""
        return {**self._cleval.compute(), **self._iou.compute()}

    def per_image(self) -> list[dict]:
        """One row per image, in update order: its key, CLEval scores, polygon counts, CLEval and IoU counts."""
        return [{"image": image, **cleval, "detections": detections, "words": words, **iou}
                for (image, detections, words), cleval, iou
                in zip(self._images, self._cleval.per_image(), self._iou.per_image())]
