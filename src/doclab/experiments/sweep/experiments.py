"""DVC experiment plumbing of a sweep: queue a trial, start queue workers, read trial states and metrics.

Everything goes through the `dvc` command line of this interpreter's environment, so a sweep's
trials are ordinary experiments: `dvc exp show` lists them, `dvc queue logs <name>` shows their output.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from doclab.experiments.report import ReportError, exp_show
from doclab.experiments.report_table import lookup
from doclab.experiments.sweep.space import Scalar, override
from doclab.experiments.sweep.trials import SweepError

# Persistent, git-ignored training checkpoints: copied into each queued experiment's temporary
# folder so stages whose params did not change are skipped there too (`persist` outputs get no
# run cache, and without their folder DVC would retrain them in every trial).
COPY_PATHS = ("checkpoints",)
PENDING = ("queued", "running")
SHOW_RETRIES = 5
MAX_POLL_SECONDS = 60.0
WORKER_START_SECONDS = 120


@dataclass(frozen=True)
class TrialRun:
    """What DVC knows about one experiment.

    Attributes:
        name: the experiment name.
        state: 'queued', 'running', 'failed' or 'success' (also for finished runs DVC cleaned up).
        metrics: {metrics file: its parsed data} of a finished experiment.
    """

    name: str
    state: str
    metrics: Mapping[str, object] = field(default_factory=dict)


def dvc_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment, this interpreter's bin folder first on PATH (DVC starts its
    queue workers as plain `dvc`), plus `extra`."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def run_dvc(repo: Path, *args: str) -> str:
    """`dvc ARGS` in `repo`; returns stdout.

    Raises:
        SweepError: DVC failed (its last output line).
    """
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=dvc_env(), capture_output=True,
                            text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        raise SweepError(f"{repo}: dvc {' '.join(args[:2])} failed: {lines[-1] if lines else result.returncode}")
    return result.stdout


def queue_trial(repo: Path, name: str, values: Mapping[str, Scalar]) -> None:
    """`dvc exp run --queue --allow-missing --name NAME -S key=value ...` (plus the checkpoint folders, see
    COPY_PATHS).

    `--allow-missing`: a clone that got its outputs with `dvc pull` lacks the checkpoint folders (not in
    the DVC remote); a stage whose only change is that they are missing must not retrain in every trial.
    """
    args = ["exp", "run", "--queue", "--allow-missing", "--name", name]
    for key, value in values.items():
        args += ["-S", override(key, value)]
    for path in COPY_PATHS:
        if (repo / path).exists():
            args += ["--copy-paths", path]
    run_dvc(repo, *args)


def gpu_ids(env: Mapping[str, str]) -> list[str]:
    """The GPUs this sweep may use: the entries of CUDA_VISIBLE_DEVICES when set (ids, UUIDs or MIG
    names), else every GPU torch sees; [] on a machine without CUDA."""
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device.strip() for device in visible.split(",") if device.strip()]
    import torch  # only here: the rest of the driver never needs it

    return [str(index) for index in range(torch.cuda.device_count())]


def _queue_start(repo: Path, jobs: int, env: Mapping[str, str], log_file: Path) -> None:
    with open(log_file, "ab") as log:
        result = subprocess.run([sys.executable, "-m", "dvc", "queue", "start", "-j", str(jobs)], cwd=repo,
                                env=dvc_env(env), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SweepError(f"{repo}: dvc queue start failed (see {log_file})")


def _registered_workers(repo: Path) -> int:
    """Queue workers up (busy or idle), from `dvc queue status`'s 'Worker status: A active, I idle'."""
    found = re.search(r"Worker status: (\d+) active, (\d+) idle", run_dvc(repo, "queue", "status"))
    return int(found[1]) + int(found[2]) if found else 0


def start_workers(repo: Path, jobs: int, env: Mapping[str, str], log_file: Path, gpus: Sequence[str] = ()) -> None:
    """Start the missing ones of `jobs` DVC queue workers, with `env` added to their environment.

    With `gpus`, worker k (1-based) sees only `gpus[(k - 1) % len(gpus)]` as CUDA_VISIBLE_DEVICES, so
    J trials train on J GPUs instead of all on the first. DVC gives every worker of one
    `dvc queue start -j J` the same environment, and `-j k` starts only the workers 1..k that are
    not up: so the workers are started one at a time, `-j k` with GPU k's environment, each once
    the previous one is up (else `-j k` would start worker k-1 a second time).

    The workers are daemons that inherit the command's output streams; they go to `log_file`
    (pipes would make this call wait until the workers exit).

    Raises:
        SweepError: `dvc queue start` failed, or a worker did not come up within WORKER_START_SECONDS.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if not gpus:
        _queue_start(repo, jobs, env, log_file)
        return
    for worker in range(1, jobs + 1):
        _queue_start(repo, worker, {**env, "CUDA_VISIBLE_DEVICES": gpus[(worker - 1) % len(gpus)]}, log_file)
        deadline = time.monotonic() + WORKER_START_SECONDS
        while _registered_workers(repo) < worker:
            if time.monotonic() > deadline:
                raise SweepError(f"{repo}: queue worker {worker} did not start within {WORKER_START_SECONDS} s "
                                 f"(see {log_file})")
            time.sleep(1.0)


def queue_log(repo: Path, name: str) -> str:
    """The output of a queued experiment's run (`dvc queue logs NAME`), '' when DVC has none."""
    try:
        return run_dvc(repo, "queue", "logs", name)
    except SweepError:
        return ""


def push_experiment(repo: Path, remote: str, name: str) -> str | None:
    """`dvc exp push REMOTE NAME`: the experiment's commit to the git remote, its outputs to the default
    DVC remote. Returns None, or the reason it failed (the trial stays in this clone)."""
    try:
        run_dvc(repo, "exp", "push", remote, name)
    except SweepError as exc:
        return str(exc)
    return None


def trial_runs(repo: Path) -> dict[str, TrialRun]:
    """Every experiment of HEAD by name, from `dvc exp show --json` (see doclab.experiments.report_table)."""
    runs = {}
    for commit in exp_show(repo):
        for group in commit.get("experiments") or []:
            revs = group.get("revs") or [{}]
            name = group.get("name") or revs[0].get("name")
            if not name:
                continue
            executor = group.get("executor") or {}
            state = executor.get("state") or ("failed" if revs[0].get("error") else "success")
            metrics = {file: (entry or {}).get("data") or {}
                       for file, entry in ((revs[0].get("data") or {}).get("metrics") or {}).items()}
            runs[name] = TrialRun(name, state, metrics)
    return runs


def metric_value(run: TrialRun, metric: str) -> float | None:
    """The value of `metric` in a finished experiment, or None when absent or not a number.

    Args:
        run: the experiment.
        metric: a dotted key, e.g. 'detect.cleval.hmean' (the first metrics file holding it wins),
            or 'FILE:KEY', e.g. 'dvclive/train_detector/metrics.json:best.cleval.hmean'.
    """
    file, _, key = metric.rpartition(":")
    sources = [run.metrics.get(file) or {}] if file else list(run.metrics.values())
    for data in sources:
        value = lookup(data, tuple(key.split(".")))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def wait_for(repo: Path, names: set[str], jobs: int, env: Mapping[str, str], log_file: Path,
             poll_seconds: float = 5.0, gpus: Sequence[str] = ()) -> dict[str, TrialRun]:
    """Poll `dvc exp show` until none of `names` is queued or running.

    Each poll costs a few CPU seconds (a `dvc` start-up), so the interval grows with the wait:
    `poll_seconds` at first, then a tenth of the time waited so far, at most MAX_POLL_SECONDS.
    Short trials are noticed within seconds; long ones lose at most 10 % of their time to
    latency and the polls take a negligible share of the cores the trials train on.

    Workers are restarted when trials are queued but none runs (a worker that died or timed
    out idle); DVC starts no second worker under a name that is alive. A failing `dvc exp show`
    also restarts them, then is retried, SHOW_RETRIES times in a row before its error is raised:
    it fails while a task has been taken from DVC's queue but has no executor info file yet. A
    worker writes that file when it sets the task up; a worker that stops on idle just as it takes
    the task puts the task back in the queue but leaves it marked as taken, so the file appears
    only once a worker runs the task again.

    Returns:
        The final runs of every experiment (by name); with no `names`, the current ones.
    """
    failures, started = 0, time.monotonic()
    while True:
        try:
            runs = trial_runs(repo)
        except ReportError:
            failures += 1
            if failures > SHOW_RETRIES:
                raise
            start_workers(repo, jobs, env, log_file, gpus)
            time.sleep(poll_seconds)
            continue
        failures = 0
        pending = {name for name in names if name in runs and runs[name].state in PENDING}
        if not pending:
            return runs
        if all(runs[name].state == "queued" for name in pending):
            start_workers(repo, jobs, env, log_file, gpus)
        time.sleep(min(MAX_POLL_SECONDS, max(poll_seconds, 0.1 * (time.monotonic() - started))))
