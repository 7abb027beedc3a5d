"""Which runs are really behind the best one? Paired bootstrap of each run's per-image validation results.

    marks = against_best(".", {"main": "main", "sweep-t001": "sweep-t001", ...})
    marks["sweep-t001"]   # {"value": 0.9237, "verdict": "best" | "within noise" | "worse", "diff", "ci95"}

`doclab report` marks its table with these, `doclab sweep` its trials and its winner's line: a
gap to the best that the validation images cannot resolve is "within noise", not a ranking.
"""
from __future__ import annotations

from collections.abc import Mapping

from doclab.experiments.compare import results_path
from doclab.experiments.revisions import CompareError, Revisions
from doclab.metrics.bootstrap import DETECTION_STATISTICS, compare_tables, detection_table, point_values

DEFAULT_STATISTIC = "cleval/hmean"
MARK_RESAMPLES = 2_000  # one comparison per run: enough for a 95 % verdict, cheap for a table of many runs


def statistic_for(metric: str) -> str:
    """The per-image detection statistic a metric key names ('metrics/tune.json:best.iou/hmean' -> 'iou/hmean'),
    else the headline CLEval H-mean."""
    return next((name for name in DETECTION_STATISTICS if metric.endswith(name)), DEFAULT_STATISTIC)


def _val_tables(root: str, runs: Mapping[str, str]) -> dict[str, tuple[tuple[str, ...], dict]]:
    """{label: (image keys, bootstrap table)} of the runs that have validation detection results."""
    path, tables = results_path("val", "detection"), {}
    with Revisions(root) as revisions:
        for label, rev in runs.items():
            try:
                files = revisions.open(rev)
                if not files.exists(path):
                    continue
                rows = sorted(files.read_json(path), key=lambda row: row["image"])
            except (CompareError, KeyError, TypeError):
                continue  # a run without readable results gets no mark, the others still do
            tables[label] = (tuple(row["image"] for row in rows), detection_table(rows))
    return tables


def against_best(root: str, runs: Mapping[str, str], statistic: str = DEFAULT_STATISTIC,
                 resamples: int = MARK_RESAMPLES, seed: int = 0) -> dict[str, dict]:
    """Each run against the best one on the validation images, paired bootstrap of `statistic`.

    Args:
        root: the DVC project.
        runs: label -> revision (git rev, experiment name or "workspace").
        statistic: a `DETECTION_STATISTICS` name.
    Returns:
        {label: {"value", "verdict", "diff" (run - best), "ci95"}} for the runs with results on the
        best run's images; the best's verdict is "best". Runs without results are left out.
    """
    chosen = {statistic: DETECTION_STATISTICS[statistic]}
    tables = _val_tables(root, runs)
    if not tables:
        return {}
    values = {label: point_values(table, chosen)[statistic] for label, (_, table) in tables.items()}
    best = max(values, key=lambda label: (values[label], label))
    images, best_table = tables[best]
    marks = {best: {"value": values[best], "verdict": "best", "diff": 0.0, "ci95": [0.0, 0.0]}}
    for label, (keys, table) in tables.items():
        if label != best and keys == images:
            row = compare_tables(best_table, table, chosen, resamples, seed)[statistic]
            marks[label] = {"value": values[label], "verdict": row["verdict"], "diff": row["diff"],
                            "ci95": row["ci95"]}
    return marks


def significance(root: str, winner: str, other: str, statistic: str = DEFAULT_STATISTIC,
                 resamples: int = MARK_RESAMPLES, seed: int = 0) -> dict | None:
    """`winner` against `other` on the validation images: {"diff", "ci95", "verdict"}, None without results
    on the same images for both."""
    tables = _val_tables(root, {"winner": winner, "other": other})
    if len(tables) < 2 or tables["winner"][0] != tables["other"][0]:
        return None
    chosen = {statistic: DETECTION_STATISTICS[statistic]}
    row = compare_tables(tables["other"][1], tables["winner"][1], chosen, resamples, seed)[statistic]
    return {"diff": row["diff"], "ci95": row["ci95"], "verdict": row["verdict"]}
