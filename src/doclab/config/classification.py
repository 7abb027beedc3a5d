"""Schema of the classification sections: `classifier` (members, fine-tuning, loss, augment,
train) and `ensemble`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doclab.config.detection import DetectorTrainParams
from doclab.config.validate import ConfigError
from doclab.config.validate import within as _within


@dataclass(frozen=True)
class ClassifierAugmentParams:
    """Document augmentations (`classifier.augment`); every `*_p` is a probability.

    Attributes:
        rot90_p: probability of a 90/180/270 degree turn (uniform among the three).
        hflip_p: probability of a horizontal flip (mirrored scans).
        vflip_p: probability of a vertical flip.
        rotate_limit: max small rotation in degrees.
        rotate_p: probability of a small rotation.
        perspective_p: probability of a mild perspective warp.
        brightness_contrast_p: probability of a brightness/contrast change.
        blur_p: probability of a blur.
        noise_p: probability of Gaussian noise.
        jpeg_p: probability of JPEG re-compression.
        jpeg_quality_min: lowest JPEG quality drawn.
    """

    rot90_p: float = _within(0.5, 0.0, 1.0)
    hflip_p: float = _within(0.2, 0.0, 1.0)
    vflip_p: float = _within(0.2, 0.0, 1.0)
    rotate_limit: float = _within(10.0, 0.0, 180.0)
    rotate_p: float = _within(0.3, 0.0, 1.0)
    perspective_p: float = _within(0.2, 0.0, 1.0)
    brightness_contrast_p: float = _within(0.3, 0.0, 1.0)
    blur_p: float = _within(0.1, 0.0, 1.0)
    noise_p: float = _within(0.1, 0.0, 1.0)
    jpeg_p: float = _within(0.2, 0.0, 1.0)
    jpeg_quality_min: int = _within(50, 1, 100)


@dataclass(frozen=True)
class ClassifierTrainParams(DetectorTrainParams):
    """The shared training-loop settings (`classifier.train`) with classifier defaults; `lr` is the
    rate after unfreezing (or throughout when `classifier.freeze_epochs` is 0)."""

    epochs: int = _within(10, 1, 10_000)
    lr: float = _within(2.0e-3, 0.0, 10.0)
    effective_batch: int = _within(8, 1, 4096)


@dataclass(frozen=True)
class ClassifierParams:
    """Document-type classifiers: one `train_classifier@<member>` stage per timm model name."""

    members: list[str] = ("resnet18",)
    pretrained: bool = False
    image_size: int = _within(192, 32, 2048)
    batch_size: int | Literal["auto"] = "auto"
    freeze_epochs: int = _within(0, 0, 10_000)
    unfreeze_blocks: int = _within(0, 0, 100)
    lr_head: float = _within(1.0e-3, 0.0, 10.0)
    loss: Literal["ce", "focal"] = "ce"
    label_smoothing: float = _within(0.1, 0.0, 0.99)
    focal_gamma: float = _within(2.0, 0.0, 10.0)
    class_weights: Literal["none", "auto"] | list[float] = "none"
    weighted_sampler: bool = False
    mixup_alpha: float = _within(0.0, 0.0, 10.0)
    cutmix_alpha: float = _within(0.0, 0.0, 10.0)
    mix_p: float = _within(0.5, 0.0, 1.0)
    folds: int = _within(1, 1, 20)
    snapshots: int = _within(3, 1, 100)
    augment: ClassifierAugmentParams = ClassifierAugmentParams()
    train: ClassifierTrainParams = ClassifierTrainParams()

    def check(self, prefix: str) -> None:
        if not self.members:
            raise ConfigError(f"{prefix}.members: empty list, expected at least one timm model name")
        for index, name in enumerate(self.members):
            if not name or not all(c.isalnum() or c in "_.-" for c in name):
                raise ConfigError(f"{prefix}.members[{index}]: got {name!r}, expected a timm model name")
        if len(set(self.members)) != len(self.members):
            raise ConfigError(f"{prefix}.members: duplicate member names {list(self.members)}")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ConfigError(f"{prefix}.batch_size: got {self.batch_size}, expected 'auto' or an integer >= 1")
        if isinstance(self.class_weights, tuple) and not all(w > 0 for w in self.class_weights):
            raise ConfigError(f"{prefix}.class_weights: got {list(self.class_weights)}, expected positive weights")
        if self.freeze_epochs >= self.train.epochs:
            raise ConfigError(f"{prefix}.freeze_epochs: got {self.freeze_epochs}, expected fewer than "
                              f"train.epochs ({self.train.epochs})")


@dataclass(frozen=True)
class EnsembleParams:
    """`ensemble`: combine the members' logits, method chosen on validation macro-F1."""

    method: Literal["auto", "mean", "weighted", "vote", "stacking"] = "auto"
    tta: Literal["none", "flips", "rot90"] = "none"
    stacking_c: float = _within(1.0, 1.0e-6, 1.0e6)
    cv_folds: int = _within(5, 2, 50)
