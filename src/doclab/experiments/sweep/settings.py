"""How a sweep searches: the settings `doclab sweep` builds from its options."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from doclab.engine.pruning import MedianRule
from doclab.experiments.sweep.space import SweepSpace
from doclab.experiments.sweep.trials import DEFAULT_METRIC, HEARTBEAT_SECONDS


@dataclass(frozen=True)
class SweepSettings:
    """How to search.

    Attributes:
        space: the validated search space.
        name: the sweep's name: folder `sweeps/<name>/`, experiments `<name>-tNNN`.
        trials: total trials the study should hold when done (a rerun with more continues).
        jobs: trials proposed and run at a time by this worker (`dvc queue start -j jobs`).
        sampler: 'tpe' (Optuna's TPE: random for its first 10 trials) or 'random'.
        metric: the experiment metric to optimise, a dotted key or 'FILE:KEY' (validation by default).
        direction: 'max' or 'min'.
        prune: the rule that stops lagging trials' training, None to let every trial finish.
        seed: the sampler's seed (offset by the trials already in the study, so reruns stay reproducible).
        poll_seconds: the first interval of `dvc exp show` polls while trials run (it grows with the wait).
        storage: a SQLAlchemy URL of a study shared by workers in several clones (e.g. `postgresql://...`);
            None: `sweeps/<name>/study.db`, this clone's alone.
        push: the git remote each finished trial is pushed to (`dvc exp push`, outputs to the default
            DVC remote); None: trials stay in this clone.
        heartbeat: seconds between heartbeats of a shared study's trials (silent for twice as long: failed
            and re-asked).
        gpus: the GPUs the queue workers are pinned to, one each in turn; None: CUDA_VISIBLE_DEVICES or
            every GPU torch sees.
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
    storage: str | None = None
    push: str | None = None
    heartbeat: int = HEARTBEAT_SECONDS
    gpus: tuple[str, ...] | None = None
