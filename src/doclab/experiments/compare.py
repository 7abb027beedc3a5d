"""`doclab compare A B`: every headline metric of two experiments, with paired-bootstrap intervals and verdicts.

    result = compare_experiments(".", ["main"], ["exp-a1b2c"], split="test")
    result.metrics["detect.cleval.hmean"]   # {"a", "b", "diff", "ci95", "verdict", "a_ci95", "b_ci95", ...}

Each side is one or more revisions (several runs, e.g. seeds: their per-image results are averaged,
and each run's own metric is kept as the side's spread). Both sides are read from git/DVC without
touching the workspace (`doclab.experiments.revisions`), from the per-image files the pipeline
writes: `results/<split>/detection.json` (one row of CLEval/IoU scores and counts per image) and
`results/<split>/classification.json` (label, prediction, probabilities per image).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from doclab.experiments.revisions import CompareError, RevisionFiles, Revisions
from doclab.metrics.bootstrap import (
    DETECTION_STATISTICS,
    RESAMPLES,
    Statistic,
    Table,
    classification_statistics,
    classification_table,
    compare_tables,
    detection_table,
    mean_table,
    point_values,
)

RESULTS = "results"  # the evaluate / tune_postprocess stages' --results paths in dvc.yaml (a test checks)
SPLITS = ("test", "val")
TASKS = {"detection": "detect", "classification": "classify"}  # file stem -> metric prefix


def results_path(split: str, task: str) -> str:
    """Where a split's per-image results of a task are committed, relative to the project root."""
    return f"{RESULTS}/{split}/{task}.json"


@dataclass(frozen=True)
class TaskRuns:
    """One task's per-image results on both sides, aligned on the same images.

    Attributes:
        task: "detection" or "classification".
        images: image keys, in the order of every table.
        a, b: one list of rows per revision of each side, in `images` order.
        statistics: metric name (without prefix) -> Statistic.
    """

    task: str
    images: tuple[str, ...]
    a: list[list[dict]]
    b: list[list[dict]]
    statistics: dict[str, Statistic]

    def tables(self, side: str) -> list[Table]:
        rows = self.a if side == "a" else self.b
        if self.task == "detection":
            return [detection_table(r) for r in rows]
        classes = list(rows[0][0]["probabilities"])
        return [classification_table(r, classes) for r in rows]


@dataclass(frozen=True)
class Comparison:
    """What `compare_experiments` found.

    Attributes:
        a, b: the revisions of each side (as given).
        split: "test" or "val".
        tasks: the per-image results compared, by task.
        metrics: "detect.cleval.hmean", "classify.macro_f1", ... -> `compare_tables` row, plus
            "a_runs" / "b_runs" (each revision's own value) when a side has several revisions.
        resamples, seed: the bootstrap's.
    """

    a: tuple[str, ...]
    b: tuple[str, ...]
    split: str
    tasks: dict[str, TaskRuns]
    metrics: dict[str, dict]
    resamples: int
    seed: int

    def to_json(self) -> dict:
        """A JSON-ready summary (`doclab compare --json`)."""
        return {"a": list(self.a), "b": list(self.b), "split": self.split, "resamples": self.resamples,
                "seed": self.seed, "images": {task: len(runs.images) for task, runs in self.tasks.items()},
                "metrics": self.metrics}


def _read_rows(files: RevisionFiles, path: str) -> list[dict]:
    """The per-image rows; `[]` is a single-task run's other task (see `pipeline.evaluate`)."""
    rows = files.read_json(path)
    if rows == []:
        return rows
    if not isinstance(rows, list) or not all(isinstance(r, dict) and "image" in r for r in rows):
        raise CompareError(f"{files.rev}: {path}: expected a list of per-image rows with an 'image' key")
    return rows


def _align(path: str, runs: Sequence[tuple[str, list[dict]]]) -> tuple[tuple[str, ...], list[list[dict]]]:
    """Every run's rows in the first run's image order; CompareError naming images some runs lack."""
    first_rev, first = runs[0]
    images = tuple(row["image"] for row in first)
    for rev, rows in runs[1:]:
        mine = {row["image"] for row in rows}
        only_first, only_mine = sorted(set(images) - mine), sorted(mine - set(images))
        if only_first or only_mine:
            shown = (f"{len(only_first)} only in {first_rev} (e.g. {only_first[0]})" if only_first else "") + \
                (", " if only_first and only_mine else "") + \
                (f"{len(only_mine)} only in {rev} (e.g. {only_mine[0]})" if only_mine else "")
            raise CompareError(f"{path}: the revisions scored different images: {shown}; compare runs on the "
                               "same split")
    by_image = [{row["image"]: row for row in rows} for _, rows in runs]
    return images, [[rows[key] for key in images] for rows in by_image]


def _task_runs(task: str, split: str, a: list[RevisionFiles], b: list[RevisionFiles]) -> TaskRuns | None:
    """The task's aligned rows, or None when no revision has its results file or any row in it."""
    path = results_path(split, task)
    present = [files.exists(path) for files in a + b]
    if not any(present):
        return None
    if not all(present):
        missing = [files.rev for files, found in zip(a + b, present) if not found]
        raise CompareError(f"{missing[0]}: {path}: not in this revision, but the other side has it (run "
                           "`dvc repro` there and commit, or compare revisions of the same pipeline)")
    runs = [(files.rev, _read_rows(files, path)) for files in a + b]
    if all(not rows for _, rows in runs):
        return None  # no revision has data for this task
    empty = next((rev for rev, rows in runs if not rows), None)
    if empty is not None:
        raise CompareError(f"{empty}: {path}: no per-image rows (no data for this task), but the other side has them")
    images, aligned = _align(path, runs)
    statistics = DETECTION_STATISTICS
    if task == "classification":
        classes = [list(rows[0]["probabilities"]) for rows in aligned]
        if any(c != classes[0] for c in classes):
            raise CompareError(f"{path}: the revisions have different class lists ({classes[0]} vs another)")
        statistics = classification_statistics(classes[0])
    return TaskRuns(task, images, aligned[:len(a)], aligned[len(a):], statistics)


def _task_metrics(runs: TaskRuns, resamples: int, seed: int) -> dict[str, dict]:
    tables_a, tables_b = runs.tables("a"), runs.tables("b")
    compared = compare_tables(mean_table(tables_a), mean_table(tables_b), runs.statistics, resamples, seed)
    prefix = TASKS[runs.task]
    several = len(tables_a) > 1 or len(tables_b) > 1
    # each run's own values, every statistic from one pass over its table
    per_run = {side: [point_values(t, runs.statistics) for t in tables] if several else []
               for side, tables in (("a", tables_a), ("b", tables_b))}
    metrics = {}
    for name, row in compared.items():
        if several:
            for side, values in per_run.items():
                row[f"{side}_runs"] = [run[name] for run in values]
        metrics[f"{prefix}.{name.replace('/', '.')}"] = row
    return metrics


def compare_experiments(root: str, revs_a: Sequence[str], revs_b: Sequence[str], split: str = "test",
                        resamples: int = RESAMPLES, seed: int = 0) -> Comparison:
    """Paired bootstrap of B against A over the split's images, for every task both sides have results of.

    Args:
        root: the DVC project.
        revs_a, revs_b: each side's revisions (git revs, experiment names, "workspace").
        split: "test" (the evaluate stage's) or "val" (tune_postprocess's detection, evaluate's classification).
        resamples, seed: the bootstrap's.
    Raises:
        CompareError: an unknown revision, missing or malformed results, different images on the two sides.
    """
    if split not in SPLITS:
        raise CompareError(f"--split {split}: expected one of {', '.join(SPLITS)}")
    with Revisions(root) as revisions:
        a = [revisions.open(rev) for rev in revs_a]
        b = [revisions.open(rev) for rev in revs_b]
        tasks = {task: runs for task in TASKS if (runs := _task_runs(task, split, a, b)) is not None}
    if not tasks:
        raise CompareError(f"{revs_a[0]}: no {results_path(split, '*')} in any revision (the evaluate stage "
                           "writes them; rerun `dvc repro` on both sides)")
    metrics = {name: row for runs in tasks.values() for name, row in _task_metrics(runs, resamples, seed).items()}
    return Comparison(tuple(revs_a), tuple(revs_b), split, tasks, metrics, resamples, seed)


def moved_images(runs: TaskRuns, count: int) -> tuple[list[tuple[str, float, float]], list[tuple[str, float, float]]]:
    """The `count` images whose CLEval H-mean rose most and fell most, B against A (runs averaged).

    Returns:
        (improved, degraded): (image, A's H-mean, B's H-mean) rows, largest change first; images
        that did not move are left out.
    """
    a = np.mean([[row["hmean"] for row in rows] for rows in runs.a], axis=0)
    b = np.mean([[row["hmean"] for row in rows] for rows in runs.b], axis=0)
    order = np.argsort(b - a, kind="stable")
    rows = [(runs.images[i], float(a[i]), float(b[i])) for i in order]
    degraded = [row for row in rows if row[2] < row[1]][:count]
    improved = [row for row in reversed(rows) if row[2] > row[1]][:count]
    return improved, degraded
