"""Where a sweep keeps its state (`sweeps/<name>/` in the repository) and the plain-JSON trial summary.

    sweeps/<name>/study.db            Optuna's SQLite storage: what makes a rerun resume (unless --storage)
    sweeps/<name>/trials.json         every trial's experiment, params, state and value (readable, diffable)
    sweeps/<name>/intermediate.jsonl  per-epoch validation values of the trials (the pruning rule's input)
    sweeps/<name>/queue.log           output of `dvc queue start` and its workers
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from doclab.data.records import DataError
from doclab.io import atomic_write_json

HEARTBEAT_SECONDS = 60  # a shared study's worker heartbeat; kept here so `doclab --help` needs no optuna

SWEEPS_DIR = "sweeps"
# Trials are compared on validation (the tuned val CLEval H-mean tune_postprocess reports), never on
# the test split: picking the best of N trials by its test score overfits the test set.
DEFAULT_METRIC = "metrics/tune.json:best.cleval/hmean"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
# `-b4`: the retry of a trial that ran out of GPU memory, at micro-batch 4 (doclab.experiments.sweep.oom).
TRIAL_PATTERN = re.compile(r"(?P<sweep>[A-Za-z0-9][A-Za-z0-9_.-]*)-t(?P<index>[0-9]{3,})(-b[0-9]+)?")


class SweepError(DataError):
    """A sweep cannot start or continue; the message is one line naming the file or repository."""


@dataclass(frozen=True)
class SweepPaths:
    """The files of one sweep (absolute paths)."""

    folder: Path
    storage: Path
    summary: Path
    intermediate: Path
    log: Path

    @classmethod
    def of(cls, repo: Path, name: str) -> SweepPaths:
        """The files of sweep `name` in `repo`.

        Raises:
            SweepError: the name cannot be part of a file and experiment name.
        """
        if not NAME_PATTERN.fullmatch(name):
            raise SweepError(f"--name {name!r}: use letters, digits, '_', '.' and '-' (it names experiments)")
        folder = Path(repo).resolve() / SWEEPS_DIR / name
        return cls(folder, folder / "study.db", folder / "trials.json", folder / "intermediate.jsonl",
                   folder / "queue.log")


@dataclass(frozen=True)
class TrialResult:
    """One trial as the sweep sees it.

    Attributes:
        number: Optuna's trial number (0-based).
        experiment: the DVC experiment name, `<sweep>-tNNN`.
        params: {params key: value} of the trial.
        state: 'complete', 'failed' or 'pending' (queued or running in DVC).
        value: the metric of a complete trial.
        pruned_epoch: the epoch at which the pruning rule stopped its training (None: not pruned).
        noise: against the best trial on the validation images: 'best', 'within noise', 'worse'
            (None until the sweep ends, or without per-image validation results).
    """

    number: int
    experiment: str
    params: dict
    state: str
    value: float | None = None
    pruned_epoch: int | None = None
    noise: str | None = None


def trial_name(sweep: str, index: int) -> str:
    """The experiment name of a sweep's `index`-th trial (1-based): 'detector-t003'."""
    return f"{sweep}-t{index:03d}"


def sweep_of(experiment: str) -> str | None:
    """The sweep an experiment name belongs to ('detector-t003' -> 'detector'), None for other names."""
    match = TRIAL_PATTERN.fullmatch(experiment)
    return match["sweep"] if match else None


def trial_index(experiment: str, sweep: str) -> int | None:
    """The 1-based index of a trial name of `sweep` ('detector-t003' -> 3), None for other names."""
    match = TRIAL_PATTERN.fullmatch(experiment)
    return int(match["index"]) if match and match["sweep"] == sweep else None


def write_summary(path: Path, sweep: str, metric: str, direction: str, trials: list[TrialResult]) -> None:
    """trials.json: the sweep's settings and trials (sorted keys, no timestamps: reruns give the same bytes)."""
    atomic_write_json(path, {
        "sweep": sweep, "metric": metric, "direction": direction,
        "trials": [{"experiment": t.experiment, "number": t.number, "params": t.params, "state": t.state,
                    "value": t.value, "pruned_epoch": t.pruned_epoch, "noise": t.noise} for t in trials]})
