"""`doclab predict` and the evaluate stage's pieces on tiny real models and files."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from doclab.classification.ensemble.evaluation import evaluate_classification
from doclab.classification.logits import VIEWS, MemberLogits, SplitLogits, save_logits
from doclab.cli import main
from doclab.config import Params, PostprocessParams, build, to_dict
from doclab.detection.submission import submission_rows
from doclab.detection.model import build_detector
from doclab.detection.postprocess import Detection
from doclab.engine.checkpoint import MODEL_FORMAT, save_checkpoint
from doclab.io import atomic_write_json
from doclab.pipeline.ensemble import run_ensemble
from doclab.plots.overlay import GT_COLOUR, PRED_COLOUR, draw_overlay
from doclab.predict import find_images

TINY = {"model": "resnet18", "image_size": 64, "device": "cpu", "detector": {"decoder_channels": 16}}


def test_submission_rows_join_points_and_polygons():
    square = np.array([[1.2, 2.0], [10.0, 2.0], [10.0, 8.6], [1.2, 8.6]], np.float32)
    rows = submission_rows({"a.jpg": [Detection(square, 0.9), Detection(square + 1, 0.8)], "b.jpg": []})
    assert rows == [("a.jpg", "1 2 10 2 10 9 1 9|2 3 11 3 11 10 2 10"), ("b.jpg", "")]


def test_overlay_draws_ground_truth_and_predictions_in_their_colours():
    image = np.full((100, 200, 3), 255, np.uint8)
    gt = [np.array([[20, 40], [80, 40], [80, 60], [20, 60]], np.float32)]
    predicted = [np.array([[110, 40], [180, 40], [180, 70], [110, 70]], np.float32)]
    out = draw_overlay(image, gt, [False], predicted, "hmean 0.5")
    assert tuple(out[50, 20]) == GT_COLOUR and tuple(out[55, 180]) == PRED_COLOUR
    assert (out[:30, :120] == 0).all(axis=2).any()  # black caption text in the corner
    assert (image == 255).all()  # the input is left as it was


def test_find_images_recurses_folders_and_reports_missing_paths(tmp_path):
    (tmp_path / "scans/sub").mkdir(parents=True)
    for name in ("scans/a.jpg", "scans/sub/b.PNG", "scans/notes.txt", "c.jpg"):
        (tmp_path / name).write_bytes(b"x")
    found, problems = find_images([tmp_path / "scans", tmp_path / "c.jpg", tmp_path / "nope"])
    assert [key for key, _ in found] == ["a.jpg", "sub/b.PNG", "c.jpg"]
    assert problems == [f"{tmp_path / 'nope'}: no such file or folder"]


def _member_file(path: Path, name: str, rng: np.random.Generator, labels: dict, skill: float) -> None:
    splits = {}
    for split, truth in labels.items():
        logits = rng.normal(size=(1, len(VIEWS), len(truth), 3)).astype(np.float32)
        logits[0, :, np.arange(len(truth)), truth] += skill
        splits[split] = SplitLogits(np.array([f"{split}{i}.jpg" for i in range(len(truth))]), truth, logits)
    save_logits(path, MemberLogits(("a", "b", "c"), (name,), VIEWS, splits))


def test_evaluate_classification_reapplies_the_chosen_ensemble(tmp_path):
    rng = np.random.default_rng(0)
    labels = {split: np.arange(30) % 3 for split in ("val", "test")}
    _member_file(tmp_path / "m1.npz", "m1", rng, labels, 2.5)
    _member_file(tmp_path / "m2.npz", "m2", rng, labels, 1.0)
    params = build(Params, {"classifier": {"members": ["m1", "m2"]}, "ensemble": {"method": "weighted"}})
    metrics = run_ensemble(params, tmp_path, tmp_path / "ensemble.json", tmp_path / "ens.json", tmp_path / "plots")
    result = evaluate_classification(tmp_path / "ensemble.json", tmp_path)
    assert result.method == "weighted" and result.classes == ("a", "b", "c")
    assert result.metrics["macro_f1"] == pytest.approx(metrics["test"]["weighted"]["macro_f1"])
    assert np.asarray(result.confusion).sum() == 30 and len(result.predicted) == 30


def test_evaluate_classification_without_ensemble_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="ensemble.json: no ensemble model"):
        evaluate_classification(tmp_path / "ensemble.json", tmp_path)


@pytest.fixture()
def models(tmp_path) -> Path:
    """models/ with a random-weight tiny detector and a post-processing file (no classifier)."""
    params = build(Params, TINY)
    model = build_detector(params.model, params.detector, pretrained=False)
    save_checkpoint(tmp_path / "models/detector.pt", {
        "format": MODEL_FORMAT, "kind": "detector", "backbone": params.model, "state_dict": model.state_dict(),
        "params": to_dict(params), "epoch": 1, "metrics": {}})
    atomic_write_json(tmp_path / "models/postprocess.json",
                      {**to_dict(PostprocessParams(thresh=0.2, box_thresh=0.2)), "metric": "cleval/hmean", "score": 0})
    return tmp_path / "models"


def test_predict_writes_outputs_and_reports_an_unreadable_image(models, tmp_path, capsys):
    images = tmp_path / "in"
    images.mkdir()
    for index in range(3):
        page = np.full((90 + 10 * index, 120, 3), 255, np.uint8)
        cv2.putText(page, "TOTAL 12.50", (5, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 2)
        cv2.imwrite(str(images / f"page{index}.jpg"), page)
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    code = main(["predict", str(images), "--out", str(tmp_path / "out"), "--models", str(models), "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"error: {images / 'broken.jpg'}: " in captured.err
    predictions = json.loads((tmp_path / "out/predictions.json").read_text())["images"]
    assert sorted(predictions) == ["page0.jpg", "page1.jpg", "page2.jpg"]
    assert predictions["page2.jpg"]["img_h"] == 110 and predictions["page2.jpg"]["img_w"] == 120
    for entry in predictions.values():
        for word in entry["words"].values():
            points = np.array(word["points"])
            assert points.shape[1] == 2 and points.min() >= 0 and 0 <= word["score"] <= 1
    rows = (tmp_path / "out/submission.csv").read_text().splitlines()
    assert rows[0] == "filename,polygons" and len(rows) == 4
    assert sorted(p.name for p in (tmp_path / "out/overlays").iterdir()) == ["page0.png", "page1.png", "page2.png"]
    assert not (tmp_path / "out/classes.csv").exists()  # no ensemble in models/: detection only


def test_predict_without_models_is_a_one_line_error(tmp_path, capsys):
    code = main(["predict", str(tmp_path), "--out", str(tmp_path / "out"), "--models", str(tmp_path / "none")])
    assert code == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'none' / 'detector.pt'}: no trained detector "
                                               "(run `dvc repro` first)")
