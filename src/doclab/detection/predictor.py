"""The torch runtime of a trained detector: models/detector.pt with models/postprocess.json.

    detector = DetectorPredictor(Path("models"), torch.device("cpu"))
    found = detector(images)          # per (H, W, 3) uint8 RGB image, its Detections in its own pixels
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from doclab.detection.augment import apply_transform, build_eval_transform
from doclab.detection.model_file import load_detector, load_postprocess
from doclab.detection.postprocess import Detection, db_postprocess
from doclab.engine.device import make_runtime
from doclab.engine.loading import normalise


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

    def maps(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        """((B, S, S) float32 probability maps of the letterboxed inputs, per image the original -> map scale)."""
        tensors = [normalise(apply_transform(self.transform, image, [], [])[0]) for image in images]
        with torch.no_grad(), self.runtime.autocast():
            probs = self.model(self.runtime.images(torch.stack(tensors)))
        return probs[:, 0].float().cpu().numpy(), [self.image_size / max(image.shape[:2]) for image in images]

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detections per (H, W, 3) uint8 RGB image, in its own pixels."""
        maps, scales = self.maps(images)
        return db_postprocess(maps, self.post, scales=scales, original_sizes=[image.shape[:2] for image in images])
