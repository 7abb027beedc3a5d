"""The typed schema of params.yaml: one frozen dataclass per section.

Defaults here equal the values in the committed params.yaml; the file stays the single
place users edit (DVC tracks it), the schema is where each key is typed and bounded.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from doclab.config.validate import ConfigError


def _within(default, low=None, high=None):
    return field(default=default, metadata={"min": low, "max": high})


@dataclass(frozen=True)
class SyntheticParams:
    """The built-in generator (`data.source: synthetic`)."""

    num_images: int = _within(360, 6, 100_000)
    long_side: int = _within(1024, 256, 4096)


@dataclass(frozen=True)
class SourceParams:
    """One external dataset (`data.source: sources`); paths are relative to the repo root."""

    name: str
    format: Literal["ufo", "icdar", "csv", "imagefolder"]
    images: str
    annotations: str = ""
    labels: str = ""
    meta: str = ""

    def check(self, prefix: str) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{prefix}.name: got {self.name!r}, expected letters, digits, '-' or '_'")
        needs = {"ufo": "annotations", "icdar": "annotations", "csv": "labels"}.get(self.format)
        if needs and not getattr(self, needs):
            raise ConfigError(f"{prefix}.{needs}: required for format {self.format!r}")


@dataclass(frozen=True)
class SplitParams:
    """Seeded split stratified by document type; `file` (JSON {split: [ids]}) overrides it."""

    val: float = _within(0.15, 0.0, 0.5)
    test: float = _within(0.15, 0.0, 0.5)
    file: str = ""


@dataclass(frozen=True)
class DataParams:
    source: Literal["synthetic", "sources"] = "synthetic"
    on_bad: Literal["error", "skip"] = "error"
    synthetic: SyntheticParams = SyntheticParams()
    sources: list[SourceParams] = ()
    split: SplitParams = SplitParams()

    def check(self, prefix: str) -> None:
        if self.source == "sources" and not self.sources:
            raise ConfigError(f"{prefix}.sources: empty, but {prefix}.source is 'sources'")
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"{prefix}.sources: duplicate source name {dupes[0]!r}")


@dataclass(frozen=True)
class PreprocessParams:
    max_side: int = _within(1024, 64, 8192)
    workers: int = _within(2, 1, 64)
    jpeg_quality: int = _within(95, 50, 100)
    min_word_side: float = _within(1.0, 0.0, 100.0)


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
    workers: int = _within(2, 0, 64)
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
    loss: LossParams = LossParams()
    train: DetectorTrainParams = DetectorTrainParams()

    def check(self, prefix: str) -> None:
        if self.thresh_min >= self.thresh_max:
            raise ConfigError(
                f"{prefix}.thresh_min: got {self.thresh_min}, expected less than thresh_max ({self.thresh_max})"
            )


@dataclass(frozen=True)
class PostprocessParams:
    """DB post-processing: probability map -> polygons."""

    thresh: float = _within(0.3, 0.0, 1.0)
    box_thresh: float = _within(0.3, 0.0, 1.0)
    box_unclip_ratio: float = _within(1.5, 0.0, 10.0)
    polygon_unclip_ratio: float = _within(2.0, 0.0, 10.0)
    polygon: bool = False
    max_candidates: int = _within(1000, 1, 100_000)
    min_size: float = _within(3.0, 0.0, 1000.0)
    score_mode: Literal["fast", "slow"] = "fast"


@dataclass(frozen=True)
class EmptySection:
    """A section whose keys the stage that owns it has not defined yet (no keys allowed)."""


@dataclass(frozen=True)
class Params:
    """The whole params.yaml."""

    model: str = "mobilenetv3_small_100"
    image_size: int = _within(512, 32, 4096)
    batch_size: int | Literal["auto"] = "auto"
    pretrained: bool = False
    seed: int = _within(42, 0, 2**31 - 1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    data: DataParams = DataParams()
    preprocess: PreprocessParams = PreprocessParams()
    detector: DetectorParams = DetectorParams()
    postprocess: PostprocessParams = PostprocessParams()
    tune: EmptySection = EmptySection()
    classifier: EmptySection = EmptySection()
    ensemble: EmptySection = EmptySection()
    evaluate: EmptySection = EmptySection()

    def check(self, prefix: str) -> None:
        if not self.model.strip():
            raise ConfigError("model: empty, expected a timm model name such as 'resnet18'")
        if self.image_size % 32:
            raise ConfigError(f"image_size: got {self.image_size}, expected a multiple of 32 (the deepest stride)")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ConfigError(f"batch_size: got {self.batch_size}, expected 'auto' or an integer >= 1")
