"""The `export` stage: the trained models -> models/deploy/ (ONNX + deploy.json), checked against torch.

    metrics = run_export(params, Path("data/processed"), Path("models"), Path("models/deploy"),
                         Path("metrics/export.json"))

The ONNX side of the check runs exactly what `doclab predict --runtime onnx` runs (the manifest's
pre-processing, onnxruntime, the manifest's post-processing and ensemble), the torch side what the
pipeline trained, tuned and evaluated, both on the validation images. A breach of any `export`
tolerance fails the stage with one line, and nothing is written.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from doclab.classification.data import load_labelled_splits
from doclab.classification.predictor import EnsemblePredictor, load_ensemble_predictor
from doclab.config import ExportParams, InputParams, Params
from doclab.data.images import read_image
from doclab.data.pixels import IMAGENET_MEAN, IMAGENET_STD
from doclab.data.records import DataError
from doclab.deploy.manifest import (
    MANIFEST_NAME,
    ClassifierMember,
    ClassifierSpec,
    DeployManifest,
    DetectorSpec,
    ImageInput,
    manifest_json,
)
from doclab.deploy.runtime import OnnxClassifier, OnnxDetector
from doclab.detection.dataset import load_ground_truth
from doclab.detection.evaluator import DetectionEvaluator
from doclab.detection.postprocess import db_postprocess
from doclab.detection.model_file import no_detection_data
from doclab.detection.predictor import DetectorPredictor
from doclab.engine.device import make_runtime
from doclab.engine.onnx_export import onnx_bytes
from doclab.io import atomic_directory, atomic_write_json, staged_outputs


class ParityError(DataError):
    """The exported models do not reproduce the torch models within the `export` tolerances."""


def detector_input(image_size: int, rule: InputParams) -> ImageInput:
    """The detector's evaluation transform (`detection.augment.build_eval_transform`) as a manifest rule."""
    return ImageInput(image_size, "linear", "top_left", 0, _floats(IMAGENET_MEAN), _floats(IMAGENET_STD),
                      rule.resize, rule.max_side if rule.resize == "short_side" else 0)


def classifier_input(image_size: int) -> ImageInput:
    """The classifier's evaluation transform (`classification.data.build_eval_transform`) as a manifest rule."""
    return ImageInput(image_size, "area", "centre", 255, _floats(IMAGENET_MEAN), _floats(IMAGENET_STD))


def _floats(values: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in values)  # float32 values, exactly representable as JSON floats


class _FoldMean(nn.Module):
    """A sub-member's fold models as one graph: the mean of their logits, as `EnsemblePredictor` takes it."""

    def __init__(self, models: Sequence[nn.Module]) -> None:
        super().__init__()
        self.models = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([model(x).float() for model in self.models]).mean(0)


def export_models(detector: DetectorPredictor | None, classifier: EnsemblePredictor | None, folder: Path,
                  opset: int) -> DeployManifest:
    """Write detector.onnx and classifier/<sub-member>.onnx into `folder`; return their manifest.

    A task without a model (None: its training stage had no data) is left out of the manifest.
    """
    spec = None
    if detector is not None:
        size = detector.image_size
        example = torch.zeros(2, 3, size, size)
        (folder / "detector.onnx").write_bytes(onnx_bytes(detector.model.float(), example, "images", "probs", opset))
        spec = DetectorSpec("detector.onnx", detector_input(size, detector.rule), detector.post)
    if classifier is None:
        return DeployManifest(spec, None)
    (folder / "classifier").mkdir()
    members = []
    for name, (models, member_size) in zip(classifier.ensemble["sub_members"], classifier.sub_members):
        path = f"classifier/{name}.onnx"
        example = torch.zeros(2, 3, member_size, member_size)
        (folder / path).write_bytes(onnx_bytes(_FoldMean(models).float(), example, "images", "logits", opset))
        members.append(ClassifierMember(name, path, classifier_input(member_size)))
    ensemble = ClassifierSpec(classifier.classes, tuple(classifier.views), tuple(members), classifier.ensemble)
    return DeployManifest(spec, ensemble)


def _batches(keys: list[str], size: int):
    for start in range(0, len(keys), size):
        yield keys[start:start + size]


def detector_parity(torch_detector: DetectorPredictor, onnx_detector: OnnxDetector, data_dir: Path,
                    batch_size: int) -> dict:
    """Both detectors on the validation images: the largest probability difference and each one's scores."""
    truth = load_ground_truth(data_dir, "val")
    evaluators = {"torch": DetectionEvaluator(truth), "onnx": DetectionEvaluator(truth)}
    largest = 0.0
    for keys in _batches(sorted(truth), batch_size):
        images = [read_image(data_dir / "images" / key)[0] for key in keys]
        sizes = [image.shape[:2] for image in images]
        maps = {"torch": torch_detector.maps(images), "onnx": onnx_detector.maps(images)}
        largest = max(largest, float(np.abs(maps["torch"][0] - maps["onnx"][0]).max()))
        for name, (probs, scales) in maps.items():
            found = db_postprocess(probs, onnx_detector.spec.postprocess, scales=scales, original_sizes=sizes)
            evaluators[name].process(keys, found)
    scores = {name: evaluator.evaluate() for name, evaluator in evaluators.items()}
    keys = ("cleval/hmean", "cleval/precision", "cleval/recall", "iou/hmean")
    return {"images": len(truth), "max_prob_diff": float(f"{largest:.3g}"),
            **{name: {key: round(found[key], 6) for key in keys} for name, found in scores.items()},
            "hmean_diff": round(abs(scores["torch"]["cleval/hmean"] - scores["onnx"]["cleval/hmean"]), 6)}


def classifier_parity(torch_classifier: EnsemblePredictor, onnx_classifier: OnnxClassifier, data_dir: Path,
                      batch_size: int) -> dict:
    """Both ensembles on the labelled validation images: top-1 disagreements, accuracies, probability gap."""
    table = load_labelled_splits(data_dir)
    ids = table.ids["val"]
    labels = np.array([table.labels[key] for key in ids], np.int64)
    probs: dict[str, list[np.ndarray]] = {"torch": [], "onnx": []}
    for keys in _batches(ids, batch_size):
        images = [read_image(data_dir / "images" / key)[0] for key in keys]
        probs["torch"].append(torch_classifier.probabilities(images))
        probs["onnx"].append(onnx_classifier.probabilities(images))
    joined = {name: np.concatenate(parts) if parts else np.zeros((0, len(table.classes))) for name, parts in probs.items()}
    top1 = {name: found.argmax(axis=1) for name, found in joined.items()}
    gap = float(np.abs(joined["torch"] - joined["onnx"]).max()) if ids else 0.0
    return {"images": len(ids), "top1_disagreements": int((top1["torch"] != top1["onnx"]).sum()),
            "max_prob_diff": float(f"{gap:.3g}"),
            **{f"{name}_accuracy": round(float((top1[name] == labels).mean()) if ids else 0.0, 6) for name in top1}}


def breaches(metrics: dict, tolerances: ExportParams) -> list[str]:
    """One phrase per tolerance the parity metrics exceed."""
    found, detector = [], metrics.get("detector")
    if detector and detector["max_prob_diff"] > tolerances.max_prob_diff:
        found.append(f"probability maps differ by up to {detector['max_prob_diff']:.3g} "
                     f"(export.max_prob_diff {tolerances.max_prob_diff:g})")
    if detector and detector["hmean_diff"] > tolerances.max_hmean_diff:
        found.append(f"val CLEval H-mean torch {detector['torch']['cleval/hmean']:.4f} vs onnx "
                     f"{detector['onnx']['cleval/hmean']:.4f} (export.max_hmean_diff {tolerances.max_hmean_diff:g})")
    classifier = metrics.get("classifier")
    if classifier and classifier["top1_disagreements"] > tolerances.max_top1_disagreements:
        found.append(f"{classifier['top1_disagreements']} of {classifier['images']} val images change document type "
                     f"(export.max_top1_disagreements {tolerances.max_top1_disagreements})")
    return found


def run_export(params: Params, data_dir: Path, models_dir: Path, out_dir: Path, metrics_path: Path) -> dict:
    """The `export` stage: write `out_dir` (deploy.json, detector.onnx, classifier/*.onnx) and the parity metrics.

    Args:
        params: the validated params (`export`).
        data_dir: the processed folder (the validation images and their labels).
        models_dir: models/ (detector.pt, postprocess.json, ensemble.json, classifier/<member>.pt).
        out_dir: models/deploy, replaced as a unit.
        metrics_path: metrics/export.json.
    Returns:
        The metrics dict: {"detector": {...}, "classifier": {...}}, each task only when it has a model
        (a single-task run's other task is absent, as in metrics/evaluate.json).
    Raises:
        ParityError: a tolerance is exceeded (nothing is written).
        DataError: neither task has a model.
    """
    device = torch.device("cpu")  # onnxruntime's CPU provider is the reference deployment; CPU torch is exact
    torch_detector = None if no_detection_data(models_dir / "detector.pt") else DetectorPredictor(models_dir, device)
    # The classifier runs with the settings `doclab predict --runtime torch` gives it.
    settings = torch_detector.runtime if torch_detector is not None else make_runtime(device, True, True)
    torch_classifier = load_ensemble_predictor(models_dir, settings)
    if torch_detector is None and torch_classifier is None:
        raise DataError(f"{models_dir}: neither a detector nor a classifier ensemble to export (no data for either)")
    with staged_outputs(), atomic_directory(out_dir) as folder:
        manifest = export_models(torch_detector, torch_classifier, folder, params.export.opset)
        atomic_write_json(folder / MANIFEST_NAME, manifest_json(manifest))
        metrics = {}
        if manifest.detector is not None:
            metrics["detector"] = detector_parity(torch_detector, OnnxDetector(manifest.detector, folder), data_dir,
                                                  params.export.batch_size)
        if manifest.classifier is not None:
            metrics["classifier"] = classifier_parity(torch_classifier, OnnxClassifier(manifest.classifier, folder),
                                                      data_dir, params.export.batch_size)
        problems = breaches(metrics, params.export)
        if problems:
            raise ParityError(f"{out_dir}: the ONNX export does not match the torch models on val: "
                              + "; ".join(problems))
        atomic_write_json(metrics_path, metrics)
    return metrics
