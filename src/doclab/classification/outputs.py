"""Trained members over a split under every TTA view: scores (accuracy, macro-F1), the logits file, the
model file and the metrics file."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from doclab.classification.data import apply_view
from doclab.classification.logits import VIEWS, MemberLogits, SplitLogits, save_logits, save_no_data_logits
from doclab.classification.model import KIND
from doclab.classification.no_data import no_classification_data_marker
from doclab.config import Params, to_dict
from doclab.engine.checkpoint import save_model_file
from doclab.engine.device import Runtime
from doclab.io import atomic_write_json
from doclab.metrics.classification import ClassificationMetric

MONITOR = "macro_f1"  # the validation metric that picks the best epoch


def predict_views(module: nn.Module, loader: DataLoader, runtime: Runtime,
                  views: Sequence[str] = ("identity",)) -> tuple[np.ndarray, np.ndarray]:
    """Logits of every image under every view.

    Args:
        module: the classifier in eval mode.
        loader: eval-transform batches `(images (B, 3, S, S), labels (B,))`, not shuffled.
        runtime: device, autocast, memory layout.
        views: names in `logits.VIEWS`; each image is decoded once and viewed on the device.
    Returns:
        (logits (V, N, C) float32, labels (N,) int64), in loader order.
    """
    per_view: list[list[np.ndarray]] = [[] for _ in views]
    labels = []
    with torch.no_grad():
        for images, batch_labels in loader:
            images = runtime.images(images)
            for index, view in enumerate(views):
                with runtime.autocast():
                    logits = module(apply_view(images, view))
                per_view[index].append(logits.float().cpu().numpy())
            labels.append(batch_labels.numpy())
    stacked = np.stack([np.concatenate(chunks) for chunks in per_view]).astype(np.float32)
    return stacked, np.concatenate(labels).astype(np.int64)


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of the arg-max predictions, as `ClassificationMetric` scores them.

    Args:
        labels: (N,) true class indices.
        logits: (N, C) scores.
    Returns:
        {'accuracy', 'macro_f1'}; macro-F1 averages over all C classes, a class absent from
        `labels` and the predictions scoring 0 (the evaluate stage's and the ensemble's number).
    Raises:
        ValueError: no images, or labels outside [0, C).
    """
    metric = ClassificationMetric([str(index) for index in range(logits.shape[1])])
    metric.update(logits, labels)
    scores = metric.compute()
    return {"accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}


def evaluate_classifier(module: nn.Module, loader: DataLoader, runtime: Runtime) -> dict[str, float]:
    """Validation during training: `classification_metrics` of the identity view."""
    logits, labels = predict_views(module, loader, runtime)
    return classification_metrics(labels, logits[0])


@dataclass
class FoldResult:
    """One trained fold of a member (the only one when `classifier.folds` is 1).

    Attributes:
        model: the fold's model object (its weights are swapped in to predict).
        names: sub-member names (the member, or `<member>@epoch<e>` per snapshot).
        weights: one state dict per name.
        best_weights: state dict of the best validation epoch.
        best_metrics: its validation metrics.
        best_epoch: 1-based.
        batch: the batch size training used (reused to predict).
    """

    model: nn.Module
    names: list[str]
    weights: list[dict[str, Tensor]]
    best_weights: dict[str, Tensor]
    best_metrics: dict[str, float]
    best_epoch: int
    batch: int


def _sub_member_logits(result: FoldResult, loader: DataLoader, runtime: Runtime, num_classes: int) -> np.ndarray:
    """(M, V, N, C) logits of the fold's sub-members under every view of `VIEWS`."""
    if len(loader.dataset) == 0:
        return np.zeros((len(result.names), len(VIEWS), 0, num_classes), np.float32)
    module = result.model
    stacked = []
    for weights in result.weights:
        module.load_state_dict(weights)
        module.eval()
        stacked.append(predict_views(module, loader, runtime, VIEWS)[0])
    return np.stack(stacked)


def member_logits(results: Sequence[FoldResult], loaders: dict[str, DataLoader], oof_loaders: Sequence[DataLoader],
                  held_out: Sequence[np.ndarray], runtime: Runtime) -> dict[str, SplitLogits]:
    """Every split's logits: val and test averaged over folds, out-of-fold train logits when folds > 1.

    Args:
        results: one per fold.
        loaders: 'train', 'val', 'test' eval-transform loaders over `ClassificationDataset`s.
        oof_loaders: per fold, a loader over its held-out training images (empty for one fold).
        held_out: per fold, the indices of those images in the train split.
        runtime: device and autocast.
    Returns:
        {split: SplitLogits} with (M, V, N, C) float32 logits, V = all of `VIEWS`.
    """
    num_classes = len(loaders["val"].dataset.classes)
    splits = {}
    for split in ("val", "test"):
        dataset = loaders[split].dataset
        per_fold = [_sub_member_logits(result, loaders[split], runtime, num_classes) for result in results]
        splits[split] = SplitLogits(np.array(dataset.ids, dtype=str), dataset.labels,
                                    np.mean(per_fold, axis=0).astype(np.float32))
    if oof_loaders:
        train = loaders["train"].dataset
        oof = np.zeros((len(results[0].names), len(VIEWS), len(train.ids), num_classes), np.float32)
        for result, loader, held in zip(results, oof_loaders, held_out):
            oof[:, :, held] = _sub_member_logits(result, loader, runtime, num_classes)
        splits["oof"] = SplitLogits(np.array(train.ids, dtype=str), train.labels, oof)
    return splits


def member_metrics(splits: dict[str, SplitLogits]) -> dict[str, dict[str, float]]:
    """{split: accuracy, macro_f1} of the member's prediction: identity-view logits averaged over sub-members."""
    return {split: classification_metrics(part.labels, part.logits[:, 0].mean(axis=0))
            for split, part in splits.items() if len(part.ids)}


def write_member_outputs(params: Params, member: str, classes: Sequence[str], results: Sequence[FoldResult],
                         splits: dict[str, SplitLogits], outputs: dict[str, Path]) -> dict[str, dict[str, float]]:
    """Write the logits, model and metrics files (each atomically); returns the metrics.

    Args:
        params: the run's params (`classifier` and `seed` are stored with the weights).
        member: the member name (= timm model name).
        classes: class names, index = label.
        results: one per fold.
        splits: from `member_logits`.
        outputs: paths under 'logits', 'model', 'metrics'.
    Returns:
        {split: {'accuracy', 'macro_f1'}} (see `member_metrics`).
    """
    names = results[0].names
    save_logits(outputs["logits"], MemberLogits(tuple(classes), tuple(names), VIEWS, splits))
    # The main weights: the best epoch of the fold that validated best (the only fold, usually).
    main = max(results, key=lambda result: result.best_metrics.get(MONITOR, 0.0))
    model_file = {"name": member, "classes": list(classes),
                  "image_size": params.classifier.image_size, "state_dict": main.best_weights,
                  "params": {**to_dict(params.classifier), "seed": params.seed}, "epoch": main.best_epoch,
                  "metrics": main.best_metrics}
    if len(results) * len(names) > 1:
        model_file["sub_members"] = [{"name": name, "fold": fold, "state_dict": weights}
                                     for fold, result in enumerate(results)
                                     for name, weights in zip(result.names, result.weights)]
    save_model_file(outputs["model"], KIND, model_file)
    metrics = member_metrics(splits)
    atomic_write_json(outputs["metrics"], metrics)
    return metrics


def write_no_data_member_outputs(outputs: dict[str, Path]) -> dict[str, str]:
    """The member's model, logits and metrics files of a data set without labels: each the "no classification
    data" marker (see `no_data`). Returns the marker."""
    marker = no_classification_data_marker()
    save_model_file(outputs["model"], KIND, marker)
    save_no_data_logits(outputs["logits"])
    atomic_write_json(outputs["metrics"], marker)
    return marker
