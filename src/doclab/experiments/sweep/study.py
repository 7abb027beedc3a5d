"""The sweep driver: ask Optuna for up to `jobs` trials, queue them as DVC experiments, run the queue, tell.

    result = run_sweep(".", SweepSettings(space=load_space("sweeps/detector.yaml", "params.yaml"),
                                          name="detector", trials=20, jobs=2))
    print(*best_commands(result), sep="\\n")

The Optuna study lives in `sweeps/<name>/study.db`, or in a database server several workers share
(`storage`: each worker is a `doclab sweep` in its own clone, on any machine). Each trial records its
experiment name and worker, so a rerun (after a kill, or with a larger `trials`) reads finished
experiments back, waits for the ones still queued or running, queues the ones that were asked but
never queued, and only then asks for new trials. A worker ends when the study holds `trials`
finished trials; while other workers' trials still run it waits, to re-ask any whose worker dies.
"""
from __future__ import annotations

import os
import shlex
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from doclab.engine.pruning import read_intermediate
from doclab.experiments.noise import against_best, significance, statistic_for
from doclab.experiments.report import check_project
from doclab.experiments.sweep.asktell import (
    EXPERIMENT_ATTR,
    OFFSET_ATTR,
    Worker,
    ask_and_queue,
    budget,
    sampler,
    settle,
    trial_values,
)
from doclab.experiments.sweep.experiments import gpu_ids, run_dvc, start_workers, trial_runs, wait_for
from doclab.experiments.sweep.settings import SweepSettings
from doclab.experiments.sweep.space import override
from doclab.experiments.sweep.storage import Heartbeat, fail_stale, open_storage, shown, trial_id, worker_id
from doclab.experiments.sweep.trials import SweepError, SweepPaths, TrialResult, trial_index, write_summary

SETTING_ATTRS = ("metric", "direction")


@dataclass(frozen=True)
class SweepResult:
    """A sweep's trials (by number), its best complete trial, and how many trials this call queued.

    Attributes:
        noise: {experiment: `against_best` mark} of the complete trials with validation results.
        statistic: the per-image validation statistic the marks and `significance` use.
        significance: {"runner-up" | "baseline": (its name, `significance` of the best against it, or None)}.
    """

    name: str
    trials: tuple[TrialResult, ...]
    best: TrialResult | None
    queued: int
    noise: dict = field(default_factory=dict)
    statistic: str = ""
    significance: dict = field(default_factory=dict)


def _open_study(storage: RDBStorage, paths: SweepPaths, settings: SweepSettings, where: str) -> optuna.Study:
    """Create or load the study; a stored study must have the same metric and direction.

    A new study's experiment names continue after the highest `<name>-tNNN` already in the clone, so
    names never repeat (a deleted study.db, an earlier sweep of the same name).
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if settings.direction == "max" else "minimize"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=storage, study_name=settings.name, direction=direction,
                                    load_if_exists=True, sampler=sampler(settings, 0))
    stored = {key: study.user_attrs.get(key) for key in SETTING_ATTRS}
    wanted = {"metric": settings.metric, "direction": settings.direction}
    if stored["metric"] is None:
        indices = [trial_index(name, settings.name) for name in trial_runs(paths.folder.parents[1])]
        study.set_user_attr(OFFSET_ATTR, max((i for i in indices if i is not None), default=0))
        for key, value in wanted.items():
            study.set_user_attr(key, value)
    elif stored != wanted:
        raise SweepError(f"{where}: the stored sweep has --metric {stored['metric']} --direction "
                         f"{stored['direction']}; rerun with those, or pick another --name")
    return study


def _pruned_epochs(paths: SweepPaths) -> dict[str, int]:
    """{trial experiment: epoch} of the trials the pruning rule stopped."""
    return {str(r["trial"]): int(r["epoch"]) for r in read_intermediate(paths.intermediate) if r.get("stop")}


def _results(study: optuna.Study, pruned: dict[str, int]) -> tuple[TrialResult, ...]:
    states = {TrialState.COMPLETE: "complete", TrialState.RUNNING: "pending", TrialState.WAITING: "pending"}
    trials = []
    for trial in study.get_trials(deepcopy=False):
        name = trial.user_attrs.get(EXPERIMENT_ATTR, "")
        trials.append(TrialResult(trial.number, name, trial_values(trial), states.get(trial.state, "failed"),
                                  trial.value, pruned.get(name)))
    return tuple(trials)


def _best(trials: tuple[TrialResult, ...], direction: str) -> TrialResult | None:
    complete = [t for t in trials if t.state == "complete"]
    sign = 1.0 if direction == "max" else -1.0
    return max(complete, key=lambda t: (sign * t.value, -t.number)) if complete else None


def _open_worker(repo: Path, paths: SweepPaths, settings: SweepSettings, log: Callable[[str], None]) -> Worker:
    shared = settings.storage is not None
    paths.folder.mkdir(parents=True, exist_ok=True)
    url = settings.storage or f"sqlite:///{paths.storage}"
    storage = open_storage(url, settings.heartbeat if shared else None)
    study = _open_study(storage, paths, settings, f"--storage {shown(url)}" if shared else str(paths.storage))
    return Worker(repo, study, storage, settings, worker_id(repo), log, shared)


def _run_trials(worker: Worker, paths: SweepPaths) -> tuple[tuple[TrialResult, ...], int]:
    """Ask, queue, wait and tell until the study holds `trials` finished trials; returns them and how many
    trials this worker queued."""
    settings, study, repo = worker.settings, worker.study, worker.repo
    env = settings.prune.to_env(paths.intermediate) if settings.prune else {}
    gpus = settings.gpus if settings.gpus is not None else tuple(gpu_ids(os.environ))
    queued, runs = 0, wait_for(repo, set(), settings.jobs, env, paths.log, settings.poll_seconds, gpus)
    with Heartbeat(worker.storage, settings.heartbeat if worker.shared else None) as beat:
        while True:
            fail_stale(study)  # other workers' trials whose worker stopped beating: failed and re-asked
            pruned = _pruned_epochs(paths)
            pending = settle(worker, runs, pruned)
            beat.track(trial_id(t) for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                       if worker.owns(t))
            trials = _results(study, pruned)
            write_summary(paths.summary, settings.name, settings.metric, settings.direction, list(trials))
            finished, waiting, new = budget(study, settings.trials)
            if not pending and finished >= settings.trials:
                return trials, queued
            if not pending:
                count = min(settings.jobs, waiting + max(0, new))
                if count == 0:  # the rest runs on other workers; wait, one of them may die
                    time.sleep(settings.poll_seconds)
                    continue
                pending = ask_and_queue(worker, count, beat)
                queued += len(pending)
            start_workers(repo, settings.jobs, env, paths.log, gpus)
            runs = wait_for(repo, pending, settings.jobs, env, paths.log, settings.poll_seconds, gpus)
            missing = sorted(pending - set(runs))
            if missing:
                raise SweepError(f"{missing[0]}: queued, but `dvc exp show` does not list it (HEAD moved, or "
                                 f"the queue was cleared?); see {paths.log}")


def _pull_others(worker: Worker, trials: tuple[TrialResult, ...]) -> set[str]:
    """`dvc exp pull` the complete trials other workers pushed; returns the experiments in this clone."""
    local = set(trial_runs(worker.repo))
    others = sorted(t.experiment for t in trials if t.state == "complete" and t.experiment not in local)
    if others and worker.settings.push:
        try:
            run_dvc(worker.repo, "exp", "pull", worker.settings.push, *others)
            local |= set(others)
        except SweepError as exc:
            worker.log(f"other workers' trials not pulled, they are left out of the comparison ({exc})")
    return local


def run_sweep(repo: str | Path, settings: SweepSettings, log: Callable[[str], None] = print) -> SweepResult:
    """Run (or resume, or join) a sweep until its study holds `settings.trials` finished trials.

    Args:
        repo: the DVC project root (a git work tree with a commit and dvc.yaml).
        settings: space, budget, sampler, metric, pruning, storage.
        log: receives one progress line per queued and finished trial.
    Returns:
        Every trial and the best one.
    Raises:
        SweepError, ReportError, ConfigError, FileNotFoundError: one line naming the file or repository.
    """
    repo = Path(repo).resolve()
    check_project(repo)
    paths = SweepPaths.of(repo, settings.name)
    worker = _open_worker(repo, paths, settings, log)
    trials, queued = _run_trials(worker, paths)
    local = _pull_others(worker, trials)
    best = _best(trials, settings.direction)
    statistic = statistic_for(settings.metric)
    noise = against_best(str(repo), {t.experiment: t.experiment for t in trials
                                     if t.state == "complete" and t.experiment in local}, statistic)
    trials = tuple(replace(t, noise=noise.get(t.experiment, {}).get("verdict")) for t in trials)
    write_summary(paths.summary, settings.name, settings.metric, settings.direction, list(trials))
    compared = tuple(t for t in trials if t.experiment in local)
    return SweepResult(settings.name, trials, best, queued, noise, statistic,
                       _significance(repo, compared, best if best and best.experiment in local else None,
                                     settings.direction, statistic))


def _significance(repo: Path, trials: tuple[TrialResult, ...], best: TrialResult | None, direction: str,
                  statistic: str) -> dict:
    """The best trial against the runner-up (by the sweep's metric) and against HEAD (the baseline)."""
    if best is None:
        return {}
    sign = 1.0 if direction == "max" else -1.0
    others = sorted((t for t in trials if t.state == "complete" and t is not best and t.experiment != best.experiment),
                    key=lambda t: (-sign * t.value, t.number))
    found = {"baseline": ("HEAD", significance(str(repo), best.experiment, "HEAD", statistic))}
    if others:
        found["runner-up"] = (others[0].experiment, significance(str(repo), best.experiment, others[0].experiment,
                                                                 statistic))
    return found


def best_commands(result: SweepResult) -> list[str]:
    """The best trial as the `dvc exp run -S ...` command that reproduces it, and a branch suggestion."""
    if result.best is None:
        return []
    sets = " ".join(f"-S {shlex.quote(override(key, value))}" for key, value in result.best.params.items())
    return [f"dvc exp run {sets}", f"dvc exp branch {result.best.experiment} {result.name}-best"]
