"""Classification on the test split: the chosen ensemble re-applied to the members' stored test logits.

    result = evaluate_classification(Path("models/ensemble.json"), Path("models/classifier"))
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doclab.classification.ensemble.combine import apply_ensemble, load_member_probs, read_ensemble_file
from doclab.data.records import DataError
from doclab.metrics.classification import ClassificationMetric


@dataclass(frozen=True)
class ClassificationResult:
    """Test-split classification results.

    Attributes:
        classes: class names.
        metrics: accuracy, macro_f1, per-class precision/recall/f1 (`f1/<class>`, ...).
        confusion: (C, C) counts, rows = true class.
        ids: (N,) test image ids.
        predicted: (N,) predicted class indices.
        method: the ensemble method applied.
    """

    classes: tuple[str, ...]
    metrics: dict[str, float]
    confusion: list[list[int]]
    ids: np.ndarray
    predicted: np.ndarray
    method: str


def evaluate_classification(ensemble_path: Path, logits_dir: Path) -> ClassificationResult:
    """Apply models/ensemble.json to the members' test logits and score it.

    Raises:
        FileNotFoundError: no ensemble file or a member's logits file.
        DataError: the logits do not provide the ensemble's sub-members.
    """
    model = read_ensemble_file(ensemble_path)
    inputs = load_member_probs({m: logits_dir / f"{m}.npz" for m in model["members"]}, model["tta"])
    if list(inputs.sub_members) != list(model["sub_members"]):
        raise DataError(f"{ensemble_path}: sub-members {model['sub_members']} differ from the logits files' "
                        f"{list(inputs.sub_members)} (rerun the ensemble stage)")
    test = inputs.splits["test"]
    probabilities = apply_ensemble(model, test.probs)
    metric = ClassificationMetric(inputs.classes)
    metric.update(probabilities, test.labels)
    return ClassificationResult(inputs.classes, metric.compute(), metric.confusion(), test.ids,
                                probabilities.argmax(axis=1), model["method"])
