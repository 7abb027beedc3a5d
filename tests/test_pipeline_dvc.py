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
}

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


def test_repro_then_rerun_skips_everything(clone):
    first = dvc("repro", cwd=clone)
    assert "Running stage 'preprocess'" in first.stdout
    stats = json.loads((clone / "metrics/data.json").read_text())
    assert sum(stats[s]["images"] for s in ("train", "val", "test")) == 12
    second = dvc("repro", cwd=clone)
    assert "Running stage" not in second.stdout
    status = dvc("status", cwd=clone)
    assert "up to date" in status.stdout
    run(["git", "add", "-A"], clone)
    run(["git", "commit", "-qm", "baseline"], clone)


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
