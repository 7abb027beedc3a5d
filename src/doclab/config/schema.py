"""The typed schema of params.yaml: one frozen dataclass per section.

Defaults here equal the values in the committed params.yaml; the file stays the single
place users edit (DVC tracks it), the schema is where each key is typed and bounded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doclab.config.classification import ClassifierParams, EnsembleParams
from doclab.config.detection import DetectorParams, DetectorTrainParams, PostprocessParams, TuneParams
from doclab.config.validate import ConfigError
from doclab.config.validate import within as _within


@dataclass(frozen=True)
class SyntheticParams:
    """The built-in generator (`data.source: synthetic`, `pretrain.source: synthetic`).

    Attributes:
        num_images: documents generated (the 6 document types in turn).
        long_side: longest image side in pixels.
        granularity: "word" boxes, or "line" boxes (one per printed line or table cell, as
            line-level receipt sets such as SROIE annotate).
    """

    num_images: int = _within(360, 6, 100_000)
    long_side: int = _within(1024, 256, 4096)
    granularity: Literal["word", "line"] = "word"


@dataclass(frozen=True)
class SourceParams:
    """One external dataset (`data.source: sources`); paths are relative to the repo root.

    Detection formats (read by `doclab.data.formats.registry.READERS`, which a test keeps equal to
    DETECTION_FORMATS): ufo, icdar, sroie, icdar2015, cord, funsd, labelme, ppocrlabel. Classification: csv,
    imagefolder.
    """

    name: str
    format: Literal["ufo", "icdar", "sroie", "icdar2015", "cord", "funsd", "labelme", "ppocrlabel", "csv",
                    "imagefolder"]
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
        if self.format in ("cord", "funsd") and self.annotations:
            raise ConfigError(f"{prefix}.annotations: not used by format {self.format!r} (its JSONs are found "
                              "in the set's own folders under images)")


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
class PretrainParams:
    """Optional detector pretraining (`pretrain`): the pretrain_detector stage trains on this data
    and train_detector starts from its best weights.

    It shares the detector's architecture, targets, loss and augmentations (`model`, `image_size`,
    `detector.*` but `detector.train`), so its weights always fit; its own training settings are
    `train`, so changing only `detector.train` never reruns it.

    Attributes:
        source: "none" (off: the stage writes a "no pretraining" marker in about a second),
            "synthetic" (the built-in generator, `synthetic`), or "sources" (the `sources` list).
        on_bad: as `data.on_bad`, for the pretraining data.
        synthetic: generator settings for `source: synthetic`.
        sources: data sets for `source: sources` (entries as in `data.sources`).
        val: fraction of the pretraining images held out to pick its best epoch.
        train: the pretraining run's training settings (as `detector.train`).
    """

    source: Literal["none", "synthetic", "sources"] = "none"
    on_bad: Literal["error", "skip"] = "error"
    synthetic: SyntheticParams = SyntheticParams(granularity="line")
    sources: list[SourceParams] = ()
    val: float = _within(0.1, 0.01, 0.5)
    train: DetectorTrainParams = DetectorTrainParams()

    def check(self, prefix: str) -> None:
        if self.source == "sources" and not self.sources:
            raise ConfigError(f"{prefix}.sources: empty, but {prefix}.source is 'sources'")
        if self.train.init_from:
            raise ConfigError(f"{prefix}.train.init_from: got {self.train.init_from!r}, expected '' (pretraining "
                              "starts from the backbone; fine-tuning starts from pretraining)")

    def data(self) -> DataParams:
        """The pretraining data as a `data` section (no test split: pretraining only picks an epoch)."""
        return DataParams(source="synthetic" if self.source == "none" else self.source, on_bad=self.on_bad,
                          synthetic=self.synthetic, sources=self.sources,
                          split=SplitParams(val=self.val, test=0.0))


@dataclass(frozen=True)
class PreprocessParams:
    max_side: int = _within(1024, 64, 8192)
    workers: int = _within(2, 1, 64)
    jpeg_quality: int = _within(95, 50, 100)
    min_word_side: float = _within(1.0, 0.0, 100.0)


@dataclass(frozen=True)
class ExportParams:
    """`export`: the ONNX deployment (models/deploy/) and its parity check against torch on validation."""

    opset: int = _within(18, 17, 23)
    batch_size: int = _within(4, 1, 1024)
    max_prob_diff: float = _within(1.0e-4, 0.0, 1.0)
    max_hmean_diff: float = _within(1.0e-3, 0.0, 1.0)
    max_top1_disagreements: int = _within(1, 0, 1_000_000)


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
    pretrain: PretrainParams = PretrainParams()
    detector: DetectorParams = DetectorParams()
    postprocess: PostprocessParams = PostprocessParams()
    tune: TuneParams = TuneParams()
    classifier: ClassifierParams = ClassifierParams()
    ensemble: EnsembleParams = EnsembleParams()
    evaluate: EmptySection = EmptySection()
    export: ExportParams = ExportParams()

    def check(self, prefix: str) -> None:
        if not self.model.strip():
            raise ConfigError("model: empty, expected a timm model name such as 'resnet18'")
        if self.image_size % 32:
            raise ConfigError(f"image_size: got {self.image_size}, expected a multiple of 32 (the deepest stride)")
        rule = self.detector.input
        if rule.resize == "short_side" and rule.max_side < self.image_size:
            raise ConfigError(f"detector.input.max_side: got {rule.max_side}, expected at least image_size "
                              f"({self.image_size}) with resize short_side")
        if isinstance(self.batch_size, int) and self.batch_size < 1:
            raise ConfigError(f"batch_size: got {self.batch_size}, expected 'auto' or an integer >= 1")
        if self.pretrain.source != "none" and self.detector.train.init_from:
            raise ConfigError(f"detector.train.init_from: got {self.detector.train.init_from!r} while pretrain.source "
                              f"is {self.pretrain.source!r}: fine-tuning starts from the pretrain_detector stage's "
                              "model, set one of the two")
