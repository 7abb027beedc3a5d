"""The sweep driver: ask Optuna for up to `jobs` trials, queue them as DVC experiments, run the queue, tell.

    result = run_sweep(".", SweepSettings(space=load_space("sweeps/detector.yaml", "params.yaml"),
                                          name="detector", trials=20, jobs=2))
    print(*best_commands(result), sep="\\n")

The Optuna study lives in `sweeps/<name>/study.db`; each trial records its experiment name, so a
rerun (after a kill, or with a larger `trials`) reads finished experiments back, waits for the
ones still queued or running, queues the ones that were asked but never queued, and only then
asks for new trials.
"""
from __future__ import annotations

import shlex
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import optuna
from optuna.trial import FrozenTrial, TrialState

from doclab.engine.pruning import MedianRule, read_intermediate
from doclab.experiments.noise import against_best, significance, statistic_for
from doclab.experiments.report import check_project
from doclab.experiments.sweep.experiments import (
    PENDING,
    TrialRun,
    metric_value,
    queue_trial,
    start_workers,
    trial_runs,
    wait_for,
)
from doclab.experiments.sweep.space import SweepSpace, override, suggest
from doclab.experiments.sweep.trials import (
    DEFAULT_METRIC,
    SweepError,
    SweepPaths,
    TrialResult,
    trial_index,
    trial_name,
    write_summary,
)

EXPERIMENT_ATTR = "experiment"
SETTING_ATTRS = ("metric", "direction")


@dataclass(frozen=True)
class SweepSettings:
    """How to search.

    Attributes:
        space: the validated search space.
        name: the sweep's name: folder `sweeps/<name>/`, experiments `<name>-tNNN`.
        trials: total trials the study should hold when done (a rerun with more continues).
        jobs: trials proposed and run at a time (`dvc queue start -j jobs`).
        sampler: 'tpe' (Optuna's TPE: random for its first 10 trials) or 'random'.
        metric: the experiment metric to optimise, a dotted key or 'FILE:KEY' (validation by default).
        direction: 'max' or 'min'.
        prune: the rule that stops lagging trials' training, None to let every trial finish.
        seed: the sampler's seed (offset by the trials already in the study, so reruns stay reproducible).
        poll_seconds: the first interval of `dvc exp show` polls while trials run (it grows with the wait).
    """

    space: SweepSpace
    name: str
    trials: int
    jobs: int = 1
    sampler: Literal["tpe", "random"] = "tpe"
    metric: str = DEFAULT_METRIC
    direction: Literal["max", "min"] = "max"
    prune: MedianRule | None = MedianRule()
    seed: int = 0
    poll_seconds: float = 5.0


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


def _sampler(settings: SweepSettings, offset: int) -> optuna.samplers.BaseSampler:
    seed = settings.seed + offset
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _open_study(paths: SweepPaths, settings: SweepSettings) -> optuna.Study:
    """Create or load the study; a stored study must have the same metric and direction."""
    paths.folder.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if settings.direction == "max" else "minimize"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(storage=f"sqlite:///{paths.storage}", study_name=settings.name,
                                    direction=direction, load_if_exists=True, sampler=_sampler(settings, 0))
    stored = {key: study.user_attrs.get(key) for key in SETTING_ATTRS}
    wanted = {"metric": settings.metric, "direction": settings.direction}
    if stored["metric"] is None:
        for key, value in wanted.items():
            study.set_user_attr(key, value)
    elif stored != wanted:
        raise SweepError(f"{paths.storage}: the stored sweep has --metric {stored['metric']} --direction "
                         f"{stored['direction']}; rerun with those, or pick another --name")
    return study


def _pruned_epochs(paths: SweepPaths) -> dict[str, int]:
    """{trial experiment: epoch} of the trials the pruning rule stopped."""
    return {str(r["trial"]): int(r["epoch"]) for r in read_intermediate(paths.intermediate) if r.get("stop")}


def _tell(study: optuna.Study, trial: FrozenTrial, run: TrialRun, settings: SweepSettings,
          pruned: dict[str, int], log: Callable[[str], None]) -> None:
    """Tell Optuna a finished experiment's metric (FAIL when it failed or lacks the metric)."""
    name = trial.user_attrs[EXPERIMENT_ATTR]
    value = metric_value(run, settings.metric) if run.state == "success" else None
    if value is None:
        why = "failed (dvc queue logs " + name + ")" if run.state != "success" else f"has no metric {settings.metric}"
        log(f"{name}: {why}")
        study.tell(trial.number, state=TrialState.FAIL)
        return
    study.tell(trial.number, value)
    note = f" (pruned at epoch {pruned[name]})" if name in pruned else ""
    log(f"{name}: {settings.metric} {value:.4f}{note}")


def _settle(repo: Path, study: optuna.Study, settings: SweepSettings, runs: dict[str, TrialRun],
            pruned: dict[str, int], log: Callable[[str], None]) -> set[str]:
    """Tell every open trial whose experiment finished; queue open trials DVC does not know.

    Returns:
        The experiment names still queued or running.
    """
    pending = set()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        name = trial.user_attrs.get(EXPERIMENT_ATTR)
        run = runs.get(name)
        if name is None:  # killed between ask and naming: nothing was queued
            study.tell(trial.number, state=TrialState.FAIL)
        elif run is None:  # asked, then killed before `dvc exp run --queue` finished
            queue_trial(repo, name, trial.params)
            log(f"{name}: queued again ({' '.join(override(k, v) for k, v in trial.params.items())})")
            pending.add(name)
        elif run.state in PENDING:
            pending.add(name)
        else:
            _tell(study, trial, run, settings, pruned, log)
    return pending


def _next_index(study: optuna.Study, settings: SweepSettings, runs: dict[str, TrialRun]) -> int:
    """1 + the highest trial index in the study or among the repo's experiments (names never repeat)."""
    names = [t.user_attrs.get(EXPERIMENT_ATTR, "") for t in study.get_trials(deepcopy=False)] + list(runs)
    indices = [index for index in (trial_index(name, settings.name) for name in names) if index is not None]
    return max(indices, default=0) + 1


def _ask_and_queue(repo: Path, study: optuna.Study, settings: SweepSettings, count: int,
                   runs: dict[str, TrialRun], log: Callable[[str], None]) -> set[str]:
    """Ask for `count` trials and queue each as a named DVC experiment; returns their names."""
    study.sampler = _sampler(settings, len(study.trials))
    first, names = _next_index(study, settings, runs), set()
    for offset in range(count):
        trial = study.ask()
        values = suggest(trial, settings.space)
        name = trial_name(settings.name, first + offset)
        trial.set_user_attr(EXPERIMENT_ATTR, name)  # before queueing: a kill in between is re-queued
        queue_trial(repo, name, values)
        log(f"{name}: queued ({' '.join(override(k, v) for k, v in values.items())})")
        names.add(name)
    return names


def _results(study: optuna.Study, pruned: dict[str, int]) -> tuple[TrialResult, ...]:
    states = {TrialState.COMPLETE: "complete", TrialState.RUNNING: "pending"}
    trials = []
    for trial in study.get_trials(deepcopy=False):
        name = trial.user_attrs.get(EXPERIMENT_ATTR, "")
        trials.append(TrialResult(trial.number, name, dict(trial.params), states.get(trial.state, "failed"),
                                  trial.value, pruned.get(name)))
    return tuple(trials)


def _best(trials: tuple[TrialResult, ...], direction: str) -> TrialResult | None:
    complete = [t for t in trials if t.state == "complete"]
    sign = 1.0 if direction == "max" else -1.0
    return max(complete, key=lambda t: (sign * t.value, -t.number)) if complete else None


def run_sweep(repo: str | Path, settings: SweepSettings, log: Callable[[str], None] = print) -> SweepResult:
    """Run (or resume) a sweep until its study holds `settings.trials` finished trials.

    Args:
        repo: the DVC project root (a git work tree with a commit and dvc.yaml).
        settings: space, budget, sampler, metric, pruning.
        log: receives one progress line per queued and finished trial.
    Returns:
        Every trial and the best one.
    Raises:
        SweepError, ReportError, ConfigError, FileNotFoundError: one line naming the file or repository.
    """
    repo = Path(repo).resolve()
    check_project(repo)
    paths = SweepPaths.of(repo, settings.name)
    study = _open_study(paths, settings)
    env = settings.prune.to_env(paths.intermediate) if settings.prune else {}
    queued, runs = 0, trial_runs(repo)
    while True:
        pruned = _pruned_epochs(paths)
        pending = _settle(repo, study, settings, runs, pruned, log)
        finished = sum(t.state != TrialState.RUNNING for t in study.get_trials(deepcopy=False))
        trials = _results(study, pruned)
        write_summary(paths.summary, settings.name, settings.metric, settings.direction, list(trials))
        if not pending and finished >= settings.trials:
            break
        if not pending:
            count = min(settings.jobs, settings.trials - finished)
            pending = _ask_and_queue(repo, study, settings, count, runs, log)
            queued += len(pending)
        start_workers(repo, settings.jobs, env, paths.log)
        runs = wait_for(repo, pending, settings.jobs, env, paths.log, settings.poll_seconds)
        missing = sorted(pending - set(runs))
        if missing:
            raise SweepError(f"{missing[0]}: queued, but `dvc exp show` does not list it (HEAD moved, or "
                             f"the queue was cleared?); see {paths.log}")
    best = _best(trials, settings.direction)
    statistic = statistic_for(settings.metric)
    noise = against_best(str(repo), {t.experiment: t.experiment for t in trials if t.state == "complete"}, statistic)
    trials = tuple(replace(t, noise=noise.get(t.experiment, {}).get("verdict")) for t in trials)
    write_summary(paths.summary, settings.name, settings.metric, settings.direction, list(trials))
    return SweepResult(settings.name, trials, best, queued, noise, statistic,
                       _significance(repo, trials, best, settings.direction, statistic))


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
