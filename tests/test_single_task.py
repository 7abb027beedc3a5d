"""Single-task data sets run the whole DAG with real DVC: a detection-only source (receipts without
document-type labels), then a classification-only one (labels, no polygons), in one tiny-profile clone.

Every stage runs; the stages of the task without data write "no ... data" markers, `evaluate` scores
the other task only, `doclab predict` uses the models that exist, and `dvc metrics diff` shows the
numbers of the task that lost its data as gone.
"""
import json
from pathlib import Path

import pytest
import yaml
from conftest import build_dataset
from dvc_repo import TINY_PROFILE, dvc, make_repo, ran_stages, run

from doclab.classification.no_data import no_classification_data
from doclab.detection.model_file import no_detection_data
from doclab.predict import predict

pytestmark = pytest.mark.slow

PROFILE = {**TINY_PROFILE, "data.source": "sources", "data.split.val": 0.25, "data.split.test": 0.25,
           "classifier.members": ["mobilenetv3_small_050"]}  # one member: the matrix is not what is tested here
MEMBERS = PROFILE["classifier.members"]
STAGES = {"preprocess", "pretrain_detector", "train_detector", "tune_postprocess", "ensemble", "evaluate", "export",
          *(f"train_classifier@{member}" for member in MEMBERS)}
RAW = "data/raw/docs"
DETECTION_ONLY = {"name": "docs", "format": "ufo", "images": f"{RAW}/images", "annotations": f"{RAW}/annotations.json"}
CLASSIFICATION_ONLY = {"name": "docs", "format": "csv", "images": f"{RAW}/images", "labels": f"{RAW}/labels.csv",
                       "meta": f"{RAW}/meta.csv"}


def _repro_every_stage(repo: Path, source: dict, stages: set[str] = STAGES) -> dict:
    """Point params.yaml at `source`, `dvc repro` (`stages` must run, a rerun none); returns evaluate.json."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["sources"] = [source]
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(dvc("repro", cwd=repo)) == stages
    assert "Running stage" not in dvc("repro", cwd=repo).stdout
    return json.loads((repo / "metrics/evaluate.json").read_text())


def _predict(repo: Path, out: Path) -> dict:
    images = sorted((repo / "data/processed/images/docs").iterdir())[:2]
    assert predict(images, out, repo / "models", device="cpu", overlays=False) == []
    return json.loads((out / "predictions.json").read_text())["images"]


def test_detection_only_then_classification_only_sources_run_every_stage(tmp_path):
    repo = make_repo(tmp_path / "repo", PROFILE)
    build_dataset(repo / "data", n_images=12)  # data/raw/docs: UFO annotations, labels.csv, meta.csv

    # (a) receipts without document-type labels: the classifier branch writes markers
    evaluated = _repro_every_stage(repo, DETECTION_ONLY)
    assert evaluated and all(key.startswith("detect.") for key in evaluated), evaluated
    classifier_outputs = [repo / f"models/classifier/{m}.{suffix}" for m in MEMBERS for suffix in ("pt", "npz")]
    classifier_outputs += [repo / f"metrics/classifier/{m}.json" for m in MEMBERS]
    classifier_outputs += [repo / f"dvclive/train_classifier/{m}/metrics.json" for m in MEMBERS]
    for path in [*classifier_outputs, repo / "models/ensemble.json", repo / "metrics/ensemble.json"]:
        assert no_classification_data(path), path
    for path in ("results/test/classification.json", "results/val/classification.json", "plots/ensemble/scores.json"):
        assert json.loads((repo / path).read_text()) == [], path
    assert not (repo / "models/submission/classification.csv").exists()
    assert list(json.loads((repo / "metrics/export.json").read_text())) == ["detector"]
    assert json.loads((repo / "models/deploy/deploy.json").read_text())["classifier"] is None
    predictions = _predict(repo, tmp_path / "detected")  # the ONNX runtime (models/deploy exists)
    assert all("words" in entry and "class" not in entry for entry in predictions.values())
    assert not (tmp_path / "detected/classes.csv").exists()
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "detection only"], repo)

    # (b) labels without polygons: the detector branch writes markers
    # pretraining (off) reads no data source: it stays as it was
    evaluated = _repro_every_stage(repo, CLASSIFICATION_ONLY, STAGES - {"pretrain_detector"})
    assert evaluated and all(key.startswith("classify.") for key in evaluated), evaluated
    for path in ("models/detector.pt", "models/postprocess.json", "metrics/tune.json",
                 "dvclive/train_detector/metrics.json"):
        assert no_detection_data(repo / path), path
    for path in ("results/test/detection.json", "results/val/detection.json", "plots/tune/scores.json"):
        assert json.loads((repo / path).read_text()) == [], path
    assert list(json.loads((repo / "metrics/export.json").read_text())) == ["classifier"]
    assert json.loads((repo / "models/deploy/deploy.json").read_text())["detector"] is None
    predictions = _predict(repo, tmp_path / "classified")
    assert all("class" in entry and "words" not in entry for entry in predictions.values())
    assert not (tmp_path / "classified/submission.csv").exists()
    # the detector's numbers are gone from the metrics, not zeros
    diff = json.loads(dvc("metrics", "diff", "--json", cwd=repo).stdout)
    gone = {key: change for key, change in diff["metrics/evaluate.json"].items() if key.startswith("detect.")}
    assert gone and all(change["new"] is None for change in gone.values()), gone
    assert diff["metrics/tune.json"]["status"]["new"] == "no detection data"


def test_a_split_file_without_test_runs_every_stage_and_says_no_test_split(tmp_path):
    """A receipt set shipped as train + val (its test part held out, as ../shared's sroie_trainval): every
    stage runs, evaluate writes the "no test split" status, the val figures (per size too) are in tune.json."""
    repo = make_repo(tmp_path / "repo", PROFILE)
    build_dataset(repo / "data", n_images=12)
    names = sorted(p.name for p in (repo / RAW / "images").iterdir())
    (repo / RAW / "splits.json").write_text(json.dumps({"train": names[:9], "val": names[9:]}))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["sources"] = [DETECTION_ONLY]
    params["data"]["split"]["file"] = f"{RAW}/splits.json"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert ran_stages(dvc("repro", cwd=repo)) == STAGES
    assert json.loads((repo / "metrics/evaluate.json").read_text()) == {"status": "no test split"}
    assert json.loads((repo / "results/test/detection.json").read_text()) == []
    assert (repo / "models/submission/no_test_split.txt").is_file()
    tune = json.loads((repo / "metrics/tune.json").read_text())
    assert sum(group["images"] for group in tune["by_size"].values()) == 3
    assert len(list((repo / "plots/tune/worst").glob("*.png"))) == 3
