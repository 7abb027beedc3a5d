"""Pixel arithmetic shared by training, evaluation and the torch-free deployment runtime.

    scale = input_scale(h, w, 512, "long_side")                # or "short_side", 2000 (`detector.input`)
    resized = resize_scaled(image, scale, "linear")            # albumentations' resize sizes
    square = pad_to(resized, 512, 512, "top_left", 0)
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


RESIZE_RULES = ("long_side", "short_side")
# Under `short_side` the input sides are padded to multiples of the deepest backbone stride, so the
# FPN's upsampled maps line up with the shallower ones.
STRIDE = 32


def input_scale(height: int, width: int, size: int, resize: str = "long_side", max_side: int = 0) -> float:
    """Image -> model-input scale factor of an (height, width) image under a resize rule.

    Args:
        size: S. `long_side`: the longest side becomes S. `short_side`: the shortest side becomes
            S, unless that makes the longest exceed `max_side` (then the longest becomes `max_side`).
    """
    if resize == "long_side":
        return size / max(height, width)
    if resize == "short_side":
        return min(size / min(height, width), max_side / max(height, width))
    raise ValueError(f"unknown resize rule {resize!r}, expected one of {RESIZE_RULES}")


def scaled_shape(height: int, width: int, scale: float) -> tuple[int, int]:
    """(round(height * scale), round(width * scale)), at least 1: albumentations' resize sizes."""
    return max(1, round(height * scale)), max(1, round(width * scale))


def input_shape(height: int, width: int, size: int, resize: str = "long_side", max_side: int = 0) -> tuple[int, int]:
    """(H, W) of the padded model input: (S, S) under `long_side`, the resized image rounded up to
    multiples of STRIDE under `short_side`."""
    if resize == "long_side":
        return size, size
    new_height, new_width = scaled_shape(height, width, input_scale(height, width, size, resize, max_side))
    return -(-new_height // STRIDE) * STRIDE, -(-new_width // STRIDE) * STRIDE


def resize_scaled(image: np.ndarray, scale: float, interpolation: str) -> np.ndarray:
    """An (H, W, 3) image resized by `scale` to `scaled_shape` (itself when the size does not change)."""
    height, width = image.shape[:2]
    new_height, new_width = scaled_shape(height, width, scale)
    if (new_height, new_width) == (height, width):
        return image
    return cv2.resize(image, (new_width, new_height), interpolation=_INTERPOLATION[interpolation])


def pad_to(image: np.ndarray, height: int, width: int, position: str, fill: int) -> np.ndarray:
    """Pad an (h, w, 3) image with h <= height, w <= width to (height, width, 3): bottom-right or evenly around."""
    rows, cols = image.shape[:2]
    if position == "top_left":
        top, left = 0, 0
    else:  # centre: the odd pixel goes to the bottom / right, as PadIfNeeded's "center"
        top, left = (height - rows) // 2, (width - cols) // 2
    out = np.full((height, width, image.shape[2]), fill, dtype=image.dtype)
    out[top:top + rows, left:left + cols] = image
    return out


def normalise_chw(image: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """(H, W, 3) uint8 -> (3, H, W) float32 (pixel / 255 - mean) / std, computed as one multiply-add per plane."""
    # float32 scalar arithmetic throughout, so the result is bit-identical to the training loader's.
    mean32, std32 = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    out = np.empty((3, *image.shape[:2]), np.float32)
    for channel, plane in enumerate(cv2.split(image)):
        np.multiply(plane, np.float32(1) / (np.float32(255) * std32[channel]), out=out[channel], dtype=np.float32)
        out[channel] -= mean32[channel] / std32[channel]
    return out
