"""`doclab sweep --storage postgresql://...`: workers in several clones share one study on a real
PostgreSQL server; trials travel through a bare git remote and a local DVC remote; a worker killed
mid-trial has its trial failed by the heartbeat and re-asked by the other worker (one sweep does both:
an end-to-end sweep is the dearest kind of test)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from dvc_repo import dvc, env, run
from postgres_server import missing_reason, postgres_server

from doclab.experiments.sweep.storage import WORKER_ATTR, retried, storage_url

NAME = "shared"
# On the tiny profile a post-processing threshold reruns only tune_postprocess and evaluate: the
# cheapest real trials (the training stages are unchanged, their checkpoints are not even in the clone).
SPACE = "postprocess.box_thresh: {uniform: [0.2, 0.5]}\n"
HEARTBEAT = 2


def worker(clone: Path, space: Path, url: str, trials: int) -> subprocess.Popen:
    """Start `doclab sweep` in `clone` as one worker of the shared study."""
    command = [sys.executable, "-m", "doclab.cli", "sweep", str(space), "--trials", str(trials), "--name", NAME,
               "--storage", url, "--push", "origin", "--sampler", "random", "--prune", "none",
               "--heartbeat", str(HEARTBEAT)]
    return subprocess.Popen(command, cwd=clone, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True)


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out
    return out


def clone(bare: Path, dest: Path, store: Path) -> Path:
    """A machine's clone: git clone, the shared DVC remote as its default, the baseline's outputs pulled."""
    run(["git", "clone", "-q", str(bare), str(dest)], bare.parent)
    dvc("remote", "add", "--local", "-d", "store", str(store), cwd=dest)
    dvc("pull", cwd=dest)
    return dest


def experiments(repo: Path) -> dict[str, dict]:
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    return {rev["name"]: rev for commit in shown for group in commit.get("experiments") or []
            for rev in group["revs"]}


@pytest.fixture(scope="module")
def postgres_url():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    with postgres_server() as url:
        yield url


@pytest.fixture
def shared_remotes(tmp_path, tiny_baseline):
    """(bare git remote, DVC remote folder) holding the tiny baseline commit and its outputs."""
    repo = tiny_baseline[0]
    run(["git", "checkout", "-q", "--", "."], repo)  # other end-to-end tests may have left an experiment
    dvc("checkout", "--force", cwd=repo)
    store, bare = tmp_path / "dvc-store", tmp_path / "origin.git"
    dvc("remote", "add", "--local", "-f", "test-store", str(store), cwd=repo)
    try:
        dvc("push", "-r", "test-store", cwd=repo)
    finally:
        dvc("remote", "remove", "--local", "test-store", cwd=repo)
    run(["git", "clone", "-q", "--bare", str(repo), str(bare)], tmp_path)
    return bare, store


def wait_until_running(url: str, owner: Path, timeout: float = 300) -> optuna.trial.FrozenTrial:
    """The trial `owner`'s worker runs, once its experiment is queued in that clone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            study = optuna.load_study(study_name=NAME, storage=storage_url(url))
        except KeyError:  # no worker has created the study yet
            time.sleep(1)
            continue
        for trial in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
            if str(owner) in trial.user_attrs.get(WORKER_ATTR, "") and "experiment" in trial.user_attrs:
                if trial.user_attrs["experiment"] in experiments(owner):
                    return trial
        time.sleep(1)
    raise AssertionError(f"no trial of {owner} started within {timeout} s")


@pytest.mark.slow
def test_two_workers_in_two_clones_share_one_study_and_a_dead_worker_is_re_asked(tmp_path, shared_remotes,
                                                                                 postgres_url):
    """Both workers ask a trial of the one study; worker a dies mid-trial (its process and its DVC queue,
    as when its machine goes down); worker b, after its own trial, sees a's heartbeat stop, fails a's
    trial and runs it again. A third clone pulls b's pushed trials with their outputs."""
    bare, store = shared_remotes
    space = tmp_path / "space.yaml"
    space.write_text(SPACE, encoding="utf-8")
    a, b = (clone(bare, tmp_path / name, store) for name in ("a", "b"))

    started = time.monotonic()
    crashing, surviving = worker(a, space, postgres_url, 2), worker(b, space, postgres_url, 2)
    lost = wait_until_running(postgres_url, a)
    crashing.send_signal(signal.SIGKILL)
    crashing.wait()
    dvc("queue", "stop", "--kill", cwd=a, check=False)
    dvc("queue", "kill", "-f", lost.user_attrs["experiment"], cwd=a, check=False)
    out = finish(surviving)
    print(f"worker b runs its trial and worker a's again: {time.monotonic() - started:.0f} s", out, sep="\n")
    study = optuna.load_study(study_name=NAME, storage=storage_url(postgres_url))
    failed = study.trials[lost.number]
    again = [t for t in study.trials if retried(t) == [lost.number]]
    assert failed.state == optuna.trial.TrialState.FAIL and len(again) == 1, [t.state for t in study.trials]
    assert str(a) in failed.user_attrs[WORKER_ATTR]
    assert again[0].state == optuna.trial.TrialState.COMPLETE and again[0].params == lost.params
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == 3 and len(done) == 2, [t.state for t in study.trials]
    assert all(t.user_attrs[WORKER_ATTR].rpartition(":")[2] == str(b) for t in done)
    assert f"re-asks trial {lost.number}, whose worker stopped" in out, out
    assert "pushed to origin" in out and "sweep shared: 2 complete, 1 failed" in out, out

    third = clone(bare, tmp_path / "c", store)
    dvc("exp", "pull", "origin", cwd=third)
    print(dvc("exp", "show", "--no-pager", "--drop", ".*", "--keep", "Experiment|box_thresh|best.cleval/hmean",
              cwd=third).stdout)
    names = {t.user_attrs["experiment"] for t in done}
    seen = experiments(third)
    assert names <= set(seen), (names, list(seen))
    for name in names:  # metrics from git, and the trial's outputs from the DVC remote
        assert "detect.cleval.hmean" in seen[name]["data"]["metrics"]["metrics/evaluate.json"]["data"]
    dvc("exp", "apply", sorted(names)[0], cwd=third)
    assert (third / "models/postprocess.json").is_file()
