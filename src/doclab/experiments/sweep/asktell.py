"""One worker's side of the study: ask for trials and queue them, tell finished experiments, retry OOMs.

A trial records its experiment name and its worker (host and clone) as user attributes. A worker
settles only its own trials; another worker's trial is that worker's business until its heartbeat
stops (then Optuna fails it and the study re-asks it, see `doclab.experiments.sweep.storage`).
"""
from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.storages import RDBStorage
from optuna.trial import FrozenTrial, TrialState

from doclab.experiments.sweep.experiments import (
    PENDING,
    TrialRun,
    metric_value,
    push_experiment,
    queue_log,
    queue_trial,
)
from doclab.experiments.sweep.oom import oom_retry
from doclab.experiments.sweep.settings import SweepSettings
from doclab.experiments.sweep.space import Scalar, override, suggest
from doclab.experiments.sweep.storage import WORKER_ATTR, Heartbeat, retried, set_trial_attr, trial_id
from doclab.experiments.sweep.trials import trial_name

EXPERIMENT_ATTR = "experiment"
RETRY_ATTR = "oom_retry"  # {micro-batch key: halved size} of a trial retried after CUDA out of memory
OFFSET_ATTR = "index_offset"  # study attribute: trial number + 1 + offset = the index in the experiment name


@dataclass(frozen=True)
class Worker:
    """One `doclab sweep` process and what it works with.

    Attributes:
        repo: its clone.
        study: the study (shared by several workers when `shared`).
        storage: the study's storage.
        settings: the sweep's settings.
        name: this worker in the trials' attributes ('host:/path/to/clone').
        log: receives one line per queued, retried and finished trial.
        shared: other workers use the study; without, every open trial is this worker's.
    """

    repo: Path
    study: optuna.Study
    storage: RDBStorage
    settings: SweepSettings
    name: str
    log: Callable[[str], None]
    shared: bool = False

    def owns(self, trial: FrozenTrial) -> bool:
        """Whether `trial` is this worker's to queue, wait for and tell."""
        return not self.shared or trial.user_attrs.get(WORKER_ATTR) == self.name


def trial_values(trial: FrozenTrial) -> dict[str, Scalar]:
    """The `-S` values of a trial's experiment: the sampled params and the OOM retry's micro-batch."""
    return {**trial.params, **trial.user_attrs.get(RETRY_ATTR, {})}


def sampler(settings: SweepSettings, offset: int, worker: str | None = None) -> optuna.samplers.BaseSampler:
    """The sampler, seeded by the seed, the trials so far and (for a shared study) the worker, so that two
    workers starting together do not propose the same params."""
    seed = settings.seed + offset + (zlib.crc32(worker.encode()) if worker else 0)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _tell(worker: Worker, trial: FrozenTrial, run: TrialRun, pruned: Mapping[str, int]) -> None:
    """Push a finished experiment (with `settings.push`), then tell Optuna its metric (FAIL without it)."""
    settings, name = worker.settings, trial.user_attrs[EXPERIMENT_ATTR]
    value = metric_value(run, settings.metric) if run.state == "success" else None
    if value is None:
        why = "failed (dvc queue logs " + name + ")" if run.state != "success" else f"has no metric {settings.metric}"
        worker.log(f"{name}: {why}")
        worker.study.tell(trial.number, state=TrialState.FAIL)
        return
    if settings.push:
        failed = push_experiment(worker.repo, settings.push, name)
        worker.log(f"{name}: pushed to {settings.push}" if failed is None
                   else f"{name}: not pushed, it stays in this clone ({failed})")
    worker.study.tell(trial.number, value)
    note = f" (pruned at epoch {pruned[name]})" if name in pruned else ""
    worker.log(f"{name}: {settings.metric} {value:.4f}{note}")


def _retry_out_of_memory(worker: Worker, trial: FrozenTrial, name: str) -> str | None:
    """Queue a failed trial again at half the micro-batch when it ran out of GPU memory (once per trial).

    Returns:
        The retry's experiment name, None when the trial is not retried.
    """
    if RETRY_ATTR in trial.user_attrs:
        return None
    retry = oom_retry(queue_log(worker.repo, name), trial.params, worker.repo / "params.yaml")
    if retry is None:
        return None
    again = f"{name}-b{retry.batch}"
    set_trial_attr(worker.storage, trial, RETRY_ATTR, {retry.key: retry.batch})
    set_trial_attr(worker.storage, trial, EXPERIMENT_ATTR, again)
    queue_trial(worker.repo, again, {**trial.params, retry.key: retry.batch})
    worker.log(f"{name}: CUDA out of memory in {retry.stage} at micro-batch {retry.failed}; queued again as {again} "
               f"with {retry.key}={retry.batch} (same effective batch, twice the accumulation)")
    return again


def settle(worker: Worker, runs: Mapping[str, TrialRun], pruned: Mapping[str, int]) -> set[str]:
    """Tell each of this worker's open trials whose experiment finished; queue the ones DVC does not know;
    retry the ones that ran out of GPU memory.

    Returns:
        The experiment names still queued or running.
    """
    pending = set()
    for trial in worker.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not worker.owns(trial):
            continue
        name = trial.user_attrs.get(EXPERIMENT_ATTR)
        run = runs.get(name)
        if name is None:  # killed between ask and naming: nothing was queued
            worker.study.tell(trial.number, state=TrialState.FAIL)
        elif run is None:  # asked, then killed before `dvc exp run --queue` finished
            values = trial_values(trial)
            queue_trial(worker.repo, name, values)
            worker.log(f"{name}: queued again ({' '.join(override(k, v) for k, v in values.items())})")
            pending.add(name)
        elif run.state in PENDING:
            pending.add(name)
        elif run.state != "success" and (again := _retry_out_of_memory(worker, trial, name)):
            pending.add(again)
        else:
            _tell(worker, trial, run, pruned)
    return pending


def budget(study: optuna.Study, trials: int) -> tuple[int, int, int]:
    """(finished, waiting, new): trials that count and are finished, re-asked trials waiting for a worker,
    and new trials still to ask for. A trial failed by its worker's death and re-asked does not count."""
    everything = study.get_trials(deepcopy=False)
    replaced = {number for trial in everything for number in retried(trial)}
    counted = [t for t in everything if t.number not in replaced]
    finished = sum(t.state.is_finished() for t in counted)
    waiting = sum(t.state == TrialState.WAITING for t in counted)
    return finished, waiting, trials - len(counted)


def ask_and_queue(worker: Worker, count: int, beat: Heartbeat) -> set[str]:
    """Ask for `count` trials (re-asked ones first) and queue each as a named DVC experiment.

    Returns:
        Their experiment names.
    """
    study, settings = worker.study, worker.settings
    study.sampler = sampler(settings, len(study.trials), worker.name if worker.shared else None)
    offset, names = int(study.user_attrs.get(OFFSET_ATTR, 0)), set()
    for _ in range(count):
        with warnings.catch_warnings():
            # Optuna's heartbeats are made for `study.optimize`; here `Heartbeat` beats for the asked trials.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = study.ask()
        beat.add(trial_id(trial))
        name = trial_name(settings.name, trial.number + 1 + offset)
        trial.set_user_attr(WORKER_ATTR, worker.name)
        trial.set_user_attr(EXPERIMENT_ATTR, name)  # before queueing: a kill in between is re-queued
        values = {**suggest(trial, settings.space), **trial.user_attrs.get(RETRY_ATTR, {})}
        queue_trial(worker.repo, name, values)
        history = retried(worker.storage.get_trial(trial_id(trial)))
        note = f"; re-asks trial {history[-1]}, whose worker stopped" if history else ""
        worker.log(f"{name}: queued ({' '.join(override(k, v) for k, v in values.items())}){note}")
        names.add(name)
    return names
