"""The pipeline in a real git repo with real DVC: repro, skip on rerun, experiments, param typos.

Runs in a temporary copy of the working tree (tracked and untracked, not ignored files) on the
built-in synthetic sample shrunk by a tiny params profile.
"""
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dvc_repo import REPO, dvc, ran_stages, run

from doclab.detection.model_file import NO_PRETRAINING, pretrained_init

SROIE_IMAGES = REPO.parent / "shared/data/sroie_small/images"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clone(tiny_baseline) -> Path:
    """The tiny-profile repo after its first `dvc repro`, committed (shared with the sweep test)."""
    return tiny_baseline[0]


def test_repro_then_rerun_skips_everything(clone, tiny_baseline):
    first = tiny_baseline[1]
    assert ran_stages(first) == {"preprocess", "pretrain_detector", "train_detector", "tune_postprocess",
                                 "train_classifier@resnet18",
                                 "train_classifier@mobilenetv3_small_050", "ensemble", "evaluate", "export"}
    stats = json.loads((clone / "metrics/data.json").read_text())
    assert sum(stats[s]["images"] for s in ("train", "val", "test")) == 12
    # pretraining is off by default: its stage writes the "no pretraining" marker, nothing is trained
    assert pretrained_init(clone / "models/pretrain_detector.pt") is None
    assert json.loads((clone / "dvclive/pretrain_detector/metrics.json").read_text()) == {"status": NO_PRETRAINING}
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


def back_to_baseline(clone: Path) -> None:
    """`dvc exp run` leaves the experiment in the workspace: restore the committed baseline."""
    run(["git", "checkout", "-q", "--", "."], clone)
    dvc("checkout", "--force", cwd=clone)


@contextlib.contextmanager
def experiment(clone: Path, name: str, *overrides: str) -> Iterator[subprocess.CompletedProcess]:
    """`dvc exp run -n NAME -S ...` in the clone; afterwards (even when a check failed) the baseline is
    restored, checkpoints included: they are persistent, uncached outputs `dvc checkout` cannot restore."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(clone / "checkpoints", Path(folder) / "checkpoints")
        try:
            yield dvc("exp", "run", "-n", name, *(arg for o in overrides for arg in ("-S", o)), cwd=clone)
        finally:
            back_to_baseline(clone)
            shutil.rmtree(clone / "checkpoints")
            shutil.copytree(Path(folder) / "checkpoints", clone / "checkpoints")


def metrics_files(repo: Path) -> dict[str, bytes]:
    """Every metrics file of the pipeline (metrics/ and the dvclive summaries), relative path -> bytes."""
    paths = [*repo.glob("metrics/**/*.json"), *repo.glob("dvclive/**/metrics.json")]
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in paths}


def test_forced_repro_from_scratch_gives_byte_identical_metrics(clone):
    before = metrics_files(clone)
    assert len(before) >= 8, sorted(before)
    committed_out_hashes = out_hashes(clone)
    shutil.rmtree(clone / "checkpoints")  # else the persisted checkpoints make training a no-op resume
    result = dvc("repro", "-f", cwd=clone)
    assert "Running stage 'train_detector'" in result.stdout
    after = metrics_files(clone)
    assert sorted(after) == sorted(before)
    assert [name for name in before if after[name] != before[name]] == []
    # Models, logits, tuned params, submissions and plots hash the same; only dvclive's per-epoch
    # timing plots and the checkpoints (which hold them) may differ.
    assert out_hashes(clone) == committed_out_hashes, "outputs differ after a forced rerun"
    run(["git", "add", "-A"], clone)  # the new timings and checkpoints are the baseline from here on
    run(["git", "commit", "-qm", "forced rerun"], clone)


def out_hashes(repo: Path) -> dict[str, str]:
    """dvc.lock's md5 of every stage output except dvclive/ and checkpoints/ (they hold timings)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {out["path"]: out["md5"] for stage in lock["stages"].values() for out in stage.get("outs", [])
            if not out["path"].startswith(("dvclive/", "checkpoints/"))}


def test_detector_change_reruns_exactly_the_detector_branch(clone):
    # Both keys in one experiment (one retraining, not two): either one reaching the classifier branch
    # would add its stages to the set.
    with experiment(clone, "resnet18-batch-2", "model=resnet18", "batch_size=2") as result:
        # pretrain_detector shares model and batch_size: it reruns (pretraining off: the marker, ~1 s)
        assert ran_stages(result) == {"pretrain_detector", "train_detector", "tune_postprocess", "evaluate", "export"}
        assert "train_detector: resnet18" in result.stdout and "batch 2 x" in result.stdout, result.stdout
    assert "up to date" in dvc("status", cwd=clone).stdout


def wait_for_queue(repo: Path, timeout: float = 900) -> str:
    """Poll `dvc queue status` until nothing is queued or running; returns the last status table."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = dvc("queue", "status", cwd=repo).stdout
        if not any(word in status for word in ("Queued", "Running")):
            return status
        time.sleep(3)
    raise AssertionError(f"the queue did not finish in {timeout} s:\n{status}")


def test_queued_grid_gives_two_experiments_that_diff_on_the_changed_key(clone):
    # An ensemble-only grid: the queue machinery is the same for any key, and retraining detectors here
    # would cost minutes of CI for nothing the other tests do not already cover.
    # --copy-paths: a queued experiment runs in a temp copy without the uncached checkpoints/, and
    # would retrain both branches for them (as `doclab sweep` does it, and the README says)
    dvc("exp", "run", "--queue", "--copy-paths", "checkpoints", "-S", "ensemble.method=mean,vote", cwd=clone)
    dvc("queue", "start", "-j", "1", cwd=clone)
    status = wait_for_queue(clone)
    assert status.count("Success") == 2 and "Failed" not in status, status
    shown = json.loads(dvc("exp", "show", "--json", cwd=clone).stdout)
    runs = {}
    for entry in shown:
        for experiment in entry.get("experiments") or []:
            for rev in experiment.get("revs") or []:
                data = rev.get("data") or {}
                params = ((data.get("params") or {}).get("params.yaml") or {}).get("data", {})
                method = params.get("ensemble", {}).get("method")
                metrics = (data.get("metrics") or {}).get("metrics/evaluate.json", {}).get("data", {})
                if method in ("mean", "vote") and "detect.cleval.hmean" in metrics:
                    runs[method] = rev["name"]
    assert set(runs) == {"mean", "vote"}, shown
    first, second = runs["mean"], runs["vote"]
    params = json.loads(dvc("params", "diff", first, second, "--json", cwd=clone).stdout)
    assert params["params.yaml"]["ensemble.method"] == {"old": "mean", "new": "vote"}
    assert set(params["params.yaml"]) == {"ensemble.method"}
    metrics = json.loads(dvc("metrics", "diff", first, second, "--json", "--all", cwd=clone).stdout)
    assert "train.loss" in metrics["dvclive/train_detector/metrics.json"]
    assert "detect.cleval.hmean" in metrics["metrics/evaluate.json"]
    assert (metrics["metrics/ensemble.json"]["chosen"]["old"], metrics["metrics/ensemble.json"]["chosen"]["new"]) == (
        "mean", "vote")


def test_postprocess_change_reruns_only_tuning_and_evaluation(clone):
    with experiment(clone, "box-042", "postprocess.box_thresh=0.42") as result:
        # evaluate reruns only if the tuned params moved (the search space does not start from box_thresh)
        assert "tune_postprocess" in ran_stages(result) <= {"tune_postprocess", "evaluate", "export"}


def test_tta_and_member_list_changes_rerun_only_the_ensemble_and_evaluation(clone):
    # Both keys in one experiment: each alone must run exactly these stages, so a stage that either one
    # wrongly reached (a kept member's training) would show in the set.
    with experiment(clone, "tta-one-member", "ensemble.tta=rot90", "classifier.members=[resnet18]") as result:
        assert ran_stages(result) == {"ensemble", "evaluate", "export"}
        ensemble = json.loads((clone / "models/ensemble.json").read_text())
        assert (ensemble["tta"], ensemble["members"]) == ("rot90", ["resnet18"])


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
    for name in ("box-042", "tta-one-member"):
        assert f"| {name} |" in table, table


def test_exp_run_with_changed_param(clone):
    # preprocess reruns; its outputs do not depend on the worker count, so nothing downstream does
    with experiment(clone, "one-worker", "preprocess.workers=1") as result:
        assert ran_stages(result) == {"preprocess"}
    shown = json.loads(dvc("exp", "show", "--json", cwd=clone).stdout)
    names = [exp.get("name") for entry in shown for exp in (entry.get("experiments") or [])
             for exp in (exp.get("revs") or [])]
    assert "one-worker" in names


def test_misspelt_existing_path_is_refused_by_dvc_before_anything_runs(clone):
    result = dvc("exp", "run", "-S", "detector.trian.epochs=1", cwd=clone, check=False)
    assert result.returncode != 0 and ran_stages(result) == set()
    first = next(line for line in (result.stdout + result.stderr).splitlines() if line.strip())
    assert "Could not override 'detector.trian.epochs'" in first, result.stderr


def test_param_typo_fails_with_one_line_naming_the_key(clone):
    result = dvc("exp", "run", "-S", "+preprocess.max_sidee=128", cwd=clone, check=False)
    assert result.returncode != 0
    error_lines = [line for line in (result.stdout + result.stderr).splitlines() if "max_sidee" in line]
    assert any("preprocess.max_sidee: unknown key, did you mean 'preprocess.max_side'?" in line
               for line in error_lines), result.stdout + result.stderr
