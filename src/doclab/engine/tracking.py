"""dvclive logging for the training loop: one step per epoch, history that survives a resume.

metrics.json (the summary DVC diffs) must be byte-identical when the same params are trained
again, so wall-clock measurements (`perf/...`) go to the plots only, never into the summary.
"""
from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from dvclive import Live

PERF_PREFIX = "perf/"


def open_live(live_dir: str | Path, history: Sequence[Mapping[str, float]], resuming: bool) -> Live:
    """Open the dvclive folder for a run that has already completed `len(history)` epochs.

    When resuming, dvclive's own record continues if it holds exactly those epochs. DVC deletes
    non-persistent outputs (this folder) before rerunning a stage, so when the record is
    missing or out of step it is rebuilt from `history` (kept in the checkpoint).

    Args:
        live_dir: e.g. dvclive/train_detector.
        history: one record ({metric name: value}) per completed epoch.
        resuming: True when training continues from a checkpoint.
    Returns:
        The Live object, its `step` equal to the number of completed epochs.
    """
    live = Live(dir=str(live_dir), dvcyaml=None, save_dvc_exp=False, resume=resuming)
    if live.step == len(history):
        return live
    shutil.rmtree(Path(live.plots_dir) / "metrics", ignore_errors=True)
    live.summary = {}
    live.step = 0
    for record in history:
        log_epoch(live, record)
    return live


def log_epoch(live: Live, record: Mapping[str, float]) -> None:
    """Log one epoch's values and advance the step; `perf/...` values are kept out of metrics.json."""
    for name, value in record.items():
        live.log_metric(name, value)
    live.summary.pop(PERF_PREFIX.rstrip("/"), None)
    live.next_step()


def log_final(live: Live, metrics: Mapping[str, float]) -> None:
    """Add summary-only values (e.g. `best/...`) to metrics.json and close the run."""
    for name, value in metrics.items():
        live.log_metric(name, value, plot=False)
    live.end()  # writes metrics.json with the step of the last logged epoch
