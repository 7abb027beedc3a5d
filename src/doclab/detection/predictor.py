"""The torch runtime of a trained detector: models/detector.pt with models/postprocess.json.

    detector = DetectorPredictor(Path("models"), torch.device("cpu"))
    found = detector(images)          # per (H, W, 3) uint8 RGB image, its Detections in its own pixels
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from doclab.config import InputParams
from doclab.data.pixels import input_scale
from doclab.detection.augment import apply_transform, build_eval_transform
from doclab.detection.dataset import pad_images
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
        # Model files written before `detector.input` existed used the long-side rule.
        self.rule = InputParams(**trained["detector"].get("input", {}))
        self.transform = build_eval_transform(self.image_size, self.rule)
        self.runtime = runtime

    def maps(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[float]]:
        """((B, H, W) float32 probability maps of the padded inputs, per image the original -> map scale).

        (H, W) is the batch's largest input shape ((S, S) under `long_side`), as `deploy.preprocess.input_batch`.
        """
        tensors = [normalise(apply_transform(self.transform, image, [], [])[0]) for image in images]
        with torch.no_grad(), self.runtime.autocast():
            probs = self.model(self.runtime.images(pad_images(tensors)))
        scales = [input_scale(*image.shape[:2], self.image_size, self.rule.resize, self.rule.max_side)
                  for image in images]
        return probs[:, 0].float().cpu().numpy(), scales

    def __call__(self, images: Sequence[np.ndarray]) -> list[list[Detection]]:
        """Detections per (H, W, 3) uint8 RGB image, in its own pixels."""
        maps, scales = self.maps(images)
        return db_postprocess(maps, self.post, scales=scales, original_sizes=[image.shape[:2] for image in images])
