"""`doclab predict`: images in, polygons + document class out (UFO JSON, submission CSVs, overlays).

    failures = predict([Path("scans/")], Path("out"), Path("models"))                   # ONNX if exported
    failures = predict([Path("scans/")], Path("out"), Path("models"), runtime="torch")  # the .pt models

Two runtimes behind one interface: `onnx` (models/deploy/: onnxruntime, numpy and OpenCV; this
module imports no torch at all on that path) and `torch` (models/detector.pt and friends).
The models of a single-task run predict their one task: a detection-only run has no classifier
ensemble (its ensemble.json is a "no data" marker), a classification-only run no detector.
"""
from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from doclab.data.formats.labels import IMAGE_SUFFIXES
from doclab.data.images import read_image
from doclab.data.records import DataError
from doclab.deploy.manifest import MANIFEST_NAME
from doclab.detection.postprocess import Detection
from doclab.detection.submission import submission_rows
from doclab.io import atomic_directory, atomic_write_bytes, atomic_write_json, atomic_write_text
from doclab.plots.overlay import draw_overlay

OVERLAY_MAX_SIDE = 1600  # overlays of 4961x7016 scans would be ~1.3 MB each at full size


@dataclass(frozen=True)
class Prediction:
    """One image's results: detections in original pixels (None without a detector), and the class
    probabilities (None without a classifier)."""

    key: str
    path: Path
    size: tuple[int, int]
    detections: list[Detection] | None
    probabilities: dict[str, float] | None


def find_images(paths: Sequence[Path]) -> tuple[list[tuple[str, Path]], list[str]]:
    """(key, path) of every image named or inside a named folder (recursive, sorted), and the problems.

    Keys are file names for files given directly and paths relative to the folder otherwise.
    """
    found, problems = [], []
    for path in paths:
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not inside:
                problems.append(f"{path}: no images (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
            found += [(p.relative_to(path).as_posix(), p) for p in inside]
        elif path.is_file():
            found.append((path.name, path))
        else:
            problems.append(f"{path}: no such file or folder")
    keys = [key for key, _ in found]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise DataError(f"{duplicates[0]}: two inputs have this name; pass their folders instead of the files")
    return found, problems


def _batches(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def deploy_folder(models_dir: Path) -> Path | None:
    """The exported deployment under `models_dir`: the folder itself when it holds deploy.json, else its deploy/."""
    for folder in (models_dir, models_dir / "deploy"):
        if (folder / MANIFEST_NAME).is_file():
            return folder
    return None


def load_runtime(models_dir: Path, runtime: str = "auto", device: str = "auto") -> tuple[Callable, Callable | None, str]:
    """(detector or None, classifier or None, the runtime used) for `models_dir`; None: a task without data.

    Args:
        models_dir: the pipeline's models/ (detector.pt, ..., deploy/) or a deployment folder (deploy.json).
        runtime: onnx | torch | auto (onnx when an exported deployment exists, else torch).
        device: auto | cpu | cuda.
    Raises:
        FileNotFoundError: the runtime's models are missing (run `dvc repro` first).
    """
    folder = deploy_folder(models_dir)
    if runtime == "auto":
        runtime = "onnx" if folder is not None else "torch"
    if runtime == "onnx":
        if folder is None:
            raise FileNotFoundError(f"{models_dir}: no {MANIFEST_NAME} here or in {models_dir / 'deploy'} "
                                    "(run the export stage: dvc repro export)")
        from doclab.deploy.runtime import load_deploy

        detector, classifier = load_deploy(folder, device)
        return detector, classifier, runtime
    detector_path = models_dir / "detector.pt"
    if not detector_path.is_file():
        raise FileNotFoundError(f"{detector_path}: no trained detector (run `dvc repro` first)")
    from doclab.classification.predictor import load_ensemble_predictor
    from doclab.detection.model_file import no_detection_data
    from doclab.detection.predictor import DetectorPredictor
    from doclab.engine.device import choose_device, make_runtime

    chosen = choose_device(device)
    detector = None if no_detection_data(detector_path) else DetectorPredictor(models_dir, chosen)
    # Without a detector, the training defaults (the detector's own params choose them otherwise).
    settings = detector.runtime if detector is not None else make_runtime(chosen, amp=True, channels_last=True)
    return detector, load_ensemble_predictor(models_dir, settings), runtime


def _write_outputs(predictions: list[Prediction], out_dir: Path, detect: bool, classes: Sequence[str] | None) -> None:
    images = {}
    for item in predictions:
        entry: dict = {"img_w": item.size[1], "img_h": item.size[0]}
        if item.detections is not None:
            entry["words"] = {f"{i + 1:04d}": {"points": np.round(d.points, 1).tolist(), "score": round(d.score, 4)}
                              for i, d in enumerate(item.detections)}
        if item.probabilities is not None:
            entry["class"] = max(item.probabilities, key=item.probabilities.get)
            entry["probabilities"] = item.probabilities
        images[item.key] = entry
    atomic_write_json(out_dir / "predictions.json", {"images": images})
    if detect:
        rows = submission_rows({item.key: item.detections for item in predictions})
        atomic_write_text(out_dir / "submission.csv", "filename,polygons\n" + "".join(f"{k},{p}\n" for k, p in rows))
    if classes is not None:
        lines = "".join(f"{item.key},{max(item.probabilities, key=item.probabilities.get)}\n" for item in predictions)
        atomic_write_text(out_dir / "classes.csv", "ID,target\n" + lines)


def _overlay(image: np.ndarray, item: Prediction) -> bytes:
    parts = [] if item.detections is None else [f"{len(item.detections)} words"]
    if item.probabilities is not None:
        label = max(item.probabilities, key=item.probabilities.get)
        parts.append(f"{label} {item.probabilities[label]:.2f}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    scale = min(1.0, OVERLAY_MAX_SIDE / max(bgr.shape[:2]))
    if scale < 1.0:
        bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    polygons = [d.points * scale for d in item.detections or []]
    return cv2.imencode(".png", draw_overlay(bgr, [], [], polygons, "  ".join(parts)))[1].tobytes()


NOTHING_WRITTEN = "no input could be read, the folder was left as it was"


class _NothingRead(Exception):
    """Every input failed: nothing to write."""


def _predict_into(tmp: Path, found: list, batch_size: int, detector: Callable | None, classifier: Callable | None,
                  failures: list[str], overlays: bool) -> list[Prediction]:
    """Run the models over `found` in batches; overlays go to `tmp`/overlays, failed reads to `failures`."""
    predictions = []
    for batch in tqdm(list(_batches(found, batch_size)), desc="predict", unit="batch", file=sys.stderr):
        readable = []
        for key, path in batch:
            try:
                readable.append((key, path, read_image(path)[0]))
            except DataError as exc:
                failures.append(str(exc))
        if not readable:
            continue
        images = [image for _, _, image in readable]
        found_words = detector(images) if detector is not None else [None] * len(images)
        probabilities = classifier(images) if classifier is not None else [None] * len(images)
        for (key, path, image), words, probs in zip(readable, found_words, probabilities):
            item = Prediction(key, path, image.shape[:2], words, probs)
            predictions.append(item)
            if overlays:
                name = key.replace("/", "_").rsplit(".", 1)[0] + ".png"
                atomic_write_bytes(tmp / "overlays" / name, _overlay(image, item))
    return predictions


def predict(paths: Sequence[Path], out_dir: Path, models_dir: Path, batch_size: int = 4, device: str = "auto",
            overlays: bool = True, runtime: str = "auto") -> list[str]:
    """Detect text and classify every image; write predictions.json, submission.csv, classes.csv, overlays/.

    A detection-only run's models give no classes.csv (and no `class` in predictions.json), a
    classification-only run's no submission.csv (and no `words`).

    Args:
        paths: image files and/or folders (searched recursively).
        out_dir: created if needed.
        models_dir: holds detector.pt, postprocess.json and, for classification, ensemble.json and
            classifier/; and deploy/ once exported. Or a deployment folder itself (deploy.json + ONNX files).
        batch_size: images per forward pass.
        device: auto | cpu | cuda.
        overlays: write overlays/<key>.png (predicted polygons and the class; longest side at most
            OVERLAY_MAX_SIDE).
        runtime: onnx | torch | auto (see `load_runtime`).
    Returns:
        One line per input that failed (unreadable image, missing path); the others are still written.
        When every input failed, `out_dir` is left untouched (and a line says so).
    Raises:
        FileNotFoundError: models missing (run `dvc repro` first).
        DataError: models of a run that had neither detection nor classification data.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir}: is a file, expected a folder")
    detector, classifier, _ = load_runtime(models_dir, runtime, device)
    if detector is None and classifier is None:
        raise DataError(f"{models_dir}: no model to predict with (detector.pt says no detection data, and there "
                        "is no classifier ensemble)")
    found, failures = find_images(paths)
    try:
        with atomic_directory(out_dir) as tmp:  # the folder is replaced as a unit, or not at all
            predictions = _predict_into(tmp, found, batch_size, detector, classifier, failures, overlays)
            if not predictions:
                raise _NothingRead
            classes = classifier.classes if classifier is not None else None
            _write_outputs(predictions, tmp, detector is not None, classes)
    except _NothingRead:
        failures.append(f"{out_dir}: {NOTHING_WRITTEN}")
    return failures
