"""Classification metrics: accuracy, macro-F1 and per-class precision/recall/F1, accumulated over batches.

Every class in `classes` counts, seen or not: a class with no true and no predicted image scores 0
(scikit-learn's `zero_division=0`), so macro-F1 is always averaged over all C classes and stays
comparable between runs whose validation sets differ.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


class ClassificationMetric:
    """Accumulates predictions and true labels; `compute` scores everything seen since `reset`.

    Args:
        classes: class names, index = label.
    """

    def __init__(self, classes: Sequence[str]) -> None:
        if not classes:
            raise ValueError("ClassificationMetric: empty class list")
        self.classes = tuple(str(c) for c in classes)
        self.reset()

    def reset(self) -> None:
        """Forget all predictions seen so far."""
        self._predicted: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def update(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        """Add a batch.

        Args:
            predictions: (N, C) scores (logits or probabilities; the argmax is the prediction)
                or (N,) predicted class indices.
            labels: (N,) true class indices in [0, C).
        Raises:
            ValueError: shapes that do not match, or indices outside [0, C).
        """
        predictions, labels = np.asarray(predictions), np.asarray(labels)
        num_classes = len(self.classes)
        if predictions.ndim == 2:
            if predictions.shape[1] != num_classes:
                raise ValueError(f"ClassificationMetric.update: scores have {predictions.shape[1]} columns, "
                                 f"expected {num_classes} classes")
            predictions = predictions.argmax(axis=1)
        if predictions.ndim != 1 or labels.shape != predictions.shape:
            raise ValueError(f"ClassificationMetric.update: predictions {predictions.shape} and labels "
                             f"{labels.shape} do not match ((N, C) or (N,) and (N,) expected)")
        for name, values in (("predictions", predictions), ("labels", labels)):
            if values.size and (not np.issubdtype(values.dtype, np.integer) or values.min() < 0
                                or values.max() >= num_classes):
                raise ValueError(f"ClassificationMetric.update: {name} must be class indices in [0, {num_classes})")
        self._predicted.append(predictions.astype(np.int64))
        self._labels.append(labels.astype(np.int64))

    def _seen(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels (N,), predicted (N,)) of every batch so far."""
        labels = np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64)
        if not len(labels):
            raise ValueError("ClassificationMetric.compute: no predictions added")
        return labels, np.concatenate(self._predicted)

    def compute(self) -> dict[str, float]:
        """Scores over everything added since `reset`.

        Returns:
            {"accuracy", "macro_f1", "precision/<class>", "recall/<class>", "f1/<class>"} as floats.
        Raises:
            ValueError: nothing was added.
        """
        labels, predicted = self._seen()
        indices = list(range(len(self.classes)))
        precision, recall, f1, _ = precision_recall_fscore_support(
            labels, predicted, labels=indices, average=None, zero_division=0)
        scores = {"accuracy": float(accuracy_score(labels, predicted)),
                  "macro_f1": float(f1_score(labels, predicted, labels=indices, average="macro", zero_division=0))}
        for index, name in enumerate(self.classes):
            scores[f"precision/{name}"] = float(precision[index])
            scores[f"recall/{name}"] = float(recall[index])
            scores[f"f1/{name}"] = float(f1[index])
        return scores

    def confusion(self) -> list[list[int]]:
        """(C, C) confusion matrix as nested lists: row = true class, column = predicted class."""
        labels, predicted = self._seen()
        matrix = confusion_matrix(labels, predicted, labels=list(range(len(self.classes))))
        return matrix.astype(int).tolist()
