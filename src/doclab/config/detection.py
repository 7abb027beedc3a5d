"""Schema of the detection sections: `detector` (model, targets, loss, augment, train),
`postprocess` and `tune`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doclab.config.validate import ConfigError
from doclab.config.validate import within as _within


@dataclass(frozen=True)
class AugmentParams:
    """Training augmentations (`detector.augment`); every `*_p` is a probability.

    Attributes:
        rotate_limit: max rotation in degrees (uniform in [-limit, limit]).
        rotate_p: probability of a rotation.
        perspective_min: min corner jitter of the perspective warp (fraction of the side).
        perspective_max: max corner jitter of the perspective warp.
        perspective_p: probability of a perspective warp.
        scale_min: min zoom of the affine warp (same on both axes).
        scale_max: max zoom of the affine warp; > 1 zooms in and cuts border words.
        shear_limit: max shear in degrees.
        affine_p: probability of the affine (zoom + shear) warp.
        brightness: max brightness change (fraction of the value range).
        contrast: max contrast change (fraction).
        brightness_contrast_p: probability of a brightness/contrast change.
        clahe_p: probability of CLAHE (local contrast equalisation).
        noise_std: max std of Gaussian noise (fraction of the value range).
        noise_p: probability of Gaussian noise.
        blur_limit: largest blur kernel (odd, >= 3 pixels at the training size).
        blur_p: probability of a box or motion blur (one of the two).
        crop_p: probability of a crop whose edges pass only between words.
        crop_min_area: min area of that crop as a fraction of the image.
    """

    rotate_limit: float = _within(5.0, 0.0, 180.0)
    rotate_p: float = _within(0.3, 0.0, 1.0)
    perspective_min: float = _within(0.02, 0.0, 0.5)
    perspective_max: float = _within(0.05, 0.0, 0.5)
    perspective_p: float = _within(0.2, 0.0, 1.0)
    scale_min: float = _within(0.8, 0.1, 10.0)
    scale_max: float = _within(1.2, 0.1, 10.0)
    shear_limit: float = _within(5.0, 0.0, 45.0)
    affine_p: float = _within(0.3, 0.0, 1.0)
    brightness: float = _within(0.2, 0.0, 1.0)
    contrast: float = _within(0.2, 0.0, 1.0)
    brightness_contrast_p: float = _within(0.5, 0.0, 1.0)
    clahe_p: float = _within(0.1, 0.0, 1.0)
    noise_std: float = _within(0.05, 0.0, 1.0)
    noise_p: float = _within(0.2, 0.0, 1.0)
    blur_limit: int = _within(5, 3, 31)
    blur_p: float = _within(0.1, 0.0, 1.0)
    crop_p: float = _within(0.3, 0.0, 1.0)
    crop_min_area: float = _within(0.5, 0.05, 1.0)

    def check(self, prefix: str = "detector.augment") -> None:
        """Cross-field checks (ranges are in the field metadata, see `doclab.config.build`).

        Raises:
            ConfigError: naming the offending key.
        """
        for low, high in (("perspective_min", "perspective_max"), ("scale_min", "scale_max")):
            if getattr(self, low) > getattr(self, high):
                raise ConfigError(f"{prefix}.{low}: got {getattr(self, low)}, expected at most {high} "
                                  f"({getattr(self, high)})")
        if self.blur_limit % 2 == 0:
            raise ConfigError(f"{prefix}.blur_limit: got {self.blur_limit}, expected an odd kernel size")


@dataclass(frozen=True)
class DetectorTrainParams:
    """Detector training (`detector.train`); `effective_batch` stays fixed whatever `batch_size` is."""

    epochs: int = _within(10, 1, 10_000)
    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = _within(3.0e-3, 0.0, 10.0)
    weight_decay: float = _within(1.0e-4, 0.0, 1.0)
    momentum: float = _within(0.9, 0.0, 1.0)
    scheduler: Literal["cosine", "step", "exponential", "plateau", "warmup_cosine", "warmup_linear",
                       "cosine_restarts"] = "warmup_cosine"
    warmup_epochs: float = _within(1.0, 0.0, 1000.0)
    effective_batch: int = _within(8, 1, 4096)
    grad_clip: float = _within(5.0, 0.0, 1.0e6)
    ema: bool = False
    ema_decay: float = _within(0.999, 0.0, 0.99999)
    amp: bool = True
    channels_last: bool = True
    patience: int = _within(0, 0, 10_000)
    # DataLoader worker processes; 'auto' is resolved per machine by `doclab.engine.loading.resolve_workers`.
    workers: int | Literal["auto"] = _within("auto", 0, 64)
    init_from: str = ""
    val_every: int = _within(1, 1, 10_000)


@dataclass(frozen=True)
class LossParams:
    """DBNet loss weights (`detector.loss`): L = prob_weight L_prob + thresh_weight L_thresh + binary_weight L_binary."""

    prob_weight: float = _within(5.0, 0.0, 1000.0)
    thresh_weight: float = _within(10.0, 0.0, 1000.0)
    binary_weight: float = _within(1.0, 0.0, 1000.0)
    ohem_ratio: float = _within(3.0, 0.0, 100.0)


@dataclass(frozen=True)
class PostprocessParams:
    """DB post-processing: probability map -> polygons (`postprocess`, and `detector.val_postprocess`,
    the fixed setting training validates with, so tuning `postprocess` never retrains)."""

    thresh: float = _within(0.3, 0.0, 1.0)
    box_thresh: float = _within(0.3, 0.0, 1.0)
    box_unclip_ratio: float = _within(1.5, 0.0, 10.0)
    polygon_unclip_ratio: float = _within(2.0, 0.0, 10.0)
    polygon: bool = False
    max_candidates: int = _within(1000, 1, 100_000)
    min_size: float = _within(3.0, 0.0, 1000.0)
    score_mode: Literal["fast", "slow"] = "fast"


@dataclass(frozen=True)
class InputParams:
    """How an image becomes the detector's input (`detector.input`), at training, tuning and inference.

    Attributes:
        resize: `long_side` fits the longest side to `image_size` and pads to a square (the whole
            image in one S x S input); `short_side` scales the shortest side to `image_size` (capped
            so the longest is at most `max_side`), as PP-OCR's `limit_type: min`: training takes
            random S x S crops of it, inference the whole image padded to a multiple of 32.
        max_side: the cap on the longest side under `short_side` (ignored by `long_side`).
    """

    resize: Literal["long_side", "short_side"] = "long_side"
    max_side: int = _within(2000, 32, 16384)


@dataclass(frozen=True)
class DetectorParams:
    """DBNet model and targets (Liao et al., 2020), its loss and its training."""

    decoder: Literal["fpn", "unet", "fpn_asf"] = "fpn"
    decoder_channels: int = _within(64, 16, 1024)
    backbone_weights: str = ""
    k: float = _within(50.0, 1.0, 200.0)
    shrink_ratio: float = _within(0.4, 0.05, 0.95)
    thresh_min: float = _within(0.3, 0.0, 1.0)
    thresh_max: float = _within(0.7, 0.0, 1.0)
    min_text_size: float = _within(3.0, 0.0, 100.0)
    input: InputParams = InputParams()
    loss: LossParams = LossParams()
    augment: AugmentParams = AugmentParams()
    train: DetectorTrainParams = DetectorTrainParams()
    val_postprocess: PostprocessParams = PostprocessParams()

    def check(self, prefix: str) -> None:
        if self.thresh_min >= self.thresh_max:
            raise ConfigError(
                f"{prefix}.thresh_min: got {self.thresh_min}, expected less than thresh_max ({self.thresh_max})"
            )


@dataclass(frozen=True)
class TuneSpace:
    """Candidate values per post-processing key (`tune.space`).

    `grid` tries every combination; `random` draws each float key uniformly between the
    smallest and largest listed value and `polygon` from its list.
    """

    thresh: list[float] = (0.2, 0.25, 0.3, 0.35, 0.4)
    box_thresh: list[float] = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)
    box_unclip_ratio: list[float] = (1.3, 1.5, 1.7, 2.0)
    polygon_unclip_ratio: list[float] = (2.0,)
    polygon: list[bool] = (False,)

    def check(self, prefix: str) -> None:
        for name in ("thresh", "box_thresh", "box_unclip_ratio", "polygon_unclip_ratio", "polygon"):
            values = getattr(self, name)
            if not values:
                raise ConfigError(f"{prefix}.{name}: empty list, expected at least one value")
            limit = 1.0 if name in ("thresh", "box_thresh") else 10.0
            if name != "polygon" and not all(0.0 <= v <= limit for v in values):
                raise ConfigError(f"{prefix}.{name}: got {list(values)}, expected values in [0.0, {limit}]")


@dataclass(frozen=True)
class TuneParams:
    """`tune_postprocess`: search `space` on cached validation probability maps.

    `enabled: false` keeps `postprocess` exactly as written (evaluate and predict then use it);
    when enabled, the written `postprocess` is itself a candidate, so tuning never makes val worse.
    """

    enabled: bool = True
    metric: Literal["cleval/hmean", "cleval_global/hmean", "iou/hmean"] = "cleval/hmean"
    search: Literal["grid", "random"] = "grid"
    trials: int = _within(50, 1, 100_000)
    workers: int = _within(2, 1, 64)
    cache_mb: int = _within(1024, 0, 1_000_000)
    space: TuneSpace = TuneSpace()
