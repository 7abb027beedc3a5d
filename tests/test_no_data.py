"""The "no detection data" / "no classification data" markers of single-task data sets: written by the
stages of the task without data, recognised by `no_detection_data` / `no_classification_data`, refused
by the readers of real models, skipped by `doclab predict` and `doclab compare`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from doclab.classification.ensemble.combine import read_ensemble_file
from doclab.classification.logits import (
    VIEWS,
    MemberLogits,
    SplitLogits,
    load_logits,
    save_logits,
    save_no_data_logits,
)
from doclab.classification.model import read_classifier_file
from doclab.classification.no_data import no_classification_data, no_classification_data_marker
from doclab.config import Params, PostprocessParams, build, to_dict
from doclab.detection.model_file import (
    load_detector,
    load_postprocess,
    no_detection_data,
    no_detection_data_marker,
    save_no_detection_model,
)
from doclab.errors import DataError
from doclab.experiments.compare import CompareError, _task_runs
from doclab.experiments.revisions import RevisionFiles
from doclab.io import atomic_write_json
from doclab.pipeline.ensemble import run_ensemble
from doclab.pipeline.no_data import NO_DATA_PLOT
from doclab.pipeline.train_classifier import train_classifier
from doclab.pipeline.train_detector import train_detector
from doclab.pipeline.tune_postprocess import tune_postprocess
from doclab.predict import predict

PARAMS = {"device": "cpu", "classifier": {"members": ["m1", "m2"]}}


@pytest.fixture()
def unlabelled_without_polygons(tmp_path) -> Path:
    """A processed folder whose images have neither a label nor text polygons."""
    data = tmp_path / "processed"
    atomic_write_json(data / "classes.json", [])
    atomic_write_json(data / "annotations.json", {"images": {}})
    atomic_write_json(data / "splits.json", {"train": ["a.jpg"], "val": ["b.jpg"], "test": ["c.jpg"]})
    (data / "labels.csv").write_text("ID,target\n")
    return data


def _assert_training_markers(live: Path, checkpoints: Path, marker: dict) -> None:
    assert json.loads((live / "metrics.json").read_text()) == marker
    assert [p.name for p in (live / "plots/metrics").iterdir()] == [NO_DATA_PLOT]  # git keeps no empty folder
    assert json.loads((live / "plots/metrics" / NO_DATA_PLOT).read_text()) == []
    assert checkpoints.is_dir()


def test_detector_branch_without_polygons_writes_markers_the_loaders_refuse(unlabelled_without_polygons, tmp_path):
    params, out = build(Params, PARAMS), tmp_path / "out"
    model = out / "models/detector.pt"
    marker = train_detector(params, unlabelled_without_polygons, model, out / "ckpt", out / "live")
    assert marker == no_detection_data_marker() == {"status": "no detection data"}
    _assert_training_markers(out / "live", out / "ckpt", marker)
    assert no_detection_data(model)
    with pytest.raises(DataError, match=r"detector.pt: no detection data: no detector was trained"):
        load_detector(model)
    tuned = [out / "postprocess.json", out / "tune.json", out / "plots", out / "val.json"]
    assert tune_postprocess(params, unlabelled_without_polygons, model, *tuned) is None
    assert no_detection_data(tuned[0]) and no_detection_data(tuned[1])
    assert json.loads(tuned[3].read_text()) == json.loads((out / "plots/scores.json").read_text()) == []
    assert (out / "plots/scores.png").read_bytes().startswith(b"\x89PNG")
    with pytest.raises(DataError, match=r"postprocess.json: no detection data: nothing was tuned"):
        load_postprocess(tuned[0])
    real = tmp_path / "real.json"
    atomic_write_json(real, {**to_dict(PostprocessParams()), "metric": "cleval/hmean", "score": 0.5})
    assert not no_detection_data(real)


def test_classifier_branch_without_labels_writes_markers_the_readers_refuse(unlabelled_without_polygons, tmp_path):
    params, out = build(Params, PARAMS), tmp_path / "out"
    for member in ("m1", "m2"):
        marker = train_classifier(params, member, unlabelled_without_polygons, out / f"{member}.pt",
                                  out / f"{member}.npz", out / f"{member}.json", out / f"ckpt/{member}",
                                  out / f"live/{member}")
        assert marker == no_classification_data_marker() == {"status": "no classification data"}
        _assert_training_markers(out / f"live/{member}", out / f"ckpt/{member}", marker)
    for suffix in ("pt", "npz", "json"):
        assert no_classification_data(out / f"m1.{suffix}"), suffix
    assert (out / "m1.npz").read_bytes() == (out / "m2.npz").read_bytes()  # no timestamps: DVC sees no change
    with pytest.raises(DataError, match=r"m1.pt: no classification data: no classifier was trained"):
        read_classifier_file(out / "m1.pt")
    with pytest.raises(ValueError, match=r"m1.npz: no classification data"):
        load_logits(out / "m1.npz")
    assert run_ensemble(params, out, out / "ensemble.json", out / "ensemble_metrics.json", out / "plots") == marker
    assert no_classification_data(out / "ensemble.json") and no_classification_data(out / "ensemble_metrics.json")
    assert json.loads((out / "plots/scores.json").read_text()) == []
    with pytest.raises(DataError, match=r"ensemble.json: no classification data"):
        read_ensemble_file(out / "ensemble.json")


def _real_logits(path: Path, name: str) -> None:
    labels = np.arange(6) % 2
    splits = {split: SplitLogits(np.array([f"{split}{i}.jpg" for i in range(6)]), labels,
                                 np.zeros((1, len(VIEWS), 6, 2), np.float32)) for split in ("val", "test")}
    save_logits(path, MemberLogits(("a", "b"), (name,), VIEWS, splits))


def test_ensemble_of_trained_and_untrained_members_is_one_line_error(tmp_path):
    _real_logits(tmp_path / "m1.npz", "m1")
    save_no_data_logits(tmp_path / "m2.npz")
    assert not no_classification_data(tmp_path / "m1.npz")
    with pytest.raises(DataError, match=r"m2.npz: no classification data, but member 'm1' was trained"):
        run_ensemble(build(Params, PARAMS), tmp_path, tmp_path / "e.json", tmp_path / "m.json", tmp_path / "plots")


def test_predict_with_models_of_neither_task_is_a_one_line_error(tmp_path):
    save_no_detection_model(tmp_path / "models/detector.pt")
    atomic_write_json(tmp_path / "models/ensemble.json", no_classification_data_marker())
    with pytest.raises(DataError, match=r"models: no model to predict with \(detector.pt says no detection data"):
        predict([tmp_path], tmp_path / "out", tmp_path / "models", device="cpu")
    assert not (tmp_path / "out").exists()


def test_compare_skips_a_task_no_revision_has_rows_for(tmp_path):
    sides = []
    for name, rows in (("a", []), ("b", [])):
        atomic_write_json(tmp_path / name / "results/test/classification.json", rows)
        sides.append(RevisionFiles(tmp_path / name, name, name, None))
    assert _task_runs("classification", "test", sides[:1], sides[1:]) is None
    atomic_write_json(tmp_path / "b/results/test/classification.json",
                      [{"image": "x.jpg", "label": "a", "predicted": "a", "probabilities": {"a": 1.0}}])
    with pytest.raises(CompareError, match=r"a: results/test/classification.json: no per-image rows"):
        _task_runs("classification", "test", sides[:1], sides[1:])


def test_evaluate_without_a_test_split_writes_the_status_and_no_rows(tmp_path):
    from doclab.config import Params
    from doclab.pipeline.evaluate import NO_TEST_SPLIT, EvaluatePaths, run_evaluate

    data = tmp_path / "data"
    data.mkdir()
    (data / "splits.json").write_text(json.dumps({"train": ["a.jpg"], "val": ["b.jpg"], "test": []}))
    paths = EvaluatePaths(data, tmp_path / "missing/detector.pt", tmp_path / "missing/postprocess.json",
                          tmp_path / "missing/ensemble.json", tmp_path / "missing/logits", tmp_path / "metrics.json",
                          tmp_path / "plots", tmp_path / "submission", tmp_path / "results")
    assert run_evaluate(Params(), paths) == {"status": NO_TEST_SPLIT}
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"status": NO_TEST_SPLIT}
    for name in ("test/detection.json", "test/classification.json", "val/classification.json"):
        assert json.loads((tmp_path / "results" / name).read_text()) == [], name
    assert [p.name for p in (tmp_path / "submission").iterdir()] == ["no_test_split.txt"]  # a DVC output: it exists
    assert [p.name for p in (tmp_path / "plots/png").iterdir()] == ["no_test_split.png"]  # likewise
