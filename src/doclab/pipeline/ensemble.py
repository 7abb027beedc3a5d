"""The `ensemble` stage: the members' logits files -> models/ensemble.json, metrics/ensemble.json, plots."""
from __future__ import annotations

from pathlib import Path

from doclab.classification.ensemble.combine import fit_ensemble, load_member_probs
from doclab.classification.no_data import NO_CLASSIFICATION_DATA, no_classification_data, no_classification_data_marker
from doclab.config import Params
from doclab.errors import DataError
from doclab.io import atomic_write_json, staged_outputs
from doclab.pipeline.no_data import write_no_data_plot
from doclab.plots.ensemble import write_score_plots

PLOT_DATA = "scores.json"
PLOT_IMAGE = "scores.png"


def _without_data(paths: dict[str, Path]) -> bool:
    """Whether the members' logits files are "no classification data" markers: all of them, or none
    (one DataError line naming a file when they disagree: a partly rerun pipeline)."""
    markers = {member: path.is_file() and no_classification_data(path) for member, path in paths.items()}
    if len(set(markers.values())) > 1:
        empty = next(member for member, marker in markers.items() if marker)
        trained = next(member for member, marker in markers.items() if not marker)
        raise DataError(f"{paths[empty]}: {NO_CLASSIFICATION_DATA}, but member {trained!r} was trained: rerun "
                        "`dvc repro` so every member sees the same data")
    return all(markers.values())


def run_ensemble(params: Params, logits_dir: Path, model_path: Path, metrics_path: Path, plots_dir: Path) -> dict:
    """The `ensemble` stage: read `<logits_dir>/<member>.npz` for every `classifier.members`, write the outputs.

    Args:
        params: the validated params (`classifier.members`, `ensemble`, `seed`).
        logits_dir: folder of the members' logits files.
        model_path: models/ensemble.json (method, weights or stacking coefficients; see `apply_ensemble`).
        metrics_path: metrics/ensemble.json ({"chosen", "val": {...}, "test": {...}}).
        plots_dir: plots/ensemble: scores.json (DVC bar plot rows) and scores.png.
    Returns:
        The metrics dict; the "no classification data" marker when the members' logits files are
        markers: then the model and metrics files are the marker and the plot is empty.
    """
    paths = {member: Path(logits_dir) / f"{member}.npz" for member in params.classifier.members}
    if _without_data(paths):
        with staged_outputs():  # plots, model and metrics land together, or none of them
            write_no_data_plot(Path(plots_dir) / PLOT_DATA, Path(plots_dir) / PLOT_IMAGE, NO_CLASSIFICATION_DATA)
            atomic_write_json(model_path, no_classification_data_marker())
            atomic_write_json(metrics_path, no_classification_data_marker())
        return no_classification_data_marker()
    inputs = load_member_probs(paths, params.ensemble.tta)
    model, metrics = fit_ensemble(inputs, params.ensemble, params.seed)
    with staged_outputs():  # plots, model and metrics land together, or none of them
        write_score_plots(plots_dir, metrics["val"])
        atomic_write_json(model_path, model)
        atomic_write_json(metrics_path, metrics)
    return metrics
