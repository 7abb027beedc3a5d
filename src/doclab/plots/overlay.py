"""Detection overlays drawn with OpenCV alone (no matplotlib): evaluate's worst images, review pages, predict.

    canvas = draw_overlay(bgr, gt_polygons, ignore, predicted_polygons, "hmean 0.812")
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

GT_COLOUR = (0, 170, 0)  # BGR green
PRED_COLOUR = (0, 0, 230)  # BGR red
DONT_CARE_COLOUR = (160, 160, 160)


def draw_overlay(image: np.ndarray, gt: Sequence[np.ndarray], ignore: Sequence[bool],
                 predicted: Sequence[np.ndarray], caption: str) -> np.ndarray:
    """GT polygons (green; don't-care grey), predictions (red) and a caption in the top-left corner.

    Args:
        image: (H, W, 3) uint8 BGR.
        gt, ignore: GT polygons (N_i, 2) in pixels and their don't-care flags.
        predicted: detected polygons (M_j, 2) in pixels.
        caption: e.g. "hmean 0.812".
    Returns:
        A new (H, W, 3) uint8 BGR image.
    """
    canvas = image.copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 500))
    for polygon, dont_care in zip(gt, ignore):
        colour = DONT_CARE_COLOUR if dont_care else GT_COLOUR
        cv2.polylines(canvas, [np.round(polygon).astype(np.int32)], True, colour, thickness + 1)
    for polygon in predicted:
        cv2.polylines(canvas, [np.round(polygon).astype(np.int32)], True, PRED_COLOUR, thickness)
    scale = max(canvas.shape[:2]) / 1000
    (width, height), _ = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.rectangle(canvas, (0, 0), (width + 12, height + 16), (255, 255, 255), -1)
    cv2.putText(canvas, caption, (6, height + 8), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
    return canvas
