"""models/deploy/deploy.json: everything inference needs besides the ONNX files themselves.

    manifest = read_manifest(Path("models/deploy/deploy.json"))
    manifest.detector.input.size, manifest.detector.postprocess.box_thresh, manifest.classifier.classes

One file says how an image becomes a model input (resize rule, padding, normalisation), how the
detector's probability map becomes polygons (the tuned post-processing) and how the classifier
members' probabilities become one answer (ensemble method, weights, TTA views). The torch runtime
and the ONNX runtime both read their pre- and post-processing from the same values, so a
deployment cannot drift from what was trained and tuned.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from doclab.config import ConfigError, PostprocessParams, build
from doclab.data.pixels import RESIZE_RULES
from doclab.data.records import DataError
from doclab.io import read_json

FORMAT = "doclab.deploy/1"
MANIFEST_NAME = "deploy.json"
PAD_POSITIONS = ("top_left", "centre")
INTERPOLATIONS = ("linear", "area")


@dataclass(frozen=True)
class ImageInput:
    """How an (H, W, 3) uint8 RGB image becomes a (3, H', W') float32 model input.

    `resize` `long_side`: the longest side is scaled to `size` (aspect kept, sizes rounded) and
    the input is size x size; `short_side`: the shortest side is scaled to `size`, capped so the
    longest is at most `max_side`, and the input sides are multiples of 32 (`data.pixels`). The
    rest is padded with `fill` at the bottom and right (`top_left`) or evenly around (`centre`),
    then each channel becomes (pixel / 255 - mean) / std. A batch is padded to its largest input.
    """

    size: int
    interpolation: str
    pad: str
    fill: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "long_side"
    max_side: int = 0

    def check(self, where: str) -> None:
        if self.size < 1 or self.interpolation not in INTERPOLATIONS or self.pad not in PAD_POSITIONS:
            raise DataError(f"{where}: got size {self.size}, interpolation {self.interpolation!r}, pad {self.pad!r}; "
                            f"expected size >= 1, interpolation in {INTERPOLATIONS}, pad in {PAD_POSITIONS}")
        if self.resize not in RESIZE_RULES or (self.resize == "short_side" and self.max_side < 1):
            raise DataError(f"{where}: got resize {self.resize!r}, max_side {self.max_side}; expected resize in "
                            f"{RESIZE_RULES} and max_side >= 1 with short_side")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise DataError(f"{where}: mean and std need 3 values each, std > 0 (got {self.mean}, {self.std})")


@dataclass(frozen=True)
class DetectorSpec:
    """The detector: its ONNX file (relative to the manifest), input rule and post-processing."""

    onnx: str
    input: ImageInput
    postprocess: PostprocessParams


@dataclass(frozen=True)
class ClassifierMember:
    """One ensemble sub-member: an ONNX file giving (B, C) logits (its fold models already averaged)."""

    name: str
    onnx: str
    input: ImageInput


@dataclass(frozen=True)
class ClassifierSpec:
    """The classifier ensemble: members in `ensemble["sub_members"]` order and the combination rule.

    `ensemble` is the models/ensemble.json dict as the `ensemble` stage wrote it (method,
    weights or stacking coefficients, classes, tta); `views` are the TTA views averaged per member.
    """

    classes: tuple[str, ...]
    views: tuple[str, ...]
    members: tuple[ClassifierMember, ...]
    ensemble: dict[str, Any]


@dataclass(frozen=True)
class DeployManifest:
    """The whole manifest; `classifier` is None for a detection-only deployment, `detector` for a
    classification-only one (the pipeline's single-task runs)."""

    detector: DetectorSpec | None
    classifier: ClassifierSpec | None


def _image_input(raw: dict, where: str) -> ImageInput:
    try:
        spec = ImageInput(size=int(raw["size"]), interpolation=str(raw["interpolation"]), pad=str(raw["pad"]),
                          fill=int(raw["fill"]), mean=tuple(float(v) for v in raw["mean"]),
                          std=tuple(float(v) for v in raw["std"]), resize=str(raw.get("resize", "long_side")),
                          max_side=int(raw.get("max_side", 0)))
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{where}: malformed input spec ({type(exc).__name__}: {exc})") from None
    spec.check(where)
    return spec


def read_manifest(path: Path) -> DeployManifest:
    """Read and validate a deploy.json; every problem is one DataError line naming the file and key."""
    raw = read_json(path, hint=" (run the export stage: dvc repro export)")
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        found = raw.get("format") if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{path}: not a doclab deploy manifest (format {found!r}, expected {FORMAT!r})")
    try:
        detector = None
        if raw["detector"] is not None:
            det = raw["detector"]
            try:
                post = build(PostprocessParams, det["postprocess"], "detector.postprocess")
            except ConfigError as exc:
                raise DataError(f"{path}: {exc}") from None
            detector = DetectorSpec(str(det["onnx"]), _image_input(det["input"], f"{path}: detector.input"), post)
        classifier = None
        if raw.get("classifier") is not None:
            cls = raw["classifier"]
            members = tuple(ClassifierMember(str(m["name"]), str(m["onnx"]),
                                             _image_input(m["input"], f"{path}: classifier.members.{m['name']}.input"))
                            for m in cls["members"])
            classifier = ClassifierSpec(tuple(cls["classes"]), tuple(cls["views"]), members, dict(cls["ensemble"]))
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: malformed manifest, missing or wrong key {exc}") from None
    if detector is None and classifier is None:
        raise DataError(f"{path}: neither a detector nor a classifier (nothing to deploy)")
    return DeployManifest(detector, classifier)


def manifest_json(manifest: DeployManifest) -> dict:
    """The JSON form `read_manifest` reads back."""
    return {"format": FORMAT, **dataclasses.asdict(manifest)}
