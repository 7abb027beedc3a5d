"""The ONNX runtime of a deployment folder: onnxruntime, numpy and OpenCV, never torch.

    detector, classifier = load_deploy(Path("models/deploy"))
    found = detector(images)                 # per (H, W, 3) uint8 RGB image, its Detections
    probabilities = classifier(images)       # per image {class name: probability}; classifier may be None

Same interface as the torch predictors `doclab predict` uses, with the pre- and post-processing
the manifest names (see `doclab.deploy.manifest`).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from doclab.classification.ensemble.apply import apply_ensemble
from doclab.data.records import DataError
from doclab.deploy.manifest import MANIFEST_NAME, ClassifierSpec, DetectorSpec, read_manifest
from doclab.deploy.preprocess import input_batch, tta_view
from doclab.detection.postprocess import Detection, db_postprocess


def open_session(path: Path, device: str = "auto") -> ort.InferenceSession:
    """An onnxruntime session on every core this process may use (CUDA first when asked and available).

    Raises:
        DataError: the file is missing or not a loadable ONNX model (one line naming it).
    """
    if not path.is_file():
        raise DataError(f"{path}: ONNX model not found (run the export stage: dvc repro export)")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # warnings about unused initialisers are noise to a user
    options.intra_op_num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 0
    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind classes, not one base
        raise DataError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None


def _run(session: ort.InferenceSession, batch: np.ndarray) -> np.ndarray:
    return session.run(None, {session.get_inputs()[0].name: batch})[0]


class OnnxDetector:
    """The exported detector with the manifest's input rule and tuned post-processing."""

    def __init__(self, spec: DetectorSpec, folder: Path, device: str = "auto") -> None:
        self.spec = spec
        self.session = open_session(folder / spec.onnx, device)

    def maps(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        """((B, S, S) float32 probability maps of the letterboxed inputs, per image the original -> map scale)."""
        batch, scales = input_batch(images, self.spec.input)
        return _run(self.session, batch)[:, 0], scales

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detections per (H, W, 3) uint8 RGB image, in its own pixels."""
        maps, scales = self.maps(images)
        return db_postprocess(maps, self.spec.postprocess, scales=scales,
                              original_sizes=[image.shape[:2] for image in images])


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


class OnnxClassifier:
    """The exported ensemble members, their TTA views and the fitted combination rule."""

    def __init__(self, spec: ClassifierSpec, folder: Path, device: str = "auto") -> None:
        self.spec = spec
        self.classes = spec.classes
        self.sessions = [open_session(folder / member.onnx, device) for member in spec.members]

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, C) ensemble probabilities of (H, W, 3) uint8 RGB images."""
        inputs, member_probs = {}, []
        for member, session in zip(self.spec.members, self.sessions):
            if member.input not in inputs:
                inputs[member.input] = input_batch(images, member.input)[0]
            batch = inputs[member.input]
            views = [_softmax(_run(session, tta_view(batch, view)).astype(np.float64)) for view in self.spec.views]
            member_probs.append(np.mean(views, axis=0))
        return apply_ensemble(self.spec.ensemble, np.stack(member_probs))

    def __call__(self, images: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Class probabilities per image, rounded as the torch runtime rounds them."""
        return [{name: round(float(p), 6) for name, p in zip(self.classes, row)}
                for row in self.probabilities(images)]


def load_deploy(folder: Path, device: str = "auto") -> tuple[OnnxDetector | None, OnnxClassifier | None]:
    """The runtimes of a deployment folder (deploy.json + its ONNX files); None for a task it has no model of."""
    manifest = read_manifest(Path(folder) / MANIFEST_NAME)
    detector = OnnxDetector(manifest.detector, folder, device) if manifest.detector is not None else None
    classifier = OnnxClassifier(manifest.classifier, folder, device) if manifest.classifier is not None else None
    return detector, classifier
