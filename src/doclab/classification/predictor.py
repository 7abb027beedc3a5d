"""Classify raw images with the chosen ensemble: members' models, the ensemble's TTA views, `apply_ensemble`.

    predictor = load_ensemble_predictor(Path("models"), runtime)
    predictor([rgb_image, ...])  # [{"receipt": 0.93, ...}, ...]
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from doclab.classification.data import apply_view, build_eval_transform
from doclab.classification.ensemble.apply import apply_ensemble
from doclab.classification.ensemble.combine import read_ensemble_file
from doclab.classification.logits import TTA_VIEWS
from doclab.classification.model import build_classifier, read_classifier_file
from doclab.classification.no_data import no_classification_data
from doclab.engine.checkpoint import load_weights
from doclab.engine.device import Runtime
from doclab.engine.loading import normalise


class EnsemblePredictor:
    """The ensemble of models/ensemble.json over the members in models/classifier/.

    Args:
        ensemble: the models/ensemble.json dict.
        sub_members: per ensemble sub-member (in `ensemble["sub_members"]` order), its fold models
            (logits averaged, as the training stage averaged them) and the member's input size.
        runtime: device and autocast.
    """

    def __init__(self, ensemble: dict, sub_members: list[tuple[list[nn.Module], int]], runtime: Runtime) -> None:
        self.ensemble = ensemble
        self.classes: tuple[str, ...] = tuple(ensemble["classes"])
        self.sub_members = sub_members
        self.views = TTA_VIEWS[ensemble["tta"]]
        self.runtime = runtime

    def _probabilities(self, models: list[nn.Module], batch: torch.Tensor) -> np.ndarray:
        """(N, C) softmax of the fold-mean logits, averaged over the TTA views."""
        per_view = []
        for view in self.views:
            viewed = self.runtime.images(apply_view(batch, view))
            with torch.no_grad(), self.runtime.autocast():
                logits = torch.stack([model(viewed).float() for model in models]).mean(0)
            per_view.append(torch.softmax(logits.double(), dim=-1).cpu().numpy())
        return np.mean(per_view, axis=0)

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, C) ensemble probabilities of (H, W, 3) uint8 RGB images."""
        member_probs, inputs = [], {}
        for models, size in self.sub_members:
            if size not in inputs:
                transform = build_eval_transform(size)
                inputs[size] = torch.stack([normalise(transform(image=image)["image"]) for image in images])
            member_probs.append(self._probabilities(models, inputs[size]))
        return apply_ensemble(self.ensemble, np.stack(member_probs))

    def __call__(self, images: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Class probabilities per image, rounded to 6 decimals."""
        return [{name: round(float(p), 6) for name, p in zip(self.classes, row)} for row in self.probabilities(images)]


def _member_models(path: Path, runtime: Runtime) -> dict[str, tuple[list[nn.Module], int]]:
    """{sub-member name: (its fold models in eval mode, input size)} of one member file."""
    saved = read_classifier_file(path)
    entries = saved.get("sub_members") or [{"name": saved["name"], "state_dict": saved["state_dict"]}]
    grouped: dict[str, tuple[list[nn.Module], int]] = {}
    for entry in entries:
        model = build_classifier(saved["name"], len(saved["classes"]), pretrained=False)
        load_weights(model, entry["state_dict"], path, saved["name"])
        model.to(runtime.device).eval()
        runtime.prepare_model(model)
        grouped.setdefault(entry["name"], ([], int(saved["image_size"])))[0].append(model)
    return grouped


def load_ensemble_predictor(models_dir: Path, runtime: Runtime) -> EnsemblePredictor | None:
    """The predictor of `models_dir` (ensemble.json + classifier/<member>.pt), or None without ensemble.json or
    when it is the "no classification data" marker (a detection-only run).

    Raises:
        FileNotFoundError: a member's model file is missing.
        ValueError: the member files do not provide the ensemble's sub-members.
    """
    ensemble_path = models_dir / "ensemble.json"
    if not ensemble_path.is_file() or no_classification_data(ensemble_path):
        return None
    ensemble = read_ensemble_file(ensemble_path)
    available: dict[str, tuple[list[nn.Module], int]] = {}
    for member in ensemble["members"]:
        available.update(_member_models(models_dir / "classifier" / f"{member}.pt", runtime))
    missing = [name for name in ensemble["sub_members"] if name not in available]
    if missing:
        raise ValueError(f"{ensemble_path}: sub-member {missing[0]!r} is in none of the member files "
                         f"under {models_dir / 'classifier'} (retrain with `dvc repro`)")
    return EnsemblePredictor(ensemble, [available[name] for name in ensemble["sub_members"]], runtime)
