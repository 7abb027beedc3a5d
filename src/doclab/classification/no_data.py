"""The "no classification data" marker: what the classification outputs hold when the processed data has
no document-type labels (a detection-only data set, e.g. receipts).

train_classifier@<member> and ensemble still write every output DVC expects, but nothing is trained:

- JSON files (models/ensemble.json, metrics/classifier/<member>.json, metrics/ensemble.json,
  dvclive/.../metrics.json): the object `{"status": "no classification data"}` (`no_classification_data_marker`);
- models/classifier/<member>.pt: a classifier model file holding only that entry;
- models/classifier/<member>.npz: a `status` array holding that string (`logits.save_no_data_logits`).

`no_classification_data(path)` recognises any of them; the readers of the real files
(`read_classifier_file`, `load_logits`, `read_ensemble_file`) refuse them with one line.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from doclab.engine.checkpoint import load_checkpoint
from doclab.errors import DataError
from doclab.io import read_json

# The marker: this key with this value (detection's is alike: `detection.model_file.NO_DETECTION_DATA`).
STATUS_KEY = "status"
NO_CLASSIFICATION_DATA = "no classification data"
NOT_TRAINED = "no classifier was trained (the processed data has no document-type labels)"


def no_classification_data_marker() -> dict[str, str]:
    """The contents of a "no classification data" JSON output."""
    return {STATUS_KEY: NO_CLASSIFICATION_DATA}


def is_marker(saved: object) -> bool:
    """Whether a loaded JSON object or model-file dict is the marker."""
    return isinstance(saved, dict) and saved.get(STATUS_KEY) == NO_CLASSIFICATION_DATA


def refuse_marker(saved: object, path: str | Path) -> None:
    """One DataError line naming `path` when a reader of real outputs is handed the marker."""
    if is_marker(saved):
        raise DataError(f"{path}: {NO_CLASSIFICATION_DATA}: {NOT_TRAINED}")


def no_classification_data(path: str | Path) -> bool:
    """Whether a classification output is the "no classification data" marker rather than a real one.

    Args:
        path: a JSON output (models/ensemble.json, metrics), a member's `.npz` logits file or its
            `.pt` model file.
    Returns:
        True for a marker, False for anything else (a real file is then read as usual).
    Raises:
        FileNotFoundError: no such `.npz`/`.pt` file. DataError: a missing or malformed JSON file.
        CheckpointError: a `.pt` that is not a weights-only torch file.
        ValueError: an unreadable `.npz`.
    """
    path = Path(path)
    if path.suffix == ".json":
        return is_marker(read_json(path))
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return STATUS_KEY in data.files and str(data[STATUS_KEY]) == NO_CLASSIFICATION_DATA
    return is_marker(load_checkpoint(path))
