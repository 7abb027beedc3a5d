"""A temporary git + DVC repository holding the working tree, for the end-to-end tests.

    repo = make_repo(tmp_path / "repo")          # tiny profile applied, committed, no dvc.lock
    result = dvc("repro", cwd=repo)
    assert ran_stages(result) == {...}
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TINY_PROFILE = yaml.safe_load((Path(__file__).parent / "profiles/tiny.yaml").read_text())
GIT_IDENTITY = {"GIT_AUTHOR_NAME": "doclab test", "GIT_AUTHOR_EMAIL": "test@doclab.local",
                "GIT_COMMITTER_NAME": "doclab test", "GIT_COMMITTER_EMAIL": "test@doclab.local",
                "DVC_NO_ANALYTICS": "1"}


def env() -> dict[str, str]:
    """The environment for subprocesses: this interpreter's bin first on PATH, a git identity."""
    variables = dict(os.environ)
    variables["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{variables['PATH']}"
    variables.update(GIT_IDENTITY)
    return variables


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `cmd` in `cwd` (no stdin); with `check`, a failure raises with its stdout and stderr."""
    result = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def dvc(*args: str, cwd: Path, check: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess:
    """`dvc ARGS...` with this interpreter's DVC."""
    return run([sys.executable, "-m", "dvc", *args], cwd, check, timeout)


def prefixed(repo: Path, script: str, prefix: str) -> None:
    """Put `prefix` (Python code) at the top of stages/`script` in `repo` (a test's temp copy only)."""
    path = repo / "stages" / script
    path.write_text(prefix + path.read_text(encoding="utf-8"), encoding="utf-8")


def set_key(tree: dict, dotted: str, value) -> None:
    """Set `a.b.c` in a nested dict (every parent must exist: the profile cannot invent keys)."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = value


def make_repo(dest: Path, profile: dict | None = None) -> Path:
    """Copy the working tree (tracked and untracked, not ignored) to `dest`, apply `profile`, commit.

    Args:
        dest: an empty or missing folder.
        profile: dotted params keys -> values; the tiny profile when None.

    Returns:
        `dest`, a git repo on branch main with one commit and no dvc.lock.
    """
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for key, value in (TINY_PROFILE if profile is None else profile).items():
        set_key(params, key, value)
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (dest / "dvc.lock").unlink(missing_ok=True)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "tiny profile"], dest)
    return dest


def ran_stages(result: subprocess.CompletedProcess) -> set[str]:
    """Names of the stages DVC ran (its `Running stage '<name>':` lines)."""
    return {line.split("'")[1] for line in result.stdout.splitlines() if line.startswith("Running stage '")}
