"""The pipeline in a real git repo with real DVC: repro, skip on rerun, experiments, param typos.

Runs in a temporary copy of the working tree (tracked and untracked, not ignored files) on the
built-in synthetic sample shrunk by a tiny params profile.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_PROFILE = {
    "data.synthetic.num_images": 12,
    "data.synthetic.long_side": 512,
    "preprocess.max_side": 256,
    "image_size": 128,
    "detector.train.epochs": 1,
    "tune.space.thresh": [0.2, 0.3],
    "tune.space.box_thresh": [0.2, 0.3],
    "tune.space.box_unclip_ratio": [1.5],
    "classifier.members": ["resnet18", "mobilenetv3_small_050"],
    "classifier.image_size": 64,
    "classifier.train.epochs": 1,
    "classifier.snapshots": 1,
}
SROIE_IMAGES = REPO.parent / "shared/data/sroie_small/images"

pytestmark = pytest.mark.slow


def run(cmd: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(GIT_AUTHOR_NAME="doclab test", GIT_AUTHOR_EMAIL="test@doclab.local",
               GIT_COMMITTER_NAME="doclab test", GIT_COMMITTER_EMAIL="test@doclab.local",
               DVC_NO_ANALYTICS="1")
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check)


def set_key(tree: dict, dotted: str, value) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = value


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh git repo holding the working tree, with the tiny profile applied to params.yaml."""
    dest = tmp_path_factory.mktemp("clone")
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for key, value in TINY_PROFILE.items():
        set_key(params, key, value)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny profile"], dest)
    return dest


def ran_stages(result: subprocess.CompletedProcess) -> set[str]:
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage '")}


def test_repro_then_rerun_skips_everything(clone):
    first = dvc("repro", cwd=clone)
    assert ran_stages(first) == {"preprocess", "train_detector", "tune_postprocess", "train_classifier@resnet18",
                                 "train_classifier@mobilenetv3_small_050", "ensemble", "evaluate"}
    stats = json.loads((clone / "metrics/data.json").read_text())
    assert sum(stats[s]["images"] for s in ("train", "val", "test")) == 12
    evaluated = json.loads((clone / "metrics/evaluate.json").read_text())
    for key in ("detect.cleval.hmean", "detect.iou.hmean", "classify.macro_f1", "classify.accuracy"):
        assert 0.0 <= evaluated[key] <= 1.0, key
    assert (clone / "models/submission/detection.csv").read_text().startswith("filename,polygons\n")
    assert len((clone / "models/submission/classification.csv").read_text().splitlines()) == 1 + evaluated[
        "classify.images"]
    assert len(list((clone / "plots/evaluate/png/worst").glob("*.png"))) == evaluated["detect.images"]
    assert json.loads((clone / "models/postprocess.json").read_text())["metric"] == "cleval/hmean"
    second = dvc("repro", cwd=clone)
    assert "Running stage" not in second.stdout
    status = dvc("status", cwd=clone)
    assert "up to date" in status.stdout
    run(["git", "add", "-A"], clone)
    run(["git", "commit", "-qm", "baseline"], clone)


def back_to_baseline(clone: Path) -> None:
    """`dvc exp run` leaves the experiment in the workspace: restore the committed baseline."""
    run(["git", "checkout", "-q", "--", "."], clone)
    dvc("checkout", "--force", cwd=clone)


def test_postprocess_change_reruns_only_tuning_and_evaluation(clone):
    result = dvc("exp", "run", "-n", "box-042", "-S", "postprocess.box_thresh=0.42", cwd=clone)
    # evaluate reruns only if the tuned params moved (the search space does not start from box_thresh)
    assert "tune_postprocess" in ran_stages(result) <= {"tune_postprocess", "evaluate"}
    back_to_baseline(clone)


def test_ensemble_tta_change_reruns_only_the_ensemble_and_evaluation(clone):
    result = dvc("exp", "run", "-n", "tta-rot90", "-S", "ensemble.tta=rot90", cwd=clone)
    assert ran_stages(result) == {"ensemble", "evaluate"}
    assert json.loads((clone / "models/ensemble.json").read_text())["tta"] == "rot90"
    back_to_baseline(clone)


def test_member_list_change_replans_without_retraining_kept_members(clone):
    result = dvc("exp", "run", "-n", "one-member", "-S", "classifier.members=[resnet18]", cwd=clone)
    assert ran_stages(result) == {"ensemble", "evaluate"}
    assert json.loads((clone / "models/ensemble.json").read_text())["members"] == ["resnet18"]
    back_to_baseline(clone)


def test_predict_on_processed_images_and_the_sroie_sample(clone, tmp_path):
    doclab = [sys.executable, "-m", "doclab.cli", "predict"]
    images = sorted((clone / "data/processed/images/synthetic").glob("*.jpg"))[:3]
    result = run([*doclab, *map(str, images), "--out", str(tmp_path / "sample")], clone)
    predictions = json.loads((tmp_path / "sample/predictions.json").read_text())["images"]
    classes = json.loads((clone / "data/processed/classes.json").read_text())
    assert sorted(predictions) == sorted(p.name for p in images)
    assert all(entry["class"] in classes for entry in predictions.values()), result.stdout
    assert len((tmp_path / "sample/classes.csv").read_text().splitlines()) == 4
    if not SROIE_IMAGES.is_dir():
        pytest.skip(f"{SROIE_IMAGES} not present")
    run([*doclab, str(SROIE_IMAGES), "--out", str(tmp_path / "sroie"), "--no-overlays"], clone)
    sroie = json.loads((tmp_path / "sroie/predictions.json").read_text())["images"]
    assert len(sroie) == len([p for p in SROIE_IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")])


def test_report_tables_every_experiment(clone):
    run([sys.executable, "-m", "doclab.cli", "report"], clone)
    table = (clone / "experiments.md").read_text()
    for name in ("box-042", "tta-rot90", "one-member"):
        assert f"| {name} |" in table, table


def test_exp_run_with_changed_param(clone):
    result = dvc("exp", "run", "-n", "small-side", "-S", "preprocess.max_side=128", cwd=clone)
    assert "Running stage 'preprocess'" in result.stdout
    shown = json.loads(dvc("exp", "show", "--json", cwd=clone).stdout)
    names = [exp.get("name") for entry in shown for exp in (entry.get("experiments") or [])
             for exp in (exp.get("revs") or [])]
    assert "small-side" in names


def test_param_typo_fails_with_one_line_naming_the_key(clone):
    result = dvc("exp", "run", "-S", "+preprocess.max_sidee=128", cwd=clone, check=False)
    assert result.returncode != 0
    error_lines = [line for line in (result.stdout + result.stderr).splitlines() if "max_sidee" in line]
    assert any("preprocess.max_sidee: unknown key, did you mean 'preprocess.max_side'?" in line
               for line in error_lines), result.stdout + result.stderr
