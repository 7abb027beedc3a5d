"""Score plots of the `ensemble` stage: a DVC bar-plot table and an offline PNG."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from doclab.io import atomic_directory, atomic_write_bytes, atomic_write_json  # noqa: E402


def score_rows(val_scores: dict[str, dict[str, float]]) -> list[dict]:
    """{name: {"accuracy", "macro_f1"}} -> [{"name", "macro_f1", "accuracy"}] in the given order."""
    return [{"name": name, "macro_f1": s["macro_f1"], "accuracy": s["accuracy"]} for name, s in val_scores.items()]


def score_chart_png(rows: list[dict], title: str) -> bytes:
    """A horizontal bar chart of each row's macro-F1, as PNG bytes (no timestamp metadata)."""
    names = [row["name"] for row in rows]
    values = [row["macro_f1"] for row in rows]
    figure, axes = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    try:
        bars = axes.barh(names, values, color=["tab:orange" if "/" in n else "tab:blue" for n in names])
        axes.bar_label(bars, fmt="%.3f", padding=2)
        axes.set_xlim(0, 1.1)
        axes.invert_yaxis()  # first row on top
        axes.set_xlabel("validation macro-F1")
        axes.set_title(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    finally:
        plt.close(figure)
    return buffer.getvalue()


def write_score_plots(plots_dir: Path, val_scores: dict[str, dict[str, float]]) -> None:
    """Replace `plots_dir` with scores.json (rows for `dvc plots`) and scores.png.

    Args:
        plots_dir: plots/ensemble.
        val_scores: {method or "member/<name>": {"accuracy", "macro_f1"}} on validation.
    """
    rows = score_rows(val_scores)
    png = score_chart_png(rows, "Ensemble methods (blue) and members (orange)")
    with atomic_directory(plots_dir) as tmp:
        atomic_write_json(tmp / "scores.json", rows)
        atomic_write_bytes(tmp / "scores.png", png)
