"""The `evaluate` stage: test-split detection and classification -> metrics/evaluate.json, plots, submissions,
and the per-image results `doclab compare` reads.

Metric keys are flat and stable (`detect.cleval.hmean`, `classify.macro_f1`, ...) so `dvc metrics diff`
and `dvc exp show` read well. The per-image files (`results/<split>/<task>.json`, committed) hold
what the metrics are computed from: `results/test/detection.json` one row of CLEval/IoU scores and
counts per image (also the per-image H-mean plot), `results/{test,val}/classification.json` one row
of label, prediction and probabilities per image. `results/val/detection.json` comes from
`tune_postprocess`.

A data set without a test split (train and val only) has nothing to score here: metrics/evaluate.json
is `{"status": "no test split"}` and the other outputs have no rows; its validation figures are in
metrics/tune.json (detection) and metrics/ensemble.json (classification).

A single-task data set is evaluated on its one task: when models/postprocess.json (detection) or
models/ensemble.json (classification) is the "no data" marker, that task's metric keys are absent
from metrics/evaluate.json, its per-image results and plot data are `[]`, and it has no submission
CSV and no PNG figures.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from doclab.classification.ensemble.evaluation import ClassificationResult, evaluate_classification, sample_rows
from doclab.classification.no_data import no_classification_data
from doclab.config import Params
from doclab.detection.breakdown import size_breakdown, size_groups, source_sizes
from doclab.detection.evaluation import DetectionResult, evaluate_detection
from doclab.detection.model_file import load_postprocess, no_detection_data
from doclab.detection.submission import submission_rows
from doclab.io import atomic_write_json, atomic_write_text, read_json, staged_outputs
from doclab.pipeline.no_data import write_status_png
from doclab.plots import evaluate as plots

WORST_IMAGES = 8
NO_TEST_SPLIT = "no test split"
NO_SUBMISSION = "no_test_split.txt"


@dataclass(frozen=True)
class EvaluatePaths:
    """Where the evaluate stage reads and writes (all from dvc.yaml); PNG figures go to `plots/png/`,
    per-image results to `results/<split>/<task>.json`."""

    data: Path
    detector: Path
    postprocess: Path
    ensemble: Path
    logits: Path
    metrics: Path
    plots: Path
    submission: Path
    results: Path


def _detection_metrics(result: DetectionResult) -> dict[str, float]:
    keys = ("hmean", "precision", "recall")
    flat = {f"detect.{family}.{key}": result.metrics[f"{family}/{key}"]
            for family in ("cleval", "cleval_global", "iou") for key in keys}
    flat["detect.cleval.num_split"] = result.metrics["cleval/num_split"]
    flat["detect.cleval.num_merge"] = result.metrics["cleval/num_merge"]
    flat["detect.images"] = len(result.per_image)
    return flat


def _size_metrics(result: DetectionResult, data_dir: Path) -> dict[str, float]:
    """`detect.by_size.<WxH or "other sizes">.<metric>`: the test scores per source-image size."""
    groups = size_groups(source_sizes(data_dir), [row["image"] for row in result.per_image])
    return {f"detect.by_size.{group}.{name.replace('/', '.')}": value
            for group, scores in size_breakdown(result.per_image, groups).items() for name, value in scores.items()}


def _classification_metrics(result: ClassificationResult) -> dict[str, float]:
    flat = {"classify.accuracy": result.metrics["accuracy"], "classify.macro_f1": result.metrics["macro_f1"]}
    for name in result.classes:
        for kind in ("precision", "recall", "f1"):
            flat[f"classify.{kind}.{name}"] = result.metrics[f"{kind}/{name}"]
    flat["classify.images"] = len(result.ids)
    return flat


def _write_detection(result: DetectionResult, chosen_box_thresh: float, paths: EvaluatePaths) -> None:
    rows = submission_rows(result.detections)
    atomic_write_text(paths.submission / "detection.csv",
                      "filename,polygons\n" + "".join(f"{key},{polygons}\n" for key, polygons in rows))
    atomic_write_json(paths.results / "test" / "detection.json", result.per_image)
    atomic_write_json(paths.plots / "box_thresh.json", result.box_thresh_curve)
    images = paths.plots / "png"
    plots.plot_hmean_histogram(result.per_image, images / "per_image_hmean.png")
    plots.plot_curve(result.box_thresh_curve, "box_thresh", "cleval_hmean", images / "box_thresh.png",
                     "Test CLEval H-mean vs box_thresh", marker=chosen_box_thresh)
    plots.save_overlays(result.per_image, result.detections, result.ground_truth, paths.data / "images",
                        images / "worst", WORST_IMAGES)


def _write_classification(result: ClassificationResult, val: ClassificationResult, paths: EvaluatePaths) -> None:
    atomic_write_json(paths.results / "test" / "classification.json", sample_rows(result))
    atomic_write_json(paths.results / "val" / "classification.json", sample_rows(val))
    names = [result.classes[i] for i in result.predicted]
    atomic_write_text(paths.submission / "classification.csv",
                      "ID,target\n" + "".join(f"{key},{name}\n" for key, name in zip(result.ids, names)))
    pairs = [{"actual": result.classes[row], "predicted": result.classes[column]}
             for row, counts in enumerate(result.confusion) for column, count in enumerate(counts)
             for _ in range(count)]
    atomic_write_json(paths.plots / "confusion.json", pairs)
    f1 = [{"class": name, "f1": result.metrics[f"f1/{name}"]} for name in result.classes]
    atomic_write_json(paths.plots / "class_f1.json", f1)
    plots.plot_confusion(result.confusion, result.classes, paths.plots / "png" / "confusion.png")
    plots.plot_bars(result.classes, [row["f1"] for row in f1], paths.plots / "png" / "class_f1.png", "F1",
                    "Test F1 per class")


def _write_no_detection(paths: EvaluatePaths) -> None:
    """The detection outputs DVC expects, without rows (see the module docstring)."""
    atomic_write_json(paths.results / "test" / "detection.json", [])
    atomic_write_json(paths.plots / "box_thresh.json", [])


def _write_no_classification(paths: EvaluatePaths) -> None:
    """The classification outputs DVC expects, without rows (see the module docstring)."""
    for path in (paths.results / "test" / "classification.json", paths.results / "val" / "classification.json",
                 paths.plots / "confusion.json", paths.plots / "class_f1.json"):
        atomic_write_json(path, [])


def _write_no_test_split(paths: EvaluatePaths) -> dict[str, str]:
    """A data set without a test split (`data.split.test: 0`, a split file without "test"): nothing to
    score; every output is written without rows, the submission folder holds only NO_SUBMISSION, the
    figures folder one status PNG, and metrics/evaluate.json is the NO_TEST_SPLIT marker."""
    marker = {"status": NO_TEST_SPLIT}
    paths.plots.mkdir(parents=True, exist_ok=True)
    with staged_outputs():
        _write_no_detection(paths)
        _write_no_classification(paths)
        # DVC needs both folders: the submission holds this note instead of the CSVs, the figures one status PNG
        atomic_write_text(paths.submission / NO_SUBMISSION, f"{NO_TEST_SPLIT}: nothing to submit\n")
        write_status_png(paths.plots / "png" / "no_test_split.png", NO_TEST_SPLIT)
        atomic_write_json(paths.metrics, marker)
    return marker


def run_evaluate(params: Params, paths: EvaluatePaths) -> dict[str, float]:
    """Score the detector (tuned post-processing) and the ensemble on the test split; write every output.

    Args:
        params: image_size, device, batch_size and detector settings for inference.
        paths: inputs (processed data, models) and outputs (metrics file, plots folder, submission folder).
    Returns:
        The flat metrics written to `paths.metrics`: `detect.*` and `classify.*` keys, each only
        when its task has data; `{"status": "no test split"}` when the test split is empty.
    """
    if not read_json(paths.data / "splits.json").get("test"):
        return _write_no_test_split(paths)
    metrics: dict[str, float] = {}
    if no_detection_data(paths.postprocess):
        write_detection = functools.partial(_write_no_detection, paths)
    else:
        post = load_postprocess(paths.postprocess)
        detection = evaluate_detection(params, paths.data, paths.detector, post)
        metrics.update(_detection_metrics(detection))
        metrics.update(_size_metrics(detection, paths.data))
        write_detection = functools.partial(_write_detection, detection, post.box_thresh, paths)
    if no_classification_data(paths.ensemble):
        write_classification = functools.partial(_write_no_classification, paths)
    else:
        classification = evaluate_classification(paths.ensemble, paths.logits)
        val_classification = evaluate_classification(paths.ensemble, paths.logits, "val")
        metrics.update(_classification_metrics(classification))
        write_classification = functools.partial(_write_classification, classification, val_classification, paths)
    paths.plots.mkdir(parents=True, exist_ok=True)
    with staged_outputs():  # plots, submission and metrics land together, or none of them
        write_detection()
        write_classification()
        atomic_write_json(paths.metrics, metrics)
    return metrics
