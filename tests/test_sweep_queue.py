"""The sweep's view of DVC's experiment queue survives a task a stopping worker took and put back.

A DVC queue worker stops on its own when its queue looks empty (dvc-task's TemporaryWorker checks
every 10 s, and also stops when its own status call times out under load). If it takes a task from
the queue just then, celery's warm shutdown gives the unstarted task back: kombu's filesystem
transport writes it into the queue again under a new file name, but its first copy stays in the
`processed` folder. DVC then counts the task as running, finds no executor info file for it, and
`dvc exp show` fails for every experiment until a worker runs the task again (CI saw this after an
out-of-memory retry). The test leaves the queue in exactly that state with file moves.
"""
from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest
from dvc_repo import dvc, run

from doclab.experiments.sweep.experiments import wait_for

STAGE = """import json, yaml
x = yaml.safe_load(open("params.yaml"))["x"]
json.dump({"score": x * 10}, open("score.json", "w"))
"""
DVC_YAML = """stages:
  score:
    cmd: python score.py
    deps: [score.py]
    params: [x]
    metrics: [{score.json: {cache: false}}]
"""


def _one_stage_repo(repo: Path) -> Path:
    repo.mkdir()
    run(["git", "init", "-q"], repo)
    run(["git", "config", "user.email", "t@example.com"], repo)
    run(["git", "config", "user.name", "t"], repo)
    dvc("init", "-q", cwd=repo)
    (repo / "score.py").write_text(STAGE, encoding="utf-8")
    (repo / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    (repo / "params.yaml").write_text("x: 1\n", encoding="utf-8")
    dvc("repro", cwd=repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline"], repo)
    return repo


def _taken_and_put_back(repo: Path) -> None:
    """What a worker stopping while it takes the queued task leaves: the task's message both in
    `processed` (taken) and, under a new name, in `in` (put back)."""
    broker = repo / ".dvc/tmp/exps/celery/broker"
    [message] = (broker / "in").glob("*.celery.msg")
    shutil.copy(message, broker / "processed" / message.name)
    message.rename(broker / "in" / f"{message.name.split('_')[0]}1_{uuid.uuid4()}.celery.msg")


@pytest.mark.slow
def test_a_task_a_stopping_worker_put_back_is_run_and_shown(tmp_path):
    repo = _one_stage_repo(tmp_path / "repo")
    dvc("exp", "run", "--queue", "-S", "x=2", "--name", "put-back", cwd=repo)
    _taken_and_put_back(repo)
    stuck = dvc("exp", "show", "--json", cwd=repo, check=False)
    assert stuck.returncode != 0 and ".run" in stuck.stderr, stuck.stderr  # the state CI hit

    runs = wait_for(repo, {"put-back"}, jobs=1, env={}, log_file=tmp_path / "workers.log", poll_seconds=1.0)
    assert runs["put-back"].state == "success", runs
    assert runs["put-back"].metrics["score.json"] == {"score": 20}
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    names = [rev["name"] for commit in shown for group in commit.get("experiments") or [] for rev in group["revs"]]
    assert names == ["put-back"], names
