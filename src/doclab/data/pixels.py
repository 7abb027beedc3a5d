"""Pixel arithmetic shared by training, evaluation and the torch-free deployment runtime.

    resized, scale = resize_longest(image, 512, "linear")     # albumentations LongestMaxSize's sizes
    square = pad_square(resized, 512, "top_left", 0)
    chw = normalise_chw(square, IMAGENET_MEAN, IMAGENET_STD)   # (3, S, S) float32

numpy and OpenCV only: `doclab.deploy` runs these without torch, and the training loader's
`normalise` is `normalise_chw` with the ImageNet statistics, so both see identical inputs.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def resize_longest(image: np.ndarray, size: int, interpolation: str) -> tuple[np.ndarray, float]:
    """Scale an (H, W, 3) image so its longest side is `size`; returns (image, scale).

    Sizes are round(side * scale), at least 1, the rule albumentations' LongestMaxSize uses.
    """
    height, width = image.shape[:2]
    scale = size / max(height, width)
    new_height, new_width = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_height, new_width) == (height, width):
        return image, scale
    return cv2.resize(image, (new_width, new_height), interpolation=_INTERPOLATION[interpolation]), scale


def pad_square(image: np.ndarray, size: int, position: str, fill: int) -> np.ndarray:
    """Pad an (h, w, 3) image with h, w <= size to (size, size, 3): bottom-right or evenly around."""
    height, width = image.shape[:2]
    if position == "top_left":
        top, left = 0, 0
    else:  # centre: the odd pixel goes to the bottom / right, as PadIfNeeded's "center"
        top, left = (size - height) // 2, (size - width) // 2
    out = np.full((size, size, image.shape[2]), fill, dtype=image.dtype)
    out[top:top + height, left:left + width] = image
    return out


def normalise_chw(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(S, S, 3) uint8 -> (3, S, S) float32 (pixel / 255 - mean) / std, computed as one multiply-add per plane."""
    # float32 scalar arithmetic throughout, so the result is bit-identical to the training loader's.
    mean32, std32 = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    out = np.empty((3, *image.shape[:2]), np.float32)
    for channel, plane in enumerate(cv2.split(image)):
        np.multiply(plane, np.float32(1) / (np.float32(255) * std32[channel]), out=out[channel], dtype=np.float32)
        out[channel] -= mean32[channel] / std32[channel]
    return out
