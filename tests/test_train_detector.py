"""train_detector end to end on a tiny real processed folder (12 synthetic documents)."""
from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from conftest import kill_after_first_checkpoint

from doclab.config import Params, build, to_dict
from doclab.data.records import DataError
from doclab.detection.model import build_detector
from doclab.detection.model_file import init_from_detector, load_detector
from doclab.engine.checkpoint import CheckpointError, save_checkpoint
from doclab.pipeline.preprocess import preprocess
from doclab.pipeline.train_detector import train_detector

REPO = Path(__file__).resolve().parents[1]
TINY_DATA = {"data": {"synthetic": {"num_images": 12, "long_side": 512}}, "preprocess": {"max_side": 256}}
TINY_TRAIN = {"model": "resnet18", "image_size": 128, "batch_size": 4, "device": "cpu",
              "detector": {"decoder_channels": 32, "train": {"epochs": 2, "workers": 0}}}
METRIC_KEYS = ("cleval/hmean", "cleval/precision", "cleval/recall", "iou/hmean", "iou/precision", "iou/recall")


def tiny_params(**changes) -> Params:
    raw = json.loads(json.dumps({**TINY_DATA, **TINY_TRAIN}))
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = raw
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return build(Params, raw)


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    """data/processed of the real preprocess stage on 12 synthetic documents (8 train, 2 val, 2 test)."""
    root = tmp_path_factory.mktemp("tiny")
    preprocess(tiny_params(), root, root / "processed", root / "data.json")
    return root / "processed"


def run(out: Path, data: Path, params: Params) -> dict:
    return train_detector(params, data, out / "models/detector.pt", out / "checkpoints", out / "live")


@pytest.fixture(scope="module")
def trained(processed, tmp_path_factory) -> tuple[Path, dict, Params]:
    out = tmp_path_factory.mktemp("run")
    params = tiny_params()
    return out, run(out, processed, params), params


def test_model_file_loads_weights_only_and_predicts(trained):
    out, _, params = trained
    raw = torch.load(out / "models/detector.pt", weights_only=True)
    assert raw["backbone"] == "resnet18" and raw["params"] == to_dict(params)
    model, saved = load_detector(out / "models/detector.pt")
    assert saved == to_dict(params) and not model.training
    with torch.no_grad():
        probs = model(torch.zeros(1, 3, 128, 128))
    assert probs.shape == (1, 1, 128, 128) and float(probs.min()) >= 0 and float(probs.max()) <= 1


def test_metrics_are_returned_logged_and_finite(trained):
    out, metrics, _ = trained
    for key in METRIC_KEYS:
        assert math.isfinite(metrics[key]) and 0.0 <= metrics[key] <= 1.0, key
    assert metrics["best_epoch"] in (1, 2)
    summary = json.loads((out / "live/metrics.json").read_text())
    assert summary["step"] == 1 and "perf" not in summary
    for term in ("loss", "loss_prob", "loss_thresh", "loss_binary", "lr"):
        assert math.isfinite(summary["train"][term]), term
    assert summary["best"]["cleval"]["hmean"] == metrics["cleval/hmean"]
    assert math.isfinite(summary["val"]["iou"]["hmean"])
    assert (out / "live/plots/metrics/perf/images_per_s.tsv").is_file()
    assert {p.name for p in (out / "checkpoints").iterdir()} == {"last.pt", "best.pt"}


def test_rerun_with_same_params_resumes_and_changed_params_restart(trained, processed, tmp_path, capsys):
    done, metrics, params = trained
    out = tmp_path / "rerun"
    shutil.copytree(done, out)
    capsys.readouterr()
    assert run(out, processed, params) == metrics
    assert "after epoch 2" in capsys.readouterr().out
    run(out, processed, tiny_params(detector__train__epochs=1))
    assert "starting from scratch" in capsys.readouterr().out
    assert json.loads((out / "live/metrics.json").read_text())["step"] == 0


def test_two_runs_give_identical_metrics_and_weights(processed, tmp_path):
    params = tiny_params(detector__train__workers=2)  # the sample seeds come from the main process
    first = run(tmp_path / "a", processed, params)
    second = run(tmp_path / "b", processed, params)
    assert first == second
    assert (tmp_path / "a/live/metrics.json").read_bytes() == (tmp_path / "b/live/metrics.json").read_bytes()
    weights_a = torch.load(tmp_path / "a/models/detector.pt", weights_only=True)["state_dict"]
    weights_b = torch.load(tmp_path / "b/models/detector.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)


def test_init_from_copies_matching_tensors_and_reports_the_rest(trained, capsys):
    out, _, _ = trained
    params = tiny_params(detector__decoder_channels=16)
    model = build_detector(params.model, params.detector, pretrained=False)
    skipped = init_from_detector(model, out / "models/detector.pt")
    saved = torch.load(out / "models/detector.pt", weights_only=True)["state_dict"]
    stem = "backbone.body.conv1.weight"
    assert torch.equal(model.state_dict()[stem], saved[stem]) and stem not in skipped
    assert skipped and all(not name.startswith("backbone.") for name in skipped)
    assert "kept fresh" in capsys.readouterr().out


def test_load_detector_rejects_other_checkpoints(tmp_path):
    save_checkpoint(tmp_path / "other.pt", {"model": {"w": torch.zeros(1)}})
    with pytest.raises(CheckpointError, match="not a doclab detector file"):
        load_detector(tmp_path / "other.pt")


def stage_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def write_params(path: Path, params: Params) -> Path:
    path.write_text(yaml.safe_dump(to_dict(params), sort_keys=False), encoding="utf-8")
    return path


def stage_command(root: Path, data: Path) -> list[str]:
    return [str(REPO / "stages/train_detector.py"), "--params", str(root / "params.yaml"), "--data", str(data),
            "--model", str(root / "detector.pt"), "--checkpoints", str(root / "ckpt"), "--live", str(root / "live")]


def test_stage_reports_missing_gpu_in_one_line(tmp_path, processed):
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    write_params(tmp_path / "params.yaml", tiny_params(device="cuda"))
    result = subprocess.run([sys.executable, *stage_command(tmp_path, processed)], capture_output=True, text=True,
                            env=stage_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: device: got 'cuda', but no CUDA GPU is available here (use 'auto' or 'cpu')"]


@pytest.mark.slow
def test_ddp_with_two_cpu_processes_trains_and_writes_one_model(tmp_path, processed):
    params = tiny_params(detector__train__epochs=1, batch_size=2)
    write_params(tmp_path / "params.yaml", params)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *stage_command(tmp_path, processed)]
    result = subprocess.run(command, capture_output=True, text=True, env=stage_env(), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("train_detector: best epoch 1") == 1  # only rank 0 reports
    assert "2 process(es)" in result.stdout
    model, saved = load_detector(tmp_path / "detector.pt")
    assert saved["detector"]["decoder_channels"] == 32
    assert json.loads((tmp_path / "live/metrics.json").read_text())["step"] == 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_rerun_ends_like_an_uninterrupted_run(tmp_path, processed):
    params = tiny_params(detector__train__epochs=3)
    for name in ("killed", "whole"):
        (tmp_path / name).mkdir()
        write_params(tmp_path / name / "params.yaml", params)
    whole = subprocess.run([sys.executable, *stage_command(tmp_path / "whole", processed)], capture_output=True,
                           text=True, env=stage_env(), cwd=tmp_path / "whole", timeout=600)
    assert whole.returncode == 0, whole.stderr

    killed = tmp_path / "killed"
    returncode = kill_after_first_checkpoint([sys.executable, *stage_command(killed, processed)],
                                             killed / "ckpt/last.pt", 0.3, env=stage_env(), cwd=killed)
    assert returncode == -signal.SIGKILL
    checkpoint = torch.load(killed / "ckpt/last.pt", weights_only=True)
    assert checkpoint["state"]["epoch"] == 1, "the kill came too late to interrupt epoch 2"
    assert not (killed / "detector.pt").exists()

    rerun = subprocess.run([sys.executable, *stage_command(killed, processed)], capture_output=True, text=True,
                           env=stage_env(), cwd=killed, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert "after epoch 1" in rerun.stdout
    assert (killed / "live/metrics.json").read_bytes() == (tmp_path / "whole/live/metrics.json").read_bytes()
    resumed = torch.load(killed / "detector.pt", weights_only=True)
    uninterrupted = torch.load(tmp_path / "whole/detector.pt", weights_only=True)
    assert resumed["metrics"] == uninterrupted["metrics"] and resumed["epoch"] == uninterrupted["epoch"]
    assert all(torch.equal(resumed["state_dict"][k], uninterrupted["state_dict"][k]) for k in resumed["state_dict"])


@pytest.mark.slow
def test_sigterm_to_the_process_group_mid_epoch_exits_cleanly_and_keeps_the_checkpoint(tmp_path, processed):
    """What `kill -- -PGID` (or a batch system's stop) does: the stage and its DataLoader workers all get
    SIGTERM. The stage unwinds (temp files removed, the last checkpoint kept) without a traceback about
    the workers that died beside it."""
    write_params(tmp_path / "params.yaml", tiny_params(detector__train__epochs=3, detector__train__workers=2))
    process = subprocess.Popen([sys.executable, *stage_command(tmp_path, processed)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=stage_env(), cwd=tmp_path,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while not (tmp_path / "ckpt/last.pt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)  # into epoch 2, its workers loading batches
    os.killpg(process.pid, signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "DataLoader worker" not in err, err[-2000:]
    assert torch.load(tmp_path / "ckpt/last.pt", weights_only=True)["state"]["epoch"] == 1
    assert not (tmp_path / "detector.pt").exists()
    assert not [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name]


def test_empty_validation_split_is_a_one_line_error(tmp_path, processed):
    data = tmp_path / "processed"
    shutil.copytree(processed, data)
    splits = json.loads((data / "splits.json").read_text())
    splits["train"] += splits.pop("val")
    splits["val"] = []
    (data / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(DataError, match=r"val split .*no detection images.*data\.split\.val"):
        run(tmp_path, data, tiny_params())
