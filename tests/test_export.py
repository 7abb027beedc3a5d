"""The export stage end to end on the tiny profile: ONNX models + manifest, parity checked, a planted drift
caught, and `doclab predict --runtime onnx` running without torch, matching the torch runtime."""
from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import doclab.pipeline.export as export_stage
from doclab.config import load_params

pytestmark = pytest.mark.slow

# Run `doclab predict` with the training stack made unimportable: the ONNX runtime needs only what
# src/doclab/deploy/requirements.txt installs.
NO_TORCH = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "timm", "torchvision", "albumentations", "sklearn", "scipy", "matplotlib",
                                  "optuna", "dvc", "dvclive", "shapely"):
            raise ImportError(f"{name} is blocked: the ONNX runtime must not import it")
sys.meta_path.insert(0, Block())
from doclab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _val_images(repo: Path, count: int) -> list[Path]:
    splits = json.loads((repo / "data/processed/splits.json").read_text())
    return [repo / "data/processed/images" / key for key in sorted(splits["val"])[:count]]


def test_repro_exports_onnx_models_whose_parity_holds(tiny_baseline):
    repo, first = tiny_baseline
    assert "Running stage 'export'" in first.stdout
    deploy = repo / "models/deploy"
    manifest = json.loads((deploy / "deploy.json").read_text())
    assert manifest["format"] == "doclab.deploy/1"
    assert (deploy / manifest["detector"]["onnx"]).is_file()
    members = manifest["classifier"]["members"]
    assert [m["name"] for m in members] == manifest["classifier"]["ensemble"]["sub_members"]
    assert all((deploy / m["onnx"]).is_file() for m in members)
    tuned = json.loads((repo / "models/postprocess.json").read_text())
    assert {k: tuned[k] for k in manifest["detector"]["postprocess"]} == manifest["detector"]["postprocess"]
    metrics = json.loads((repo / "metrics/export.json").read_text())
    detector, classifier = metrics["detector"], metrics["classifier"]
    assert detector["images"] > 0 and detector["max_prob_diff"] <= 1e-4
    assert abs(detector["torch"]["cleval/hmean"] - detector["onnx"]["cleval/hmean"]) <= 1e-3
    assert classifier["images"] > 0 and classifier["top1_disagreements"] <= 1


def test_a_planted_normalisation_drift_forgotten_std_fails_the_stage_and_writes_nothing(tiny_baseline, tmp_path, monkeypatch):
    repo, _ = tiny_baseline
    out, metrics = tmp_path / "deploy", tmp_path / "export.json"
    out.mkdir()
    (out / "keep.txt").write_text("previous export")
    right = export_stage.detector_input
    monkeypatch.setattr(export_stage, "detector_input",
                        lambda size, rule: dataclasses.replace(right(size, rule), std=(1.0, 1.0, 1.0)))
    with pytest.raises(export_stage.ParityError) as error:
        export_stage.run_export(load_params(repo / "params.yaml"), repo / "data/processed", repo / "models", out,
                                metrics)
    message = str(error.value)
    assert "\n" not in message and "probability maps differ by up to" in message and "export.max_prob_diff" in message
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and not metrics.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left behind


def test_predict_with_onnx_runs_without_torch_and_matches_the_torch_runtime(tiny_baseline, tmp_path):
    repo, _ = tiny_baseline
    images = tmp_path / "scans"
    images.mkdir()
    for path in _val_images(repo, 3):
        shutil.copy(path, images / path.name)
    outputs = {}
    for runtime in ("onnx", "torch"):
        out = tmp_path / runtime
        command = [sys.executable, "-c", NO_TORCH] if runtime == "onnx" else [sys.executable, "-m", "doclab.cli"]
        result = subprocess.run([*command, "predict", str(images), "--out", str(out), "--models",
                                 str(repo / "models"), "--runtime", runtime, "--no-overlays"],
                                capture_output=True, text=True, cwd=repo, stdin=subprocess.DEVNULL)
        assert result.returncode == 0, result.stderr
        outputs[runtime] = json.loads((out / "predictions.json").read_text())["images"]
    assert sorted(outputs["onnx"]) == sorted(outputs["torch"]) == sorted(p.name for p in images.iterdir())
    for key, torch_entry in outputs["torch"].items():
        onnx_entry = outputs["onnx"][key]
        assert onnx_entry["class"] == torch_entry["class"]
        assert len(onnx_entry["words"]) == len(torch_entry["words"])
        for word, torch_word in zip(onnx_entry["words"].values(), torch_entry["words"].values()):
            assert abs(word["score"] - torch_word["score"]) <= 1e-3
