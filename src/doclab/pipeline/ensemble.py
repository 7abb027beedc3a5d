"""The `ensemble` stage: the members' logits files -> models/ensemble.json, metrics/ensemble.json, plots."""
from __future__ import annotations

from pathlib import Path

from doclab.classification.ensemble.combine import fit_ensemble, load_member_probs
from doclab.config import Params
from doclab.io import atomic_write_json, staged_outputs
from doclab.plots.ensemble import write_score_plots


def run_ensemble(params: Params, logits_dir: Path, model_path: Path, metrics_path: Path, plots_dir: Path) -> dict:
    """The `ensemble` stage: read `<logits_dir>/<member>.npz` for every `classifier.members`, write the outputs.

    Args:
        params: the validated params (`classifier.members`, `ensemble`, `seed`).
        logits_dir: folder of the members' logits files.
        model_path: models/ensemble.json (method, weights or stacking coefficients; see `apply_ensemble`).
        metrics_path: metrics/ensemble.json ({"chosen", "val": {...}, "test": {...}}).
        plots_dir: plots/ensemble: scores.json (DVC bar plot rows) and scores.png.
    Returns:
        The metrics dict.
    """
    paths = {member: Path(logits_dir) / f"{member}.npz" for member in params.classifier.members}
    inputs = load_member_probs(paths, params.ensemble.tta)
    model, metrics = fit_ensemble(inputs, params.ensemble, params.seed)
    with staged_outputs():  # plots, model and metrics land together, or none of them
        write_score_plots(plots_dir, metrics["val"])
        atomic_write_json(model_path, model)
        atomic_write_json(metrics_path, metrics)
    return metrics
