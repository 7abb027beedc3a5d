"""Bad input and faults at every entry point: one `error:` line naming the file or key, exit 2, and
nothing lost or half-written (the fault sweep's cases; DVC-level ones are in test_bad_input_dvc.py)."""
from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from test_predict_evaluate import models  # noqa: F401  (fixture: a tiny detector in models/)

from doclab.cli import main
from doclab.config import ConfigError
from doclab.detection.backbone import create_backbone
from doclab.detection.model_file import load_detector
from doclab.engine.checkpoint import CheckpointError, save_model_file
from doclab.errors import exit_on_error
from doclab.io import atomic_directory, atomic_write_bytes, atomic_write_json, staged_outputs

REPO = Path(__file__).resolve().parents[1]


def check_params(tmp_path: Path, text: str | bytes, capsys) -> str:
    path = tmp_path / "params.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    assert main(["check-params", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: "), err
    return err[len(f"error: {path}: "):].strip()


@pytest.mark.parametrize("text, expected", [
    ("", "no params in the file (empty or only comments)"),
    ("# nothing but a comment\n", "no params in the file (empty or only comments)"),
    ("detector: null\n", "detector: got null, expected a mapping of keys"),
    ("seed: 1\ndata:\n  source: synthetic\nseed: 2\n", "duplicate key 'seed' (lines 1 and 4)"),
    ("detector:\n  shrink_ratio: .nan\n", "detector.shrink_ratio: got nan, expected a finite number"),
    ("detector:\n  train:\n    lr: .inf\n", "detector.train.lr: got inf, expected a finite number"),
    (b"seed: 1 # \xff\xfe\n", "not UTF-8 text"),
])
def test_check_params_rejects_silent_or_crashing_files_in_one_line(tmp_path, capsys, text, expected):
    assert expected in check_params(tmp_path, text, capsys)


def test_check_params_names_unknown_or_unusable_timm_models(tmp_path, capsys):
    line = check_params(tmp_path, "model: resnet1000\n", capsys)
    assert line.startswith("model: unknown timm model 'resnet1000' (closest: ") and "resnet101" in line
    line = check_params(tmp_path, "model: vit_tiny_patch16_224\n", capsys)
    assert line.startswith("model: timm model 'vit_tiny_patch16_224' needs 4 feature levels")
    line = check_params(tmp_path, "classifier:\n  members:\n  - resnet18\n  - efficientnet_b99\n", capsys)
    assert line.startswith("classifier.members: unknown timm model 'efficientnet_b99' (closest: ")


def write_ufo(path: Path, words: dict[str, list], size: bool = True) -> Path:
    entry = {"words": {key: {"points": points} for key, points in words.items()}}
    if size:
        entry.update(img_w=200, img_h=100)
    path.write_text(json.dumps({"images": {"a.jpg": entry}}))
    return path


GT_WORDS = {"1": [[10, 10], [90, 10], [90, 40], [10, 40]], "2": [[100, 50], [190, 50], [190, 80], [100, 80]]}


def eval_det(gt: Path, pred: Path, capsys) -> tuple[dict, str]:
    assert main(["eval-det", str(gt), str(pred), "--json"]) == 0
    captured = capsys.readouterr()
    return json.loads(captured.out), captured.err


def test_eval_det_metrics_stay_in_range_with_huge_coordinates_and_warn(tmp_path, capsys):
    gt = write_ufo(tmp_path / "gt.json", GT_WORDS)
    results = []
    for big in (1e15, 1e20):
        pred = write_ufo(tmp_path / "pred.json", {"1": GT_WORDS["1"], "2": [[0, 0], [big, 0], [big, big], [0, big]]},
                         size=False)
        metrics, err = eval_det(gt, pred, capsys)
        assert all(0.0 <= value <= 1.0 for value in metrics.values()), metrics
        assert "1 detection(s) reach more than one image size outside their image: clipped there" in err
        results.append(metrics)
    assert results[0] == results[1]  # the precision no longer depends on how huge


def test_eval_det_warns_about_degenerate_polygons_and_refuses_an_empty_ground_truth(tmp_path, capsys):
    gt = write_ufo(tmp_path / "gt.json", GT_WORDS)
    pred = write_ufo(tmp_path / "pred.json", {"1": GT_WORDS["1"], "2": [[1, 1], [5, 5]],
                                              "3": [[20, 20], [30, 20], [40, 20], [50, 20]],
                                              "4": [[0, 0], [20, 10], [20, 0], [0, 30]]})
    _, err = eval_det(gt, pred, capsys)
    assert (f"warning: {pred}: degenerate polygons scored as given: 1 with fewer than 3 points, "
            "1 self-intersecting, 1 zero area") in err
    empty = write_ufo(tmp_path / "empty.json", {})
    assert main(["eval-det", str(empty), str(pred)]) == 2
    assert capsys.readouterr().err == f"error: {empty}: no ground-truth words in 1 image(s): nothing to score against\n"


@pytest.mark.parametrize("fault", [PermissionError(errno.EACCES, "Permission denied", "/data/out/x.json"),
                                   OSError(errno.ENOSPC, "No space left on device", "/data/out/x.json"),
                                   OSError(errno.EROFS, "Read-only file system", "/data/out")])
def test_os_errors_are_one_line_naming_the_path(capsys, fault):
    def failing() -> None:
        raise fault
    assert exit_on_error(failing) == 2
    assert capsys.readouterr().err == f"error: {fault.filename}: {fault.strerror} (errno {fault.errno})\n"


def test_under_dvc_the_error_line_says_how_to_restore_the_outputs(capsys, monkeypatch):
    monkeypatch.setenv("DVC_STAGE", "preprocess")
    assert exit_on_error(lambda: load_detector("/nowhere/detector.pt")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`dvc checkout preprocess` restores the cached ones" in err


def test_outputs_follow_the_umask_and_stale_temps_of_dead_writers_are_removed(tmp_path):
    previous = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "f.json", b"{}")
        with atomic_directory(tmp_path / "folder") as folder:
            (folder / "x").write_text("x")
    finally:
        os.umask(previous)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o755
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".folder.{dead.stdout.strip()}.abc123.tmp"
    live = tmp_path / f".folder.{os.getppid()}.def456.tmp"  # a live writer's temp is left alone
    stale.mkdir()
    live.mkdir()
    with atomic_directory(tmp_path / "folder"):
        pass
    assert not stale.exists() and live.exists()


def test_staged_outputs_land_together_or_not_at_all(tmp_path):
    atomic_write_json(tmp_path / "metrics/m.json", {"old": 1})
    with atomic_directory(tmp_path / "out") as out:
        (out / "old.txt").write_text("old")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    with pytest.raises(OSError):
        with staged_outputs():
            with atomic_directory(tmp_path / "out") as out:
                (out / "new.txt").write_text("new")
            atomic_write_json(tmp_path / "metrics/m.json", {"new": 1})
            atomic_write_json(blocked / "m.json", {})  # fails: the earlier two must not land
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["old.txt"]
    assert json.loads((tmp_path / "metrics/m.json").read_text()) == {"old": 1}
    assert not list(tmp_path.glob(".*.tmp")) and not list((tmp_path / "metrics").glob(".*.tmp"))


def test_detector_file_with_other_weights_and_pickled_backbone_weights_are_one_line(tmp_path):
    save_model_file(tmp_path / "detector.pt", "detector", {
        "backbone": "resnet18", "state_dict": {"w": torch.ones(1)}, "epoch": 1, "metrics": {},
        "params": {"detector": {}}})
    with pytest.raises(CheckpointError, match=r"detector.pt: its weights do not fit timm model 'resnet18'"):
        load_detector(tmp_path / "detector.pt")
    torch.save({"w": np.arange(3)}, tmp_path / "weights.pth")  # a numpy array needs full unpickling
    with pytest.raises(ConfigError, match=r"detector.backbone_weights: .*weights.pth' is not a weights-only"):
        create_backbone("resnet18", weights_path=str(tmp_path / "weights.pth"))


def test_predict_bad_arguments_and_all_inputs_failing_keep_the_previous_outputs(models, tmp_path, capsys):  # noqa: F811
    page = tmp_path / "in" / "page.png"
    page.parent.mkdir()
    import cv2
    cv2.imwrite(str(page), np.full((60, 80, 3), 255, np.uint8))
    out = tmp_path / "out"
    assert main(["predict", str(page), "--out", str(out), "--models", str(models), "--device", "cpu"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "nope.jpg"), "--out", str(out), "--models", str(models)]) == 1
    err = capsys.readouterr().err
    assert f"error: {out}: no input could be read, the folder was left as it was" in err
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    with pytest.raises(SystemExit):
        main(["predict", str(page), "--out", str(out), "--batch-size", "0"])
    assert "expected a positive integer, got 0" in capsys.readouterr().err
    assert main(["predict", str(page), "--out", str(page), "--models", str(models)]) == 2
    assert capsys.readouterr().err == f"error: --out {page}: is a file, expected a folder\n"


# A stage (the outer process) whose worker (the inner one) waits forever unless it leaves with its stage.
ORPHAN = """import os, pathlib, subprocess, sys, time
if len(sys.argv) == 2:
    child = subprocess.Popen([sys.executable, __file__, sys.argv[1], str(os.getpid())])
    print(child.pid, flush=True)
    time.sleep(600)
else:
    from doclab.processes import leave_with
    leave_with(int(sys.argv[2]))
    pathlib.Path(sys.argv[1]).touch()
    time.sleep(600)
"""


def test_a_worker_leaves_when_its_stage_is_sigkilled(tmp_path):
    script, ready = tmp_path / "stage.py", tmp_path / "worker-ready"
    script.write_text(ORPHAN, encoding="utf-8")
    stage = subprocess.Popen([sys.executable, str(script), str(ready)], stdout=subprocess.PIPE, text=True)
    worker = int(stage.stdout.readline())
    deadline = time.monotonic() + 60
    while not ready.exists() and time.monotonic() < deadline:  # its watch runs before the stage dies
        time.sleep(0.05)
    stage.send_signal(signal.SIGKILL)
    stage.wait()
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker), "the worker outlived its stage"


def _alive(pid: int) -> bool:
    try:  # a zombie (exited, not yet reaped by init) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def _preprocess_command(tmp_path: Path) -> list[str]:
    (tmp_path / "params.yaml").write_text(
        "data:\n  source: synthetic\n  synthetic:\n    num_images: 60\npreprocess:\n  workers: 2\n")
    return [sys.executable, str(REPO / "stages/preprocess.py"), "--params", "params.yaml", "--out", "data/processed",
            "--metrics", "metrics/data.json"]


def _wait_for_temp(tmp_path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while not list((tmp_path / "data").glob(".processed.*.tmp/images/*")):
        assert process.poll() is None and time.monotonic() < deadline, "preprocess ended before writing images"
        time.sleep(0.05)


@pytest.mark.slow
def test_preprocess_killed_halfway_keeps_the_previous_outputs_and_leaves_no_temp(tmp_path):
    command = _preprocess_command(tmp_path)
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)
    before = (tmp_path / "data/processed/annotations.json").read_bytes()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        _wait_for_temp(tmp_path, process)
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
        assert process.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
        assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()[-800:]
        assert (tmp_path / "data/processed/annotations.json").read_bytes() == before
        leftovers = list((tmp_path / "data").glob(".processed.*.tmp"))
        assert leftovers == [] if sig == signal.SIGTERM else len(leftovers) == 1
    subprocess.run(command, cwd=tmp_path, check=True, capture_output=True)  # the next run clears the leftover
    assert not list((tmp_path / "data").glob(".processed.*.tmp"))


@pytest.mark.slow
def test_predict_killed_halfway_keeps_the_previous_outputs_and_leaves_no_temp(models, tmp_path):  # noqa: F811
    import cv2
    images = tmp_path / "in"
    images.mkdir()
    for index in range(24):
        cv2.imwrite(str(images / f"page{index:02d}.png"), np.full((200, 160, 3), 255 - index, np.uint8))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "doclab.cli", "predict", str(images), "--out", str(out), "--models", str(models),
               "--device", "cpu", "--batch-size", "1"]
    subprocess.run(command, check=True, capture_output=True)
    before = (out / "predictions.json").read_bytes()
    for sig in (signal.SIGTERM, signal.SIGKILL):
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".out.*.tmp/overlays/*")):
            assert process.poll() is None and time.monotonic() < deadline, "predict ended before any overlay"
            time.sleep(0.05)
        process.send_signal(sig)
        _, err = process.communicate(timeout=60)
        assert process.returncode == (128 + sig if sig == signal.SIGTERM else -sig)
        assert b"Traceback" not in err, err.decode()[-800:]
        assert (out / "predictions.json").read_bytes() == before
        assert len(list(tmp_path.glob(".out.*.tmp"))) == (0 if sig == signal.SIGTERM else 1)
    subprocess.run(command, check=True, capture_output=True)
    assert not list(tmp_path.glob(".out.*.tmp")) and (out / "predictions.json").read_bytes() == before


def test_messages_name_the_source_image_size_and_the_split_keys():
    from doclab.config import Params, build
    from doclab.data.polygons import check_polygon
    from doclab.data.records import DataError
    from doclab.pipeline.preprocess import _check_splits

    points = np.array([[-10.0, 5], [50, 5], [50, 20], [-10, 20]]) * 0.5  # drawn on a 256x181 scan, resized by 1/2
    _, note = check_polygon(points, 128, 90, 1.0, scale=(0.5, 0.5))
    assert note == "points outside the 256x180 image clipped (by up to 10.0 px)"
    params = build(Params, {"data": {"split": {"val": 0.5, "test": 0.5}}})
    with pytest.raises(DataError, match=r"split 'train' is empty after validation: add images, or lower "
                                        r"data.split.val \(0.5\) / data.split.test \(0.5\)"):
        _check_splits({"train": [], "val": ["a"], "test": ["b"]}, params)


def test_preprocess_that_cannot_write_its_metrics_replaces_no_output(make_dataset, write_params, tmp_path, capsys):
    from doclab.config import load_params
    from doclab.pipeline.preprocess import preprocess

    ds = make_dataset()
    params = load_params(write_params(ds))
    out, metrics = tmp_path / "processed", tmp_path / "metrics" / "data.json"
    preprocess(params, ds.root, out, metrics)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    metrics.unlink()
    metrics.parent.rmdir()
    metrics.parent.write_text("a file where the metrics folder should be")  # the metrics write fails
    params = load_params(write_params(ds, {"seed": 7}))  # another split: data/processed would change
    assert exit_on_error(lambda: preprocess(params, ds.root, out, metrics)) == 2
    assert f"error: {metrics.parent}" in capsys.readouterr().err
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert not list(tmp_path.glob(".processed.*.tmp"))


@pytest.mark.parametrize("text, expected", [
    ("{not json", "line 1: malformed JSON"),
    ("[1, 2]", "expected a JSON object (models/ensemble.json), got list"),
    ('{"method": "mean", "tta": "none", "members": []}', "missing key 'sub_members' (rerun the ensemble stage)"),
    ('{"method": "mean", "tta": "spin", "members": [], "sub_members": [], "classes": []}', "tta 'spin' is not one of"),
])
def test_malformed_ensemble_file_is_one_line_for_evaluate_and_predict(tmp_path, text, expected):
    from doclab.classification.ensemble.evaluation import evaluate_classification
    from doclab.classification.predictor import load_ensemble_predictor
    from doclab.data.records import DataError
    from doclab.engine.device import make_runtime

    (tmp_path / "ensemble.json").write_text(text)
    with pytest.raises(DataError, match=re.escape(expected)) as error:
        evaluate_classification(tmp_path / "ensemble.json", tmp_path)
    assert str(error.value).startswith(f"{tmp_path / 'ensemble.json'}: ")
    with pytest.raises(DataError, match=re.escape(expected)):
        load_ensemble_predictor(tmp_path, make_runtime(torch.device("cpu"), amp=False, channels_last=False))


@pytest.mark.parametrize("channels_last", [False, True])
def test_predict_runs_with_the_amp_and_layout_the_detector_was_trained_with(tmp_path, channels_last):
    from doclab.config import Params, PostprocessParams, build, to_dict
    from doclab.detection.model import build_detector
    from doclab.detection.model_file import save_detector_file
    from doclab.detection.predictor import DetectorPredictor

    params = build(Params, {"model": "resnet18", "image_size": 64, "detector": {
        "decoder_channels": 16, "train": {"amp": False, "channels_last": channels_last}}})
    model = build_detector(params.model, params.detector, pretrained=False)
    save_detector_file(tmp_path / "detector.pt", params.model, model.state_dict(), to_dict(params), 1, {})
    atomic_write_json(tmp_path / "postprocess.json", {**to_dict(PostprocessParams()), "metric": "m", "score": 0})
    predictor = DetectorPredictor(tmp_path, torch.device("cpu"))
    assert predictor.runtime.channels_last is channels_last and predictor.runtime.amp_dtype is None
    assert len(predictor([np.full((50, 40, 3), 255, np.uint8)])) == 1


def test_detector_inference_halves_its_batch_after_an_injected_cuda_oom(capsys):
    from torch.utils.data import DataLoader

    from doclab.detection.dataset import collate_detection
    from doclab.detection.maps import predict_maps_fitting
    from doclab.engine.device import Runtime

    class SmallGpu(torch.nn.Module):
        def forward(self, images: torch.Tensor) -> torch.Tensor:
            if len(images) > 2:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return torch.sigmoid(images[:, :1])

    maps = {name: torch.zeros(8, 8) for name in ("prob_map", "prob_mask", "thresh_map", "thresh_mask")}
    samples = [{"image": torch.full((3, 8, 8), float(i)), "key": f"k{i}", "index": i, "scale": 1.0,
                "original_size": (8, 8), **maps} for i in range(5)]
    def make_loader(batch: int) -> DataLoader:
        return DataLoader(samples, batch_size=batch, collate_fn=collate_detection)
    out = np.zeros((5, 8, 8), np.float16)
    cache = predict_maps_fitting(SmallGpu(), make_loader, 8, Runtime(torch.device("cpu")), out)
    assert cache.keys == ("k0", "k1", "k2", "k3", "k4")
    assert capsys.readouterr().err.splitlines() == ["detector inference: out of GPU memory, retrying with batch 4",
                                                    "detector inference: out of GPU memory, retrying with batch 2"]
