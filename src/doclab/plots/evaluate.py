"""PNG figures of the evaluate stage, for offline review (DVC's HTML report loads vega from a CDN).

    save_overlays(rows, result, Path("data/processed/images"), Path("plots/evaluate/worst"), count=8)
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from doclab.io import atomic_write_bytes  # noqa: E402
from doclab.plots.overlay import draw_overlay  # noqa: E402



def _save_figure(figure: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def save_overlays(per_image: Sequence[dict], detections: dict, ground_truth: dict, images_dir: Path,
                  out_dir: Path, count: int = 8) -> list[Path]:
    """Overlays of the `count` lowest-H-mean images (ties by id), named `<rank>_<image>.png`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.png"):
        old.unlink()
    worst = sorted(per_image, key=lambda row: (row["hmean"], row["image"]))[:count]
    written = []
    for rank, row in enumerate(worst, start=1):
        key = row["image"]
        image = cv2.imread(str(images_dir / key), cv2.IMREAD_COLOR)
        if image is None:
            raise FileNotFoundError(f"{images_dir / key}: cannot read the image for its overlay")
        polygons, ignore = ground_truth[key]
        caption = f"hmean {row['hmean']:.3f}  P {row['precision']:.2f}  R {row['recall']:.2f}"
        overlay = draw_overlay(image, polygons, ignore, [d.points for d in detections[key]], caption)
        ok, encoded = cv2.imencode(".png", overlay)
        path = out_dir / f"{rank:02d}_{key.replace('/', '_').rsplit('.', 1)[0]}.png"
        atomic_write_bytes(path, encoded.tobytes())
        written.append(path)
    return written


def plot_hmean_histogram(per_image: Sequence[dict], path: Path) -> None:
    """Histogram of per-image CLEval H-mean."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.hist([row["hmean"] for row in per_image], bins=np.linspace(0, 1, 21), color="#3b75af")
    axis.set(xlabel="per-image CLEval H-mean", ylabel="images", title="Test images by H-mean")
    _save_figure(figure, path)


def plot_curve(rows: Sequence[dict], x: str, y: str, path: Path, title: str, marker: float | None = None) -> None:
    """A line plot of `y` against `x` over `rows`, with an optional vertical marker (the chosen value)."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.plot([row[x] for row in rows], [row[y] for row in rows], marker="o")
    if marker is not None:
        axis.axvline(marker, color="grey", linestyle="--", label=f"chosen {marker:g}")
        axis.legend()
    axis.set(xlabel=x, ylabel=y, title=title)
    axis.grid(alpha=0.3)
    _save_figure(figure, path)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path) -> None:
    """Confusion matrix heat map (rows: true class, columns: predicted)."""
    values = np.asarray(matrix)
    figure, axis = plt.subplots(figsize=(1.0 + 0.7 * len(classes), 0.8 + 0.6 * len(classes)))
    axis.imshow(values, cmap="Blues")
    axis.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    axis.set_yticks(range(len(classes)), classes)
    for (row, column), value in np.ndenumerate(values):
        axis.text(column, row, str(value), ha="center", va="center",
                  color="white" if value > values.max() / 2 else "black")
    axis.set(xlabel="predicted", ylabel="true", title="Test confusion matrix")
    _save_figure(figure, path)


def plot_bars(names: Sequence[str], values: Sequence[float], path: Path, ylabel: str, title: str) -> None:
    """Bar chart, one bar per name."""
    figure, axis = plt.subplots(figsize=(1.5 + 0.6 * len(names), 3.2))
    axis.bar(range(len(names)), values, color="#3b75af")
    axis.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axis.set(ylabel=ylabel, title=title, ylim=(0, 1.05))
    _save_figure(figure, path)
