"""`doclab predict`: images in, polygons + document class out (UFO JSON, submission CSVs, overlays).

    failures = predict([Path("scans/")], Path("out"), Path("models"))

The models of a single-task run predict their one task: a detection-only run's ensemble.json (and
a classification-only run's detector.pt) is a "no data" marker, and is skipped.
"""
from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from tqdm import tqdm

from doclab.classification.predictor import EnsemblePredictor, load_ensemble_predictor
from doclab.data.formats.labels import IMAGE_SUFFIXES
from doclab.data.images import read_image
from doclab.data.records import DataError
from doclab.detection.augment import apply_transform, build_eval_transform
from doclab.detection.evaluation import submission_rows
from doclab.detection.model_file import load_detector, load_postprocess, no_detection_data
from doclab.detection.postprocess import Detection, db_postprocess
from doclab.engine.device import choose_device, make_runtime
from doclab.engine.loading import normalise
from doclab.io import atomic_directory, atomic_write_bytes, atomic_write_json, atomic_write_text
from doclab.plots.evaluate import draw_overlay


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


class DetectorPredictor:
    """models/detector.pt with the tuned post-processing of models/postprocess.json."""

    def __init__(self, models_dir: Path, device: torch.device) -> None:
        self.model, trained = load_detector(models_dir / "detector.pt", device)
        # AMP and memory layout as the detector was trained with (its params), not hard-coded.
        train = trained["detector"]["train"]
        runtime = make_runtime(device, bool(train.get("amp", True)), bool(train.get("channels_last", True)))
        runtime.prepare_model(self.model)
        self.post = load_postprocess(models_dir / "postprocess.json")
        self.image_size = int(trained["image_size"])
        self.transform = build_eval_transform(self.image_size)
        self.runtime = runtime

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detections per (H, W, 3) uint8 RGB image, in its own pixels."""
        tensors = [normalise(apply_transform(self.transform, image, [], [])[0]) for image in images]
        with torch.no_grad(), self.runtime.autocast():
            probs = self.model(self.runtime.images(torch.stack(tensors)))
        maps = probs[:, 0].float().cpu().numpy()
        sizes = [image.shape[:2] for image in images]
        scales = [self.image_size / max(size) for size in sizes]
        return db_postprocess(maps, self.post, scales=scales, original_sizes=sizes)


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
    polygons = [d.points for d in item.detections or []]
    return cv2.imencode(".png", draw_overlay(bgr, [], [], polygons, "  ".join(parts)))[1].tobytes()


NOTHING_WRITTEN = "no input could be read, the folder was left as it was"


class _NothingRead(Exception):
    """Every input failed: nothing to write."""


def _predict_into(tmp: Path, found: list, batch_size: int, detector: DetectorPredictor | None,
                  classifier: EnsemblePredictor | None, failures: list[str], overlays: bool) -> list[Prediction]:
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
            overlays: bool = True) -> list[str]:
    """Detect text and classify every image; write predictions.json, submission.csv, classes.csv, overlays/.

    A detection-only run's models give no classes.csv (and no `class` in predictions.json), a
    classification-only run's no submission.csv (and no `words`).

    Args:
        paths: image files and/or folders (searched recursively).
        out_dir: created if needed.
        models_dir: holds detector.pt, postprocess.json and, for classification, ensemble.json and classifier/.
        batch_size: images per forward pass.
        device: auto | cpu | cuda.
        overlays: write overlays/<key>.png (predicted polygons and the class).
    Returns:
        One line per input that failed (unreadable image, missing path); the others are still written.
        When every input failed, `out_dir` is left untouched (and a line says so).
    Raises:
        FileNotFoundError: models missing (run `dvc repro` first).
        DataError: models of a run that had neither detection nor classification data.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"--out {out_dir}: is a file, expected a folder")
    detector_path = models_dir / "detector.pt"
    if not detector_path.is_file():
        raise FileNotFoundError(f"{detector_path}: no trained detector (run `dvc repro` first)")
    chosen = choose_device(device)
    detector = None if no_detection_data(detector_path) else DetectorPredictor(models_dir, chosen)
    # Without a detector, the training defaults (the detector's own params choose them otherwise).
    runtime = detector.runtime if detector is not None else make_runtime(chosen, amp=True, channels_last=True)
    classifier: EnsemblePredictor | None = load_ensemble_predictor(models_dir, runtime)
    if detector is None and classifier is None:
        raise DataError(f"{models_dir}: no model to predict with (detector.pt says no detection data, and there is "
                        "no classifier ensemble)")
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
