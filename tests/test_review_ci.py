"""The CI review recipe end to end: `.github/scripts/review.sh` in a temporary git + DVC repo with a
DVC remote, two commits (the tiny-profile baseline on main, a post-processing change on a PR branch).

GitHub itself is out of reach: this runs the script the workflow calls, as the workflow calls it.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dvc_repo import dvc, env, run

SCRIPT = Path(__file__).resolve().parents[1] / ".github/scripts/review.sh"


@pytest.mark.slow
def test_review_script_reproduces_the_branch_and_writes_the_report(tmp_path, tiny_baseline):
    base = tiny_baseline[0]
    remote = tmp_path / "remote"
    dvc("remote", "add", "--local", "ci", str(remote), cwd=base)  # .dvc/config.local: nothing committed
    try:
        dvc("push", "-q", "-r", "ci", cwd=base)
    finally:
        dvc("remote", "remove", "--local", "ci", cwd=base)
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(base), str(clone)], tmp_path)
    dvc("remote", "add", "-d", "storage", str(remote), cwd=clone)
    run(["git", "commit", "-qam", "DVC remote"], clone)
    run(["git", "checkout", "-q", "-b", "pr"], clone)
    params = yaml.safe_load((clone / "params.yaml").read_text())
    params["tune"]["space"]["box_thresh"] = [0.5, 0.6]  # only tune_postprocess and evaluate rerun
    (clone / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "commit", "-qam", "higher box_thresh"], clone)

    variables = env()
    variables["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{variables['PATH']}"
    done = subprocess.run(["bash", str(SCRIPT), "main", "review"], cwd=clone, env=variables, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ran = set(re.findall(r"Running stage '([^']+)'", done.stdout))
    # the changed stage reran; training came from the remote (evaluate reruns only if the tuned file changed)
    assert "tune_postprocess" in ran and ran <= {"tune_postprocess", "evaluate", "export"}, ran
    assert "detect.cleval.hmean" in done.stdout and "95% interval" in done.stdout
    report = (clone / "review" / "review.md").read_text()
    assert "| metric |" in report and "tune.space.box_thresh" in report
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)|<img src=\"([^\"]+)\"", report):
        target = next(part for part in link if part)
        assert (clone / "review" / target).is_file(), target
    assert "dvc.lock" in run(["git", "status", "--porcelain", "--untracked-files=no"], clone).stdout  # reproduced
