"""Post-processing search on cached validation probability maps (the `tune_postprocess` stage).

    result = tune_postprocess(params, Path("data/processed"), Path("models/detector.pt"),
                              Path("models/postprocess.json"), Path("metrics/tune.json"), Path("plots/tune"),
                              Path("results/val/detection.json"))
    postprocess = load_postprocess("models/postprocess.json")  # a validated PostprocessParams

The detector runs once (`cache`); every candidate then costs only post-processing and
scoring (`search`), in `tune.workers` processes.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from doclab.config import Params, to_dict
from doclab.detection.breakdown import size_breakdown, size_groups, source_sizes
from doclab.detection.search import SearchResult, search_postprocess
from doclab.io import atomic_directory, atomic_write_json, staged_outputs
from doclab.pipeline.no_data import write_no_data_plot, write_status_png

PLOT_DATA = "scores.json"
PLOT_IMAGE = "scores.png"
WORST_DIR = "worst"
WORST_IMAGES = 8

__all__ = ["TuneResult", "tune_postprocess"]


@dataclass(frozen=True)
class TuneResult:
    """What `tune_postprocess` found and how long it took.

    Attributes:
        metric: the maximised metric's name.
        best: metrics of the tuned setting.
        untuned: metrics of `params.postprocess`.
        best_params: the tuned keys of the winner.
        candidates: candidates scored (the written `postprocess` first).
        cache_seconds: the one detector pass over the validation split.
        search_seconds: scoring every candidate and the baseline.
    """

    metric: str
    best: dict[str, float]
    untuned: dict[str, float]
    best_params: dict[str, float | bool]
    candidates: int
    cache_seconds: float
    search_seconds: float


def _write_outputs(result: SearchResult, scored: tuple[list[dict], dict, dict], params: Params, data_dir: Path,
                   out: Path, metrics_path: Path, plots_dir: Path, results_path: Path) -> None:
    """models/postprocess.json, metrics/tune.json, the plot data + PNG, the winner's per-image rows and
    overlays of its worst validation images."""
    from doclab.plots.evaluate import save_overlays  # matplotlib: see tune_postprocess
    from doclab.plots.tune import score_rows, write_score_plot

    rows, found, ground_truth = scored
    metric = params.tune.metric
    best = result.scores[result.best_index]
    by_size = size_breakdown(rows, size_groups(source_sizes(data_dir), [row["image"] for row in rows]))
    atomic_write_json(out, {**to_dict(result.best), "metric": metric, "score": best[metric]})
    atomic_write_json(metrics_path, {"metric": metric, "best": best, "untuned": result.untuned,
                                     "best_params": result.candidates[result.best_index],
                                     "candidates": len(result.candidates), "by_size": by_size})
    atomic_write_json(results_path, rows)
    save_overlays(rows, found, ground_truth, data_dir / "images", plots_dir / WORST_DIR, WORST_IMAGES)
    plot_rows = score_rows(result.candidates, result.scores, metric)
    atomic_write_json(plots_dir / PLOT_DATA, plot_rows)
    write_score_plot(plots_dir / PLOT_IMAGE, plot_rows, metric, params.tune.search)


def _write_no_data(out: Path, metrics_path: Path, plots_dir: Path, results_path: Path) -> None:
    """Every output of a "no detection data" detector: the marker, empty rows, a status PNG (`pipeline.no_data`)."""
    from doclab.detection.model_file import NO_DETECTION_DATA, no_detection_data_marker

    with staged_outputs():
        atomic_write_json(out, no_detection_data_marker())
        atomic_write_json(metrics_path, no_detection_data_marker())
        atomic_write_json(results_path, [])
        write_no_data_plot(plots_dir / PLOT_DATA, plots_dir / PLOT_IMAGE, NO_DETECTION_DATA)
        with atomic_directory(plots_dir / WORST_DIR) as worst:
            write_status_png(worst / "no_data.png", NO_DETECTION_DATA)


def tune_postprocess(params: Params, data_dir: str | Path, model_path: str | Path, out: str | Path,
                     metrics_path: str | Path, plots_dir: str | Path, results_path: str | Path) -> TuneResult | None:
    """Search `params.tune.space` for the post-processing that maximises `params.tune.metric`.

    Args:
        params: reads seed, device, image_size, batch_size, detector, postprocess (the untuned
            baseline, whose other keys every candidate keeps) and tune.
        data_dir: the processed folder; the validation split is searched.
        model_path: models/detector.pt.
        out: models/postprocess.json: the full tuned PostprocessParams plus `metric` and `score`
            (read it with `load_postprocess`).
        metrics_path: metrics/tune.json: metric name, best and untuned metrics, tuned keys,
            candidate count, the best setting's scores per source-image size (`by_size`, see
            `detection.breakdown`; no timings: identical runs give identical bytes).
        plots_dir: plots/tune: scores.json (one row per candidate: tuned keys + score),
            scores.png and worst/: overlays of the 8 lowest-H-mean validation images.
        results_path: results/val/detection.json: the tuned setting's per-image validation rows
            (`DetectionEvaluator.per_image`), what `doclab compare --split val` and the sweep read.
    Returns:
        The `TuneResult` (with timings, for printing); None when `model_path` is the "no detection
        data" marker: then every output is the marker (JSON files) or empty (rows, plot).
    Raises:
        FileNotFoundError: no model file.
        CheckpointError: not a detector file.
        ValueError: no validation images with detection annotations.
    """
    # torch (and matplotlib) load here, not at the top: the search's worker processes import
    # this package, and a torch import would cost each of them seconds.
    from doclab.detection.dataset import load_ground_truth
    from doclab.detection.evaluation import score_images
    from doclab.detection.maps import cache_split_maps
    from doclab.detection.model_file import no_detection_data

    if no_detection_data(model_path):
        _write_no_data(Path(out), Path(metrics_path), Path(plots_dir), Path(results_path))
        return None
    data_dir = Path(data_dir)
    ground_truth = load_ground_truth(data_dir, "val")
    start = time.perf_counter()
    with cache_split_maps(params, data_dir, Path(model_path)) as cache:
        cached = time.perf_counter()
        result = search_postprocess(cache, ground_truth, params.postprocess, params.tune, params.seed)
        searched = time.perf_counter()
        _, rows, found = score_images(cache, ground_truth, result.best)
    with staged_outputs():  # postprocess.json, metrics, plots and results land together, or none of them
        _write_outputs(result, (rows, found, ground_truth), params, data_dir, Path(out), Path(metrics_path),
                       Path(plots_dir), Path(results_path))
    return TuneResult(params.tune.metric, result.scores[result.best_index], result.untuned,
                      dict(result.candidates[result.best_index]), len(result.candidates),
                      cached - start, searched - cached)
