"""Early stopping of sweep trials that fall behind: the median rule on intermediate validation values.

`doclab sweep` starts the DVC queue workers with DOCLAB_PRUNE_FILE (an absolute path to
`sweeps/<name>/intermediate.jsonl`) in their environment; params stay untouched, so a trial's
params hash and run cache are the same with or without pruning. The training loop calls
`report_and_decide` after each validation; every trial's training stage appends one JSON line
per validation to the shared file and reads the others' lines back:

    {"trial": "detector-t003", "stage": "train_detector", "epoch": 2, "value": 0.81, "stop": false}

Without DOCLAB_PRUNE_FILE nothing is read or written (the loop does not even import this module).
"""
from __future__ import annotations

import json
import math
import os
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PRUNE_FILE_ENV = "DOCLAB_PRUNE_FILE"
WARMUP_ENV = "DOCLAB_PRUNE_WARMUP"
MIN_TRIALS_ENV = "DOCLAB_PRUNE_MIN_TRIALS"
TRIAL_ENV = "DVC_EXP_NAME"  # set by DVC for every queued experiment
STAGE_ENV = "DVC_STAGE"  # set by DVC for every stage command, e.g. 'train_detector'


@dataclass(frozen=True)
class MedianRule:
    """Stop a trial whose best value so far is worse than the median of the other trials at the same epoch.

    Attributes:
        warmup: epochs that are never pruned (early values say little about the final one).
        min_trials: other trials that must have reported at this epoch before any pruning.
    """

    warmup: int = 1
    min_trials: int = 2

    def to_env(self, prune_file: Path) -> dict[str, str]:
        """The environment variables that turn the rule on in training processes."""
        return {PRUNE_FILE_ENV: str(Path(prune_file).resolve()), WARMUP_ENV: str(self.warmup),
                MIN_TRIALS_ENV: str(self.min_trials)}


def should_stop(own: Mapping[int, float], others: Mapping[str, Mapping[int, float]], epoch: int,
                rule: MedianRule, mode: str = "max") -> bool:
    """The median rule (pure).

    Args:
        own: this trial's validation values by 1-based epoch, including `epoch`.
        others: the other trials' values by epoch.
        epoch: the epoch just validated.
        rule: warm-up and minimum number of other trials.
        mode: 'max' when larger values are better, 'min' otherwise.
    Returns:
        True when `epoch > rule.warmup`, at least `rule.min_trials` other trials reported a value
        at `epoch`, and this trial's best value up to `epoch` is worse than their median.
    """
    if epoch <= rule.warmup or epoch not in own:
        return False
    peers = [values[epoch] for values in others.values() if epoch in values]
    if len(peers) < max(rule.min_trials, 1):
        return False
    mine = [value for step, value in own.items() if step <= epoch]
    median = statistics.median(peers)
    return max(mine) < median if mode == "max" else min(mine) > median


def read_intermediate(path: str | Path) -> list[dict]:
    """The records of an intermediate-values file; a line still being written is skipped.

    Returns:
        One dict per complete JSON line, in file order ([] when the file does not exist).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a concurrent writer's half line: it is complete on the next read
    return records


def values_by_trial(records: list[dict], stage: str) -> dict[str, dict[int, float]]:
    """{trial: {epoch: value}} of one training stage; a later record of the same epoch wins (resumes)."""
    table: dict[str, dict[int, float]] = {}
    for record in records:
        if record.get("stage") == stage:
            table.setdefault(str(record.get("trial")), {})[int(record["epoch"])] = float(record["value"])
    return table


def _rule_from_env() -> MedianRule:
    try:
        return MedianRule(warmup=int(os.environ.get(WARMUP_ENV, "1")),
                          min_trials=int(os.environ.get(MIN_TRIALS_ENV, "2")))
    except ValueError:
        raise ValueError(f"{WARMUP_ENV}/{MIN_TRIALS_ENV}: expected integers, got "
                         f"{os.environ.get(WARMUP_ENV)!r}/{os.environ.get(MIN_TRIALS_ENV)!r}") from None


def _append_line(path: Path, record: dict) -> None:
    """One line with a single O_APPEND write, so concurrent trials never interleave their lines."""
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def report_and_decide(epoch: int, value: float, mode: str) -> bool:
    """Record this trial's validation value in $DOCLAB_PRUNE_FILE and apply the median rule.

    Args:
        epoch: 1-based epoch just validated.
        value: its monitored validation metric.
        mode: 'max' or 'min' (the loop's monitor mode).
    Returns:
        True when the trial should stop training now (printed with the reason).
    """
    path = Path(os.environ[PRUNE_FILE_ENV])
    trial, stage = os.environ.get(TRIAL_ENV, "workspace"), os.environ.get(STAGE_ENV, "")
    if not math.isfinite(value):
        return False
    table = values_by_trial(read_intermediate(path), stage)
    own = {**table.pop(trial, {}), epoch: value}
    stop = should_stop(own, table, epoch, _rule_from_env(), mode)
    _append_line(path, {"trial": trial, "stage": stage, "epoch": epoch, "value": value, "stop": stop})
    if stop:
        peers = sorted(values[epoch] for values in table.values() if epoch in values)
        print(f"pruned by the sweep's median rule: {trial} at epoch {epoch} ({value:.4f}, median of "
              f"{len(peers)} other trials {statistics.median(peers):.4f})", flush=True)
    return stop
