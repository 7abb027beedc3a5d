"""Classification on a split: the chosen ensemble re-applied to the members' stored logits.

    result = evaluate_classification(Path("models/ensemble.json"), Path("models/classifier"))
    sample_rows(result)  # [{"image", "label", "predicted", "probabilities": {class: p}}, ...]
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
    """One split's classification results.

    Attributes:
        classes: class names.
        metrics: accuracy, macro_f1, per-class precision/recall/f1 (`f1/<class>`, ...).
        confusion: (C, C) counts, rows = true class.
        ids: (N,) image ids.
        labels: (N,) true class indices.
        probabilities: (N, C) the ensemble's class probabilities.
        predicted: (N,) predicted class indices.
        method: the ensemble method applied.
    """

    classes: tuple[str, ...]
    metrics: dict[str, float]
    confusion: list[list[int]]
    ids: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    predicted: np.ndarray
    method: str


def evaluate_classification(ensemble_path: Path, logits_dir: Path, split: str = "test") -> ClassificationResult:
    """Apply models/ensemble.json to the members' logits of `split` and score it.

    On "val" the score is in-sample for the ensemble (its weights were fitted there); a comparison
    of two runs on val is still paired and fair.

    Raises:
        FileNotFoundError: no ensemble file or a member's logits file.
        DataError: the logits do not provide the ensemble's sub-members.
    """
    model = read_ensemble_file(ensemble_path)
    inputs = load_member_probs({m: logits_dir / f"{m}.npz" for m in model["members"]}, model["tta"])
    if list(inputs.sub_members) != list(model["sub_members"]):
        raise DataError(f"{ensemble_path}: sub-members {model['sub_members']} differ from the logits files' "
                        f"{list(inputs.sub_members)} (rerun the ensemble stage)")
    samples = inputs.splits[split]
    probabilities = apply_ensemble(model, samples.probs)
    metric = ClassificationMetric(inputs.classes)
    metric.update(probabilities, samples.labels)
    return ClassificationResult(inputs.classes, metric.compute(), metric.confusion(), samples.ids, samples.labels,
                                probabilities, probabilities.argmax(axis=1), model["method"])


def sample_rows(result: ClassificationResult) -> list[dict]:
    """One row per image: {"image", "label", "predicted", "probabilities": {class: p}} (class names).

    Every class appears in each row's probabilities, in class order, so the rows alone give the
    class list (macro-F1 averages over all of them, seen or not).
    """
    return [{"image": str(key), "label": result.classes[label], "predicted": result.classes[predicted],
             "probabilities": {name: round(float(p), 6) for name, p in zip(result.classes, probs)}}
            for key, label, predicted, probs in zip(result.ids, result.labels, result.predicted,
                                                    result.probabilities)]
