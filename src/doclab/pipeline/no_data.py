"""The outputs of a stage whose task has no data (a detection-only or a classification-only data set).

DVC needs every output a stage declares, so such a stage still writes them all, at once and without
training or inference:

- metrics and model files: the task's marker (`{"status": "no detection data"}` or
  `{"status": "no classification data"}`; see `detection.model_file` and `classification.no_data`),
  so `dvc metrics diff` shows the task's numbers as gone, never as zeros;
- plot data and per-image results: `[]`, a well-formed file without rows;
- PNG figures: a white image that says the marker's status;
- a training stage's dvclive folder: `metrics.json` is the marker and `plots/metrics/` holds one
  empty plot file, `no_data.json` (git keeps no empty folder: a fresh clone would lack it, and DVC
  would see the output as deleted). Its persistent checkpoint folder is created and left as it is.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from doclab.io import atomic_directory, atomic_write_bytes, atomic_write_json

NO_DATA_PLOT = "no_data.json"
PNG_SIZE = (120, 480)  # (height, width)


def main_process() -> bool:
    """Rank 0 under torchrun (read from the environment: no process group is needed to write the markers)."""
    return int(os.environ.get("RANK", "0")) == 0


def write_status_png(path: Path, status: str) -> None:
    """A white PNG saying `status` (e.g. "no detection data"), in place of a figure of no data."""
    canvas = np.full((*PNG_SIZE, 3), 255, np.uint8)
    cv2.putText(canvas, status, (24, PNG_SIZE[0] // 2 + 10), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0, 0, 0), 2,
                cv2.LINE_AA)
    atomic_write_bytes(path, cv2.imencode(".png", canvas)[1].tobytes())


def write_no_data_plot(data_path: Path, image_path: Path, status: str) -> None:
    """A plot of no data: `[]` rows and the status PNG."""
    atomic_write_json(data_path, [])
    write_status_png(image_path, status)


def write_no_data_training(marker: dict[str, str], live_dir: Path, checkpoint_dir: Path) -> None:
    """A training stage's dvclive folder and checkpoint folder when there was nothing to train on.

    Args:
        marker: the task's marker (metrics.json).
        live_dir: the stage's dvclive folder (metrics.json, plots/metrics/).
        checkpoint_dir: the persistent checkpoint folder: created if missing, its contents kept (a
            later run with data does not resume from another run's checkpoint: they are fingerprinted).
    """
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    with atomic_directory(Path(live_dir) / "plots" / "metrics") as tmp:
        atomic_write_json(tmp / NO_DATA_PLOT, [])
    atomic_write_json(Path(live_dir) / "metrics.json", marker)
