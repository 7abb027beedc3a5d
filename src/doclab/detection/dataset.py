"""The DBNet detection dataset over `data/processed/` (images/, annotations.json, splits.json).

Randomness: `__getitem__` takes an (index, seed) pair and runs the whole augmentation from
that seed, which the training loader's `SeededSampler` draws in the main process; the batches
therefore do not depend on the number of workers or on whether they persist. A plain index
(evaluation, tests) is its own seed.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from doclab.config import InputParams
from doclab.data.formats.ufo import load_json, read_ufo
from doclab.data.pixels import input_scale, input_shape
from doclab.data.records import DataError
from doclab.detection.augment import apply_transform
from doclab.detection.targets import make_db_targets
from doclab.engine.loading import normalise, reseed, split_item

TARGET_KEYS = ("shrink_ratio", "thresh_min", "thresh_max", "min_text_size")
MAP_KEYS = ("prob_map", "prob_mask", "thresh_map", "thresh_mask")


def _split_annotations(root: Path, split: str) -> dict[str, tuple]:
    """{key: (size, words)} for the split's images that have detection annotations, in split order."""
    splits = load_json(root / "splits.json")
    if not isinstance(splits, dict) or split not in splits:
        valid = ", ".join(map(repr, splits)) if isinstance(splits, dict) else "none"
        raise ValueError(f"{root / 'splits.json'}: no split {split!r} (splits: {valid})")
    annotations = read_ufo(root / "annotations.json")
    selected = {key: annotations[key] for key in splits[split] if key in annotations}
    if not selected:
        raise DataError(f"{root / 'splits.json'}: {split} split has no detection images ({len(splits[split])} listed, "
                        f"none with annotations): raise data.split.{split} or list ids in data.split.file")
    return selected


def load_ground_truth(root: str | Path, split: str) -> dict[str, tuple[list[np.ndarray], list[bool]]]:
    """Ground truth for scoring, in processed-image pixels.

    Args:
        root: the processed folder.
        split: 'train', 'val' or 'test'.
    Returns:
        {key: (polygons (N_i, 2) float64, ignore flags)} for the split's detection images.
    Raises:
        ValueError: unknown split, or a split without detection annotations.
    """
    selected = _split_annotations(Path(root), split)
    return {key: ([w.points for w in words], [w.ignore for w in words]) for key, (_, words) in selected.items()}


def has_detection_data(root: str | Path) -> bool:
    """Whether the processed folder has any image with detection annotations (text polygons).

    A data set without any (classification only) makes the detection stages write "no detection
    data" outputs (see `model_file.no_detection_data`); a data set with some but none in a split
    the stage needs is still an error.
    """
    return bool(read_ufo(Path(root) / "annotations.json"))


def _target_kwargs(params: Any) -> dict[str, float]:
    """shrink_ratio, thresh_min, thresh_max, min_text_size from a mapping or an object (DetectorParams)."""
    get = params.__getitem__ if isinstance(params, Mapping) else lambda name: getattr(params, name)
    return {name: float(get(name)) for name in TARGET_KEYS}


def _input_rule(params: Any) -> InputParams:
    """`detector.input` of a mapping or an object (DetectorParams); the default when absent."""
    rule = params.get("input") if isinstance(params, Mapping) else getattr(params, "input", None)
    if isinstance(rule, Mapping):
        return InputParams(**rule)
    return rule or InputParams()


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; DataError naming the file if it cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise DataError(f"{path}: missing or unreadable image (run the preprocess stage again)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class DetectionDataset(Dataset):
    """DBNet samples (image + probability/threshold targets) of one split.

    Args:
        root: the processed folder (images/, annotations.json, splits.json).
        split: 'train', 'val' or 'test'; only its keys present in annotations.json are used.
        image_size: S, the size the transforms were built with (training output S x S).
        transform: `build_train_transform(aug, S, rule)` or `build_eval_transform(S, rule)`, with
            the same input rule as `target_params.input`.
        target_params: mapping or object with shrink_ratio, thresh_min, thresh_max,
            min_text_size and optionally the input rule `input` (e.g. `params.detector`).
    Raises:
        ValueError: unknown split. DataError: no detection images in it.
    """

    def __init__(self, root: Path, split: str, image_size: int, transform: A.Compose, target_params: Any):
        self.root = Path(root)
        self.split = split
        self.image_size = image_size
        self.transform = transform
        self.target_kwargs = _target_kwargs(target_params)
        self.rule = _input_rule(target_params)
        selected = _split_annotations(self.root, split)
        self.keys = list(selected)
        self.sizes = [size for size, _ in selected.values()]
        self.words = [words for _, words in selected.values()]

    def _input_shape(self, height: int, width: int) -> tuple[int, int]:
        return input_shape(height, width, self.image_size, self.rule.resize, self.rule.max_side)

    def eval_shapes(self) -> list[tuple[int, int]]:
        """(H, W) of each image's eval-transform input, in order (from annotations.json's sizes)."""
        shapes = []
        for key, size in zip(self.keys, self.sizes):
            width, height = size if size else read_rgb(self.root / "images" / key).shape[1::-1]
            shapes.append(self._input_shape(height, width))
        return shapes

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        """One sample.

        Args:
            item: an index, or an (index, augmentation seed) pair (see `doclab.engine.loading.split_item`).
        Returns:
            `image` (3, H, W) float32 normalised; `prob_map`, `prob_mask`, `thresh_map`,
            `thresh_mask` (H, W) float32, where (H, W) is (S, S) for training and `long_side`
            and `data.pixels.input_shape` for `short_side` evaluation; `scale` float
            (`data.pixels.input_scale`: eval-transform pixels = processed pixels * scale);
            `original_size` (h, w) of the processed image; `key` str; `index` int.
        """
        index, seed = split_item(item)
        key, words = self.keys[index], self.words[index]
        image = read_rgb(self.root / "images" / key)
        height, width = image.shape[:2]
        reseed(self.transform, seed)
        image, polygons, ignore = apply_transform(self.transform, image, [w.points for w in words],
                                                  [w.ignore for w in words])
        size = self.image_size
        if image.shape[:2] not in ((size, size), self._input_shape(height, width)):
            raise ValueError(f"transform returned a {image.shape[1]}x{image.shape[0]} image, expected {size}x{size} or "
                             "the eval input shape (build it with the dataset's image_size and input rule)")
        targets = make_db_targets(polygons, ignore, image.shape[0], image.shape[1], **self.target_kwargs)
        return {
            "image": normalise(image),
            **{name: torch.from_numpy(targets[name]) for name in MAP_KEYS},
            "scale": input_scale(height, width, size, self.rule.resize, self.rule.max_side),
            "original_size": (height, width),
            "key": key,
            "index": index,
        }


# The value of a zero (padding) pixel after normalisation, per channel: padding a batch to its
# largest input with it gives the same tensor as padding each image before normalising.
_PAD_VALUE = normalise(np.zeros((1, 1, 3), np.uint8))[:, 0, 0]


def pad_images(images: list[torch.Tensor]) -> torch.Tensor:
    """(3, H_i, W_i) normalised images -> (B, 3, H, W), each at the top-left of the largest shape."""
    height, width = max(image.shape[1] for image in images), max(image.shape[2] for image in images)
    batch = _PAD_VALUE[None, :, None, None].repeat(len(images), 1, height, width)
    for index, image in enumerate(images):
        batch[index, :, :image.shape[1], :image.shape[2]] = image
    return batch


def collate_detection(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, padding (bottom, right) to the batch's largest input; keep metadata as lists.

    Returns:
        `image` (B, 3, H, W) and the four maps (B, H, W) as tensors (padding: a normalised zero
        pixel, zero maps and masks); `scale` list[float], `original_size` list[(h, w)],
        `key` list[str], `index` list[int].
    """
    out: dict[str, Any] = {"image": pad_images([sample["image"] for sample in batch])}
    height, width = out["image"].shape[2:]
    for name in MAP_KEYS:
        out[name] = torch.zeros(len(batch), height, width)
        for index, sample in enumerate(batch):
            out[name][index, :sample[name].shape[0], :sample[name].shape[1]] = sample[name]
    for name in ("scale", "original_size", "key", "index"):
        out[name] = [sample[name] for sample in batch]
    return out
