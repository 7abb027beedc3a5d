"""The architecture contracts: imports only go down the layers, dvc.yaml deps and resume fingerprints
cover exactly the code a stage runs, and the light entry points never import torch.

Each contract is also shown to fail on a planted violation (in a copy of the package or of dvc.yaml).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from doclab.experiments.stage_deps import check_stage_deps
from doclab.imports import (
    PACKAGE_DIR,
    code_files,
    covered,
    import_cycles,
    import_graph,
    layer_violations,
    module_file,
    script_closure,
)

REPO = Path(__file__).resolve().parents[1]
STAGES = sorted((REPO / "stages").glob("*.py"))


def package_copy(tmp_path: Path) -> Path:
    """A copy of src/doclab under tmp_path/src/doclab (the real one is never edited)."""
    target = tmp_path / "src" / "doclab"
    shutil.copytree(PACKAGE_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_no_import_goes_up_a_layer_or_sideways_and_there_are_no_cycles():
    graph = import_graph()
    assert len(graph) > 50  # the whole package was read
    assert layer_violations(graph) == []
    assert import_cycles(graph) == []


def test_planted_upward_import_and_cycle_are_found(tmp_path):
    package = package_copy(tmp_path)
    images = package / "data" / "images.py"
    images.write_text(images.read_text() + "\n\ndef _late():\n    from doclab.cli import main\n    return main\n")
    polygons = package / "data" / "polygons.py"
    polygons.write_text(polygons.read_text() + "\n\ndef _cycle():\n    from doclab.data import worker\n    return worker\n")
    assert "from doclab.data.polygons import" in (package / "data" / "worker.py").read_text()  # closes a cycle
    graph = import_graph(package)
    assert layer_violations(graph) == ["doclab.data.images imports doclab.cli (upward: layer 2 -> 10)"]
    assert ["doclab.data.polygons", "doclab.data.worker", "doclab.data.polygons"] in import_cycles(graph)


def test_every_stage_dep_list_covers_its_import_closure_exactly():
    assert check_stage_deps(REPO) == []
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        script = next(word for word in stage["cmd"].split() if word.endswith(".py"))
        files = {module_file(m) for m in script_closure(REPO / script)}
        code_deps = [d for d in stage["deps"] if d.startswith("src/")]
        assert covered(code_deps, files, REPO) == files, name
        for dep in code_deps:  # and nothing more: every dep holds a file the stage runs
            assert covered([dep], files, REPO), f"{name}: {dep} is not imported"


def test_planted_missing_dep_fails_the_check(tmp_path):
    shutil.copytree(REPO / "stages", tmp_path / "stages")
    doc = yaml.safe_load((REPO / "dvc.yaml").read_text())
    removed = next(dep for dep in doc["stages"]["train_classifier"]["deps"] if dep.startswith("src/doclab/engine"))
    doc["stages"]["train_classifier"]["deps"].remove(removed)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert check_stage_deps(tmp_path) == ["train_classifier"]
    assert check_stage_deps(tmp_path, write=True) == ["train_classifier"]
    assert check_stage_deps(tmp_path) == []
    assert removed in yaml.safe_load((tmp_path / "dvc.yaml").read_text())["stages"]["train_classifier"]["deps"]


def test_trainer_fingerprints_hash_their_whole_import_closure():
    for module in ("doclab.pipeline.train_detector", "doclab.pipeline.train_classifier"):
        files = code_files(module)
        assert module_file(module) in files and PACKAGE_DIR / "engine" / "loading.py" in files
        assert PACKAGE_DIR / "config" / "schema.py" in files and PACKAGE_DIR / "cli.py" not in files


def _stage(root: Path, data: Path, src: Path) -> str:
    command = [sys.executable, str(REPO / "stages/train_classifier.py"), "--params", str(root / "params.yaml"),
               "--member", "mobilenetv3_small_050", "--data", str(data), "--model", str(root / "model.pt"),
               "--logits", str(root / "logits.npz"), "--metrics", str(root / "metrics.json"),
               "--checkpoints", str(root / "ckpt"), "--live", str(root / "live")]
    env = {**os.environ, "PYTHONPATH": str(src)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


@pytest.mark.slow
def test_code_change_in_an_imported_module_retrains_instead_of_resuming(tmp_path):
    """The stale-weights bug: editing `normalise_chw` (data/pixels.py, which train_classifier imports through
    engine/loading.py) must not resume the old run."""
    from test_classifier import write_processed

    data = write_processed(tmp_path / "processed")
    package = package_copy(tmp_path)
    train = {"epochs": 2, "effective_batch": 4, "workers": 0, "lr": 3.0e-3}
    classifier = {"members": ["mobilenetv3_small_050"], "image_size": 32, "batch_size": 4, "snapshots": 1,
                  "train": train}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"seed": 3, "device": "cpu", "classifier": classifier}))
    first = _stage(tmp_path, data, package.parent)
    assert "epoch 1/2" in first
    unchanged = _stage(tmp_path, data, package.parent)
    assert "resuming from" in unchanged and "epoch 1/2" not in unchanged
    pixels = package / "data" / "pixels.py"
    text = pixels.read_text()
    assert "computed as one multiply-add per plane." in text
    pixels.write_text(text.replace("computed as one multiply-add per plane.", "one multiply-add per plane."))
    edited = _stage(tmp_path, data, package.parent)
    assert "resuming from" not in edited and "epoch 1/2" in edited


LIGHT_ENTRY_POINTS = {
    "check-params with a schema error": "main(['check-params', str(bad)])",
    "eval-det": "main(['eval-det', str(gt), str(gt), '--json'])",
    "report outside a project": "main(['report', '--repo', str(tmp)])",
    "the preprocess stage's imports": "import doclab.pipeline.preprocess",
}


def test_light_entry_points_never_import_torch(tmp_path):
    gt = tmp_path / "gt.json"
    gt.write_text('{"images": {"a.jpg": {"img_w": 100, "img_h": 50, "words": {"1": '
                  '{"points": [[1, 1], [40, 1], [40, 20], [1, 20]]}}}}}')
    bad = tmp_path / "params.yaml"
    bad.write_text("image_size: big\n")
    for name, call in LIGHT_ENTRY_POINTS.items():
        code = (f"import sys\nfrom pathlib import Path\nfrom doclab.cli import main\ntmp = Path({str(tmp_path)!r})\n"
                f"gt, bad = tmp / 'gt.json', tmp / 'params.yaml'\n"
                f"try:\n    {call}\nexcept SystemExit:\n    pass\n"
                "heavy = sorted(m for m in ('torch', 'timm', 'torchvision') if m in sys.modules)\n"
                "print('HEAVY', heavy)\n")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert "HEAVY []" in done.stdout, f"{name}: {done.stdout[-300:]} {done.stderr[-500:]}"
