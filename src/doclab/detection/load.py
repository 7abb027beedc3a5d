"""Read models/detector.pt (weights-only) back into a DBNet, or seed a new model from it."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doclab.config import DetectorParams, build
from doclab.detection.model import DBNet, build_detector
from doclab.engine.checkpoint import CheckpointError, load_checkpoint, load_matching

MODEL_FORMAT = "doclab.detector/1"


def _read_detector_file(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    saved = load_checkpoint(path, map_location=map_location)
    if saved.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: not a doclab detector file (expected format {MODEL_FORMAT!r})")
    return saved


def load_detector(path: str | Path, device: str | torch.device = "cpu") -> tuple[DBNet, dict[str, Any]]:
    """Rebuild the trained detector from models/detector.pt.

    Args:
        path: a file written by `train_detector` (loaded with weights_only=True).
        device: where the model goes.
    Returns:
        (model in eval mode on `device`, the params dict it was trained with). The model's
        forward takes (B, 3, H, W) normalised images and gives (B, 1, H, W) probabilities.
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not weights-only, or not a detector file.
    """
    path = Path(path)
    saved = _read_detector_file(path)
    trained = saved["params"]
    detector = build(DetectorParams, trained["detector"], "detector")
    # The trained weights replace the backbone's anyway: never download or read the original ones.
    detector = dataclasses.replace(detector, backbone_weights="")
    model = build_detector(saved["backbone"], detector, pretrained=False)
    model.load_state_dict(saved["state_dict"])
    return model.to(device).eval(), trained


def init_from_detector(model: nn.Module, path: Path, verbose: bool = True) -> list[str]:
    """Copy every tensor of an earlier detector.pt whose name and shape match `model`'s.

    Args:
        model: the freshly built detector.
        path: `detector.train.init_from`.
        verbose: print what was loaded and what was skipped.
    Returns:
        Names of `model`'s tensors that kept their fresh initialisation.
    Raises:
        FileNotFoundError, CheckpointError: as `load_detector`.
    """
    return load_matching(model, _read_detector_file(path)["state_dict"], path, verbose)
