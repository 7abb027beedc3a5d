"""The detector's model files: models/detector.pt (weights-only) back into a DBNet, or seeding a new model
from it; models/postprocess.json back into `PostprocessParams`.

"No detection data": when the processed data has no text polygons (a classification-only data set),
train_detector and tune_postprocess still write every output, and their JSON files and the model
file hold only the marker `{"status": "no detection data"}` (`no_detection_data_marker`). Read
them with `no_detection_data(path)` first; the loaders below refuse them with one clear line.
"""
from __future__ import annotations

import dataclasses
from dataclasses import fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from doclab.config import ConfigError, DetectorParams, PostprocessParams, build
from doclab.detection.model import DBNet, build_detector
from doclab.engine.checkpoint import load_matching, load_weights, read_model_file, save_model_file
from doclab.errors import DataError
from doclab.io import read_json

KIND = "detector"
# The marker: this key with this value, in a JSON object or a model file (classification's is alike).
STATUS_KEY = "status"
NO_DETECTION_DATA = "no detection data"
NOT_TRAINED = "no detector was trained (the processed data has no text polygons)"
# models/pretrain_detector.pt with `pretrain.source: none`: pretraining is off, fine-tuning starts fresh.
NO_PRETRAINING = "no pretraining"


def no_detection_data_marker() -> dict[str, str]:
    """The contents of a "no detection data" JSON output (metrics, models/postprocess.json)."""
    return {STATUS_KEY: NO_DETECTION_DATA}


def _is_marker(saved: object) -> bool:
    return isinstance(saved, dict) and saved.get(STATUS_KEY) == NO_DETECTION_DATA


def no_detection_data(path: str | Path) -> bool:
    """Whether a detection output is the "no detection data" marker rather than a real model or result.

    Args:
        path: models/detector.pt (a model file) or a JSON output (models/postprocess.json,
            metrics/tune.json).
    Returns:
        True for a marker, False for anything else (a real file is then read as usual).
    Raises:
        FileNotFoundError: no such model file. DataError: a missing or malformed JSON file.
        CheckpointError: a model file that is not a doclab detector file.
    """
    path = Path(path)
    return _is_marker(read_json(path) if path.suffix == ".json" else read_model_file(path, KIND))


def save_no_detection_model(path: str | Path) -> None:
    """models/detector.pt of a data set without text polygons: a detector model file holding only the marker."""
    save_model_file(path, KIND, no_detection_data_marker())


def no_pretraining_marker() -> dict[str, str]:
    """The contents of the pretrain_detector stage's outputs when pretraining is off."""
    return {STATUS_KEY: NO_PRETRAINING}


def save_no_pretraining_model(path: str | Path) -> None:
    """models/pretrain_detector.pt with `pretrain.source: none`: a detector model file holding only the marker."""
    save_model_file(path, KIND, no_pretraining_marker())


def pretrained_init(path: str | Path) -> Path | None:
    """The pretrain_detector stage's model file to start fine-tuning from, or None when pretraining was off.

    Raises:
        FileNotFoundError, CheckpointError: a missing file, or not a detector file.
    """
    saved = read_model_file(Path(path), KIND)
    return None if saved.get(STATUS_KEY) == NO_PRETRAINING else Path(path)


def _read_detector_file(path: Path) -> dict[str, Any]:
    """`read_model_file` that refuses the marker with one line."""
    saved = read_model_file(path, KIND)
    if _is_marker(saved):
        raise DataError(f"{path}: {NO_DETECTION_DATA}: {NOT_TRAINED}")
    if saved.get(STATUS_KEY) == NO_PRETRAINING:
        raise DataError(f"{path}: {NO_PRETRAINING}: pretraining was off (pretrain.source: none)")
    return saved


def save_detector_file(path: str | Path, backbone: str, state_dict: dict, params: dict, epoch: int,
                       metrics: dict[str, float]) -> None:
    """models/detector.pt: weights, backbone name, the params it was trained with, best epoch and metrics."""
    save_model_file(path, KIND, {"backbone": backbone, "state_dict": state_dict, "params": params, "epoch": epoch,
                                 "metrics": metrics})


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
        DataError: the "no detection data" marker (see `no_detection_data`).
    """
    path = Path(path)
    saved = _read_detector_file(path)
    trained = saved["params"]
    detector = build(DetectorParams, trained["detector"], "detector")
    # The trained weights replace the backbone's anyway: never download or read the original ones.
    detector = dataclasses.replace(detector, backbone_weights="")
    model = build_detector(saved["backbone"], detector, pretrained=False)
    load_weights(model, saved["state_dict"], path, saved["backbone"])
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
        FileNotFoundError, CheckpointError, DataError: as `load_detector`.
    """
    return load_matching(model, _read_detector_file(Path(path))["state_dict"], path, verbose)


# Keys of models/postprocess.json besides the PostprocessParams fields.
SCORE_KEYS = ("metric", "score")


def load_postprocess(path: str | Path) -> PostprocessParams:
    """Read models/postprocess.json back as validated `PostprocessParams`.

    Args:
        path: a file written by `tune_postprocess`: every PostprocessParams key, plus
            `metric` and `score`.
    Returns:
        The PostprocessParams.
    Raises:
        FileNotFoundError: no such file.
        DataError: invalid JSON (see `read_json`), or the "no detection data" marker.
        ConfigError: one line naming the file: not a mapping, a missing, unknown or invalid key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tuned post-processing file not found (run the tune_postprocess stage)")
    saved = read_json(path)
    if _is_marker(saved):
        raise DataError(f"{path}: {NO_DETECTION_DATA}: nothing was tuned, {NOT_TRAINED}")
    if not isinstance(saved, dict):
        raise ConfigError(f"{path}: expected a JSON object of post-processing params, got {type(saved).__name__}")
    missing = [f.name for f in fields(PostprocessParams) if f.name not in saved]
    if missing:
        raise ConfigError(f"{path}: {missing[0]}: required key is missing")
    try:
        return build(PostprocessParams, {k: v for k, v in saved.items() if k not in SCORE_KEYS})
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
