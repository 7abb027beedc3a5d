"""Images -> model inputs with numpy and OpenCV, as an `ImageInput` of the deploy manifest says.

    batch, scales = input_batch(images, spec)      # (B, 3, H, W) float32, per-image scale
    views = tta_view(batch, "rot90")                # the classifier's test-time views

These reproduce the evaluation transforms the models were trained and validated with
(albumentations LongestMaxSize + PadIfNeeded, ImageNet normalisation) pixel for pixel; a test
holds them to it, and the export stage's parity check catches any drift end to end.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doclab.data.pixels import input_scale, input_shape, normalise_chw, pad_to, resize_scaled
from doclab.deploy.manifest import ImageInput


def input_batch(images: Sequence[np.ndarray], spec: ImageInput) -> tuple[np.ndarray, list[float]]:
    """(H, W, 3) uint8 RGB images -> ((B, 3, H', W') float32 inputs, per image the original -> input scale).

    (H', W') is the largest of the images' input shapes ((size, size) under `long_side`).
    """
    scales = [input_scale(*image.shape[:2], spec.size, spec.resize, spec.max_side) for image in images]
    shapes = [input_shape(*image.shape[:2], spec.size, spec.resize, spec.max_side) for image in images]
    height, width = max(h for h, _ in shapes), max(w for _, w in shapes)
    batch = np.empty((len(images), 3, height, width), np.float32)
    for index, (image, scale) in enumerate(zip(images, scales)):
        resized = resize_scaled(image, scale, spec.interpolation)
        batch[index] = normalise_chw(pad_to(resized, height, width, spec.pad, spec.fill), spec.mean, spec.std)
    return batch, scales


def tta_view(batch: np.ndarray, view: str) -> np.ndarray:
    """One test-time view of a (B, 3, S, S) batch, as the classifier's `apply_view` makes it in torch."""
    if view == "identity":
        return batch
    if view == "hflip":
        return np.ascontiguousarray(batch[..., ::-1])
    if view == "vflip":
        return np.ascontiguousarray(batch[..., ::-1, :])
    turns = {"rot90": 1, "rot180": 2, "rot270": 3}.get(view)
    if turns is None:
        raise ValueError(f"unknown TTA view {view!r}")
    return np.ascontiguousarray(np.rot90(batch, turns, axes=(-2, -1)))
