"""Plots of the post-processing search: rows for a DVC plot and a PNG for offline review.

Figures are drawn with matplotlib's object API (`Figure` renders with Agg by itself): no
pyplot, so no global backend or figure state.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from doclab.detection.search import TUNED_KEYS, Candidate
from doclab.io import atomic_write_bytes


def score_rows(candidates: Sequence[Candidate], scores: Sequence[dict[str, float]],
               metric: str) -> list[dict[str, float | bool]]:
    """One row per candidate: its tuned values plus `score` (its `metric`), in search order."""
    return [{**{name: candidate[name] for name in TUNED_KEYS}, "score": score[metric]}
            for candidate, score in zip(candidates, scores)]


def _heatmap(axes: Axes, rows: Sequence[dict], metric: str) -> None:
    """Best score per (thresh, box_thresh) over the other keys, values written in the cells."""
    threshes = sorted({row["thresh"] for row in rows})
    box_threshes = sorted({row["box_thresh"] for row in rows})
    best = np.full((len(box_threshes), len(threshes)), np.nan)
    for row in rows:
        cell = box_threshes.index(row["box_thresh"]), threshes.index(row["thresh"])
        best[cell] = np.fmax(best[cell], row["score"])
    image = axes.imshow(best, origin="lower", cmap="viridis", aspect="auto")
    axes.set_xticks(range(len(threshes)), [f"{t:g}" for t in threshes])
    axes.set_yticks(range(len(box_threshes)), [f"{t:g}" for t in box_threshes])
    for (y, x), value in np.ndenumerate(best):
        axes.text(x, y, f"{value:.3f}", ha="center", va="center", color="white", fontsize=8)
    axes.figure.colorbar(image, ax=axes, label=f"best {metric}")


def _scatter(axes: Axes, rows: Sequence[dict], metric: str) -> None:
    """Every candidate at (thresh, box_thresh), coloured by its score."""
    points = axes.scatter([row["thresh"] for row in rows], [row["box_thresh"] for row in rows],
                          c=[row["score"] for row in rows], cmap="viridis", s=40, edgecolors="black")
    axes.figure.colorbar(points, ax=axes, label=metric)


def write_score_plot(path: str | Path, rows: Sequence[dict], metric: str, search: str) -> None:
    """PNG of the scores over (thresh, box_thresh): a heatmap of the best score per cell for a
    grid search, a scatter coloured by score for a random one.

    Args:
        path: the PNG to write (atomically).
        rows: from `score_rows`.
        metric: the tuned metric's name (colour-bar label).
        search: 'grid' or 'random'.
    """
    figure = Figure(figsize=(6.4, 4.8))
    axes = figure.add_subplot()
    (_heatmap if search == "grid" else _scatter)(axes, rows, metric)
    axes.set_xlabel("thresh")
    axes.set_ylabel("box_thresh")
    axes.set_title(f"post-processing search: {metric} ({len(rows)} candidates)")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
