"""Document-type samples from data/processed: labels, albumentations transforms, class balance, TTA views.

Randomness follows the detection dataset: `__getitem__` takes an (index, seed) pair, the seed drawn
in the main process by the training loader's `SeededSampler`, and runs the whole augmentation from
it, so batches do not depend on the DataLoader workers. A plain index is its own seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import albumentations as A
import cv2
import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold
from torch import Tensor
from torch.utils.data import Dataset, WeightedRandomSampler

from doclab.classification.logits import VIEWS
from doclab.config import ClassifierAugmentParams, ConfigError
from doclab.data.formats.labels import read_label_csv
from doclab.data.images import read_image
from doclab.data.records import DataError
from doclab.engine.loading import normalise, reseed, split_item
from doclab.io import read_json

# Paper is white: rotation corners and the square padding look like an empty margin, not a black frame.
PAPER = 255
BLUR_LIMIT = 5
NOISE_STD = (0.02, 0.08)
PERSPECTIVE_SCALE = (0.02, 0.05)
JPEG_QUALITY_MAX = 95


@dataclass(frozen=True)
class LabelledSplits:
    """The classification view of a processed folder.

    Attributes:
        classes: class names (classes.json order); the label of a class is its index.
        ids: {split: labelled image ids, in splits.json order}; unlabelled images are left out.
        labels: {image id: class index}.
    """

    classes: tuple[str, ...]
    ids: dict[str, list[str]]
    labels: dict[str, int]


def has_classification_data(data_dir: str | Path) -> bool:
    """Whether the processed folder has any document-type label: classes.json is not the empty list.

    A data set without labels (detection only) makes the classification stages write "no
    classification data" outputs (see `no_data`); anything else goes to `load_labelled_splits`.
    """
    return read_json(Path(data_dir) / "classes.json", " (run the preprocess stage)") != []


def load_labelled_splits(data_dir: str | Path) -> LabelledSplits:
    """Read labels.csv, classes.json and splits.json and check they agree.

    Args:
        data_dir: the processed folder.
    Returns:
        The LabelledSplits.
    Raises:
        DataError: a missing or malformed file, a label not in classes.json, or a class without
            any training image (one line naming the file and the class).
    """
    root = Path(data_dir)
    classes = read_json(root / "classes.json", " (run the preprocess stage)")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes) or not classes:
        raise DataError(f"{root / 'classes.json'}: expected a non-empty list of class names")
    splits = read_json(root / "splits.json", " (run the preprocess stage)")
    if not isinstance(splits, dict) or "train" not in splits:
        raise DataError(f"{root / 'splits.json'}: expected {{'train': [ids], 'val': [...], 'test': [...]}}")
    names, problems = read_label_csv(root / "labels.csv", None)
    if problems:
        raise DataError(f"{problems[0].line()}")
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({name for name in names.values() if name not in index})
    if unknown:
        raise DataError(f"{root / 'labels.csv'}: class {unknown[0]!r} is not in classes.json ({', '.join(classes)})")
    labels = {image_id: index[name] for image_id, name in names.items()}
    ids = {split: [i for i in keys if i in labels] for split, keys in splits.items()}
    trained = {labels[i] for i in ids["train"]}
    missing = [name for name in classes if index[name] not in trained]
    if missing:
        raise DataError(f"{root / 'labels.csv'}: class {missing[0]!r} has no training image "
                        f"(splits.json 'train' has none labelled with it)")
    return LabelledSplits(tuple(classes), ids, labels)


class QuarterTurn(A.RandomRotate90):
    """A 90, 180 or 270 degree turn (uniform among the three): RandomRotate90 without the no-op turn."""

    def get_params(self) -> dict[str, int]:
        return {"factor": self.py_random.randint(1, 3)}


def _resize_and_pad(image_size: int, pixel: list[A.BasicTransform]) -> list[A.BasicTransform]:
    # Centred padding: a flipped or turned square then looks like a flipped or turned page, so
    # the TTA views (applied to the padded tensor) match what training showed.
    return [
        A.LongestMaxSize(max_size=image_size, interpolation=cv2.INTER_AREA),
        *pixel,
        A.PadIfNeeded(image_size, image_size, border_mode=cv2.BORDER_CONSTANT, fill=PAPER),
    ]


def build_train_transform(aug: ClassifierAugmentParams, image_size: int) -> A.Compose:
    """Training pipeline: page turns and flips, small rotation, perspective, resize, pixel noise, pad.

    Args:
        aug: `classifier.augment`.
        image_size: S; the output is (S, S, 3) uint8 with the page centred on white.
    Returns:
        An albumentations Compose taking `image`.
    """
    border = {"border_mode": cv2.BORDER_CONSTANT, "fill": PAPER}
    spatial = [
        QuarterTurn(p=aug.rot90_p),
        A.HorizontalFlip(p=aug.hflip_p),
        A.VerticalFlip(p=aug.vflip_p),
        A.Rotate(limit=aug.rotate_limit, p=aug.rotate_p, **border),
        A.Perspective(scale=PERSPECTIVE_SCALE, keep_size=True, p=aug.perspective_p, **border),
    ]
    # Pixel changes run before the padding so the padded margin stays exactly white, as at inference.
    pixel = [
        A.RandomBrightnessContrast(p=aug.brightness_contrast_p),
        A.Blur(blur_limit=(3, BLUR_LIMIT), p=aug.blur_p),
        A.GaussNoise(std_range=NOISE_STD, per_channel=False, p=aug.noise_p),
        A.ImageCompression(quality_range=(aug.jpeg_quality_min, max(aug.jpeg_quality_min, JPEG_QUALITY_MAX)),
                           p=aug.jpeg_p),
    ]
    return A.Compose([*spatial, *_resize_and_pad(image_size, pixel)])


def build_eval_transform(image_size: int) -> A.Compose:
    """Deterministic pipeline: LongestMaxSize(S) + centred white padding to (S, S)."""
    return A.Compose(_resize_and_pad(image_size, []))


class ClassificationDataset(Dataset):
    """(image, label) samples of one split; images without a label are skipped.

    Args:
        data_dir: the processed folder (images/, labels.csv, classes.json, splits.json).
        split: 'train', 'val' or 'test'.
        image_size: S, the side of the square output.
        transform: `build_train_transform(...)` or `build_eval_transform(S)`.
    Attributes:
        ids: the split's labelled image ids.
        labels: (N,) int64 class indices.
        classes: class names.
    Raises:
        DataError: see `load_labelled_splits`; an unknown split.
    """

    def __init__(self, data_dir: str | Path, split: str, image_size: int, transform: A.Compose):
        self.root = Path(data_dir)
        table = load_labelled_splits(self.root)
        if split not in table.ids:
            raise DataError(f"{self.root / 'splits.json'}: no split {split!r} (splits: {', '.join(table.ids)})")
        self.ids = table.ids[split]
        self.labels = np.array([table.labels[i] for i in self.ids], np.int64)
        self.classes = table.classes
        self.image_size = image_size
        self.transform = transform

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[Tensor, int]:
        """One sample.

        Args:
            item: an index, or an (index, augmentation seed) pair (see `doclab.engine.loading.split_item`).
        Returns:
            (image (3, S, S) float32, ImageNet-normalised; class index).
        """
        index, seed = split_item(item)
        # JPEGs are DCT-decoded near the training size: 1024 px pages at S=224 decode ~10x faster.
        pixels, _, _ = read_image(self.root / "images" / self.ids[index], max_side=self.image_size)
        reseed(self.transform, seed)
        image = self.transform(image=pixels)["image"]
        if image.shape[:2] != (self.image_size, self.image_size):
            raise ValueError(f"transform returned a {image.shape[1]}x{image.shape[0]} image, expected "
                             f"{self.image_size}x{self.image_size} (build it with the dataset's image_size)")
        return normalise(image), int(self.labels[index])


def class_weights(setting: str | tuple[float, ...], labels: np.ndarray, num_classes: int) -> Tensor | None:
    """Per-class loss weights from `classifier.class_weights`.

    Args:
        setting: 'none', 'auto' (inverse class frequency, normalised to mean 1) or one weight per class.
        labels: (N,) training class indices.
        num_classes: C.
    Returns:
        (C,) float32 weights, or None for 'none'.
    Raises:
        ConfigError: an explicit list whose length is not C.
    """
    if setting == "none":
        return None
    if setting == "auto":
        counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
        inverse = 1.0 / np.maximum(counts, 1.0)
        return torch.tensor(inverse / inverse.mean(), dtype=torch.float32)
    if len(setting) != num_classes:
        raise ConfigError(f"classifier.class_weights: got {len(setting)} weights, expected one per class "
                          f"({num_classes})")
    return torch.tensor(setting, dtype=torch.float32)


def balanced_sampler(labels: np.ndarray, num_classes: int, generator: torch.Generator) -> WeightedRandomSampler:
    """Draw len(labels) samples with replacement, every class equally likely (`classifier.weighted_sampler`).

    Args:
        labels: (N,) class indices of the dataset being sampled.
        num_classes: C.
        generator: the generator the loader's `SeededSampler` reseeds every epoch, so the draws follow
            the run's seed and epoch (and replay on resume).
    """
    counts = np.bincount(labels, minlength=num_classes)
    weights = 1.0 / counts[labels]
    return WeightedRandomSampler(torch.tensor(weights, dtype=torch.float64), len(labels), replacement=True,
                                 generator=generator)


def fold_indices(labels: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit indices, held-out indices) per fold of the training images.

    Args:
        labels: (N,) class indices of the training split.
        folds: k; 1 = one run on all images, none held out.
        seed: shuffling seed of the stratified split.
    Returns:
        k pairs of sorted int64 index arrays.
    Raises:
        ConfigError: a class with fewer than k training images.
    """
    everything = np.arange(len(labels))
    if folds == 1:
        return [(everything, np.zeros(0, np.int64))]
    counts = np.bincount(labels)
    if counts[counts > 0].min() < folds:
        raise ConfigError(f"classifier.folds: got {folds}, but a class has only {counts[counts > 0].min()} "
                          "training image(s)")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(fit, held) for fit, held in splitter.split(everything, labels)]


def apply_view(images: Tensor, view: str) -> Tensor:
    """One test-time view of a batch.

    Args:
        images: (B, 3, S, S).
        view: a name in `logits.VIEWS`: identity, hflip (mirror left-right), vflip (upside-down
            mirror), rot90 / rot180 / rot270 (counter-clockwise turns).
    Returns:
        (B, 3, S, S), a new tensor except for identity.
    Raises:
        ValueError: unknown view.
    """
    if view == "identity":
        return images
    if view == "hflip":
        return torch.flip(images, dims=(-1,))
    if view == "vflip":
        return torch.flip(images, dims=(-2,))
    turns = {"rot90": 1, "rot180": 2, "rot270": 3}.get(view)
    if turns is None:
        raise ValueError(f"unknown TTA view {view!r}, expected one of {', '.join(VIEWS)}")
    return torch.rot90(images, turns, dims=(-2, -1))
