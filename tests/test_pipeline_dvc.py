"""The pipeline in a real git repo with real DVC: repro, skip on rerun, experiments, param typos.

Runs in a temporary copy of the working tree (tracked and untracked, not ignored files) on the
built-in synthetic sample shrunk by a tiny params profile.
"""
import json
import sys
from pathlib import Path

import pytest
from dvc_repo import REPO, dvc, make_repo, ran_stages, run

SROIE_IMAGES = REPO.parent / "shared/data/sroie_small/images"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A fresh git repo holding the working tree, with the tiny profile applied to params.yaml."""
    return make_repo(tmp_path_factory.mktemp("clone"))


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
