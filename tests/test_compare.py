"""`doclab compare`: experiment-level paired bootstrap read from git/DVC revisions, in a real git + DVC repo.

The revisions hold per-image results written as the pipeline writes them (rows from
`DetectionScores` and `sample_rows`-shaped classification rows); no training is needed to test reading,
aligning and comparing them. The slow workflow test covers them written by `dvc repro`.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from dvc_repo import dvc, run

from doclab.experiments.compare import RESULTS, SPLITS, TASKS, compare_experiments, results_path
from doclab.experiments.noise import against_best
from doclab.experiments.revisions import CompareError
from doclab.metrics.detection import DetectionScores

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["form", "invoice", "receipt"]


def _box(x: float, y: float) -> np.ndarray:
    return np.array([[x, y], [x + 40, y], [x + 40, y + 12], [x, y + 12]], np.float64)


def detection_rows(images: int, lost: set[int], seed: int = 0) -> list[dict]:
    """Real per-image rows: 12 GT words per image, every word found except on the `lost` images."""
    rng = np.random.default_rng(seed)
    scores = DetectionScores()
    for i in range(images):
        gt = [_box(10 + 50 * (k % 4), 20 + 20 * (k // 4)) for k in range(12)]
        found = [] if i in lost else [p + rng.normal(0, 1.5, 2) for p in gt if rng.random() > 0.1]
        scores.update(f"img{i:03d}.jpg", gt, found)
    return scores.per_image()


def classification_rows(images: int, wrong: set[int]) -> list[dict]:
    rows = []
    for i in range(images):
        label = CLASSES[i % 3]
        predicted = CLASSES[(i + 1) % 3] if i in wrong else label
        rows.append({"image": f"img{i:03d}.jpg", "label": label, "predicted": predicted,
                     "probabilities": {c: float(c == predicted) for c in CLASSES}})
    return rows


def write_results(repo: Path, split: str, detection: list[dict], classification: list[dict] | None) -> None:
    folder = repo / RESULTS / split
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "detection.json").write_text(json.dumps(detection))
    if classification is not None:
        (folder / "classification.json").write_text(json.dumps(classification))


def commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)


@pytest.fixture
def project(tmp_path):
    """main: A (good); HEAD: B loses every word on 30 % of the test images and misclassifies 6 more."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    dvc("init", "-q", cwd=repo)
    (repo / "params.yaml").write_text("seed: 0\n")
    for split in SPLITS:
        write_results(repo, split, detection_rows(40, set()), classification_rows(40, {1, 2}))
    commit(repo, "A")
    run(["git", "checkout", "-q", "-b", "worse"], repo)
    write_results(repo, "test", detection_rows(40, set(range(0, 40, 3))), classification_rows(40, set(range(8))))
    commit(repo, "B")
    return repo


def test_planted_degradation_is_worse_on_every_headline_metric(project):
    result = compare_experiments(str(project), ["main"], ["worse"], "test", resamples=2000)
    assert set(result.tasks) == {"detection", "classification"} and len(result.tasks["detection"].images) == 40
    for name in ("detect.cleval.hmean", "detect.cleval.recall", "detect.cleval_global.hmean", "detect.iou.hmean",
                 "classify.accuracy", "classify.macro_f1"):
        row = result.metrics[name]
        assert row["verdict"] == "worse" and row["ci95"][1] < 0 and row["diff"] == pytest.approx(row["b"] - row["a"])
    a_rows = json.loads(run(["git", "show", "main:results/test/detection.json"], project).stdout)
    assert result.metrics["detect.cleval.hmean"]["a"] == pytest.approx(np.mean([r["hmean"] for r in a_rows]))
    same = compare_experiments(str(project), ["main"], ["worse"], "val", resamples=2000)  # val did not change
    assert all(row["verdict"] == "within noise" and row["ci95"] == [0.0, 0.0] for row in same.metrics.values())


def test_experiment_names_and_workspace_without_touching_it(project):
    run(["git", "checkout", "-q", "main"], project)
    write_results(project, "test", detection_rows(40, set(range(0, 40, 2))), None)
    (project / RESULTS / "test" / "classification.json").write_text(json.dumps(classification_rows(40, {5})))
    dvc("exp", "save", "-n", "halved", cwd=project)
    status = run(["git", "status", "--porcelain"], project).stdout
    before = (project / RESULTS / "test" / "detection.json").read_bytes()
    by_name = compare_experiments(str(project), ["main"], ["halved"], resamples=500)
    workspace = compare_experiments(str(project), ["main"], ["workspace"], resamples=500)
    assert by_name.metrics == workspace.metrics and by_name.metrics["detect.cleval.hmean"]["verdict"] == "worse"
    assert run(["git", "status", "--porcelain"], project).stdout == status
    assert (project / RESULTS / "test" / "detection.json").read_bytes() == before


def test_several_runs_per_side_report_their_spread(project):
    result = compare_experiments(str(project), ["main", "main~0"], ["worse", "main"], resamples=500)
    row = result.metrics["detect.cleval.hmean"]
    assert len(row["a_runs"]) == 2 and len(row["b_runs"]) == 2
    assert row["a_runs"][0] == row["a_runs"][1] == pytest.approx(row["a"])
    assert row["b"] == pytest.approx(np.mean(row["b_runs"]))  # per-image average of the runs: mean of means


def test_images_on_one_side_only_are_named(project):
    write_results(project, "test", detection_rows(41, set()), classification_rows(40, set()))
    with pytest.raises(CompareError, match=r"1 only in workspace \(e.g. img040.jpg\)"):
        compare_experiments(str(project), ["main"], ["workspace"])


def test_missing_results_and_unknown_revisions_are_one_line_errors(project):
    (project / RESULTS / "test" / "classification.json").unlink()
    with pytest.raises(CompareError, match="workspace: results/test/classification.json: not in this revision"):
        compare_experiments(str(project), ["main"], ["workspace"])
    with pytest.raises(CompareError, match="no-such-rev: not a git revision or experiment"):
        compare_experiments(str(project), ["main"], ["no-such-rev"])
    (project / RESULTS / "test" / "detection.json").write_text("[{]")
    done = run([sys.executable, "-m", "doclab.cli", "compare", "main", "workspace"], project, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "workspace: results/test/detection.json: not valid JSON" in done.stderr


def test_cli_prints_table_and_json(project):
    done = run([sys.executable, "-m", "doclab.cli", "compare", "main", "worse", "--resamples", "500"], project)
    assert "95% interval" in done.stdout and "detect.cleval.hmean" in done.stdout and "worse" in done.stdout
    printed = json.loads(run([sys.executable, "-m", "doclab.cli", "compare", "main", "worse", "--json",
                              "--resamples", "500", "--split", "val"], project).stdout)
    assert printed["split"] == "val" and printed["images"] == {"detection": 40, "classification": 40}
    assert set(printed["metrics"]["classify.macro_f1"]) >= {"a", "b", "diff", "ci95", "verdict"}


def test_marks_against_the_best_run(project):
    run(["git", "checkout", "-q", "main"], project)
    write_results(project, "val", detection_rows(40, set(range(0, 40, 4)), seed=1), None)
    commit(project, "val worse")
    write_results(project, "val", detection_rows(40, set(), seed=2), None)  # same quality, other noise
    marks = against_best(str(project), {"a": "main~1", "b": "main", "c": "workspace"}, resamples=1000)
    assert marks["b"]["verdict"] == "worse" and marks["b"]["ci95"][1] < 0
    assert {marks["a"]["verdict"], marks["c"]["verdict"]} == {"best", "within noise"}


def test_results_paths_are_the_dvc_yaml_outputs():
    """compare reads what dvc.yaml declares: one path layout, checked instead of copied."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    declared = set()
    for stage in stages.values():
        for kind in ("outs", "plots", "metrics"):
            for entry in stage.get(kind) or []:
                path = next(iter(entry)) if isinstance(entry, dict) else entry
                if path.startswith(f"{RESULTS}/"):
                    declared.add(path)
    assert declared == {results_path(split, task) for split in SPLITS for task in TASKS}
    assert subprocess.run(["git", "check-ignore", "-q", results_path("test", "detection")], cwd=REPO).returncode == 1
