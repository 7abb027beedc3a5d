"""Images -> model inputs with numpy and OpenCV, as an `ImageInput` of the deploy manifest says.

    batch, scales = input_batch(images, spec)      # (B, 3, S, S) float32, per-image scale
    views = tta_view(batch, "rot90")                # the classifier's test-time views

These reproduce the evaluation transforms the models were trained and validated with
(albumentations LongestMaxSize + PadIfNeeded, ImageNet normalisation) pixel for pixel; a test
holds them to it, and the export stage's parity check catches any drift end to end.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from doclab.data.pixels import normalise_chw, pad_square, resize_longest
from doclab.deploy.manifest import ImageInput


def input_batch(images: Sequence[np.ndarray], spec: ImageInput) -> tuple[np.ndarray, list[float]]:
    """(H, W, 3) uint8 RGB images -> ((B, 3, S, S) float32 inputs, per image the original -> input scale)."""
    batch, scales = np.empty((len(images), 3, spec.size, spec.size), np.float32), []
    for index, image in enumerate(images):
        resized, scale = resize_longest(image, spec.size, spec.interpolation)
        batch[index] = normalise_chw(pad_square(resized, spec.size, spec.pad, spec.fill), spec.mean, spec.std)
        scales.append(scale)
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
