"""Paired bootstrap over images: is B's metric really different from A's, or within noise?

    tables = detection_table(rows_a), detection_table(rows_b)     # same images, same order
    compare_tables(*tables, DETECTION_STATISTICS, resamples=10_000, seed=0)
    # {"cleval/hmean": {"a": .., "b": .., "diff": b - a, "ci95": [lo, hi], "verdict": "better", ...}, ...}

Every metric is written as a function of column sums over the images (a `Statistic`), so one
resample is one vector of image multiplicities w (n,) and every metric of both sides follows from
w @ columns: a per-image mean is sum / n, a global ratio (CLEval's character totals, IoU's match
counts, macro-F1's per-class counts) is recomputed from the resampled sums. Both sides use the same
w (paired: the image-to-image spread common to both cancels), and the percentile interval of the
resampled differences decides: above 0 "better", below 0 "worse", otherwise "within noise"
(Efron & Tibshirani 1993, ch. 13; every metric here is higher-is-better).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

RESAMPLES = 10_000
CHUNK = 1_000  # resamples per matrix product: (CHUNK, n) weights stay ~8 MB per 1,000 images
Table = dict[str, np.ndarray]  # column name -> (n,) float64 values, one per image (same order on both sides)


@dataclass(frozen=True)
class Statistic:
    """A metric as a function of column sums.

    Attributes:
        columns: the table columns it reads.
        value: (sums (R, len(columns)), n) -> (R,) metric values, where n is the number of images.
    """

    columns: tuple[str, ...]
    value: Callable[[np.ndarray, int], np.ndarray]


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (the metrics' convention for an empty denominator)."""
    return np.divide(top, bottom, out=np.zeros_like(top, dtype=np.float64), where=bottom != 0)


def _hmean(recall: np.ndarray, precision: np.ndarray) -> np.ndarray:
    return _ratio(2 * recall * precision, recall + precision)


def mean_of(column: str) -> Statistic:
    """The mean of a per-image column (CLEval's competition scores, accuracy)."""
    return Statistic((column,), lambda sums, n: sums[:, 0] / n)


def _cleval_global(which: str) -> Statistic:
    # docs/cleval.md: recall = (TP - split penalty) / GT chars, precision = (TP - merge penalty) / detected chars
    def value(sums: np.ndarray, n: int) -> np.ndarray:
        tp, split, merge, gt, det = sums.T
        recall = _ratio(np.maximum(tp - split, 0), gt)
        precision = _ratio(np.maximum(tp - merge, 0), det)
        return {"recall": recall, "precision": precision, "hmean": _hmean(recall, precision)}[which]
    return Statistic(("num_char_tp", "gran_score_recall", "gran_score_precision", "num_char_gt", "num_char_det"),
                     value)


def _iou(which: str) -> Statistic:
    def value(sums: np.ndarray, n: int) -> np.ndarray:
        matched, gt, det = sums.T
        recall, precision = _ratio(matched, gt), _ratio(matched, det)
        return {"recall": recall, "precision": precision, "hmean": _hmean(recall, precision)}[which]
    return Statistic(("iou_matched", "iou_gt", "iou_det"), value)


DETECTION_STATISTICS: dict[str, Statistic] = {
    **{f"cleval/{key}": mean_of(key) for key in ("hmean", "precision", "recall")},
    **{f"cleval_global/{key}": _cleval_global(key) for key in ("hmean", "precision", "recall")},
    **{f"iou/{key}": _iou(key) for key in ("hmean", "precision", "recall")},
}
DETECTION_COLUMNS = tuple(dict.fromkeys(c for s in DETECTION_STATISTICS.values() for c in s.columns))


def classification_statistics(classes: Sequence[str]) -> dict[str, Statistic]:
    """accuracy and macro-F1 over all `classes` (a class never seen nor predicted scores 0, as sklearn's)."""
    columns = tuple(f"{kind}:{name}" for kind in ("tp", "predicted", "true") for name in classes)

    def macro_f1(sums: np.ndarray, n: int) -> np.ndarray:
        tp, predicted, true = np.split(sums, 3, axis=1)
        return _ratio(2 * tp, predicted + true).mean(axis=1)
    return {"accuracy": mean_of("correct"), "macro_f1": Statistic(columns, macro_f1)}


def detection_table(rows: Sequence[Mapping]) -> Table:
    """The bootstrap columns of per-image detection rows (`DetectionScores.per_image`)."""
    return {column: np.array([float(row[column]) for row in rows]) for column in DETECTION_COLUMNS}


def classification_table(rows: Sequence[Mapping], classes: Sequence[str]) -> Table:
    """The bootstrap columns of per-sample rows {"label", "predicted", ...} (class names)."""
    labels = np.array([row["label"] for row in rows], dtype=object)
    predicted = np.array([row["predicted"] for row in rows], dtype=object)
    table = {"correct": (labels == predicted).astype(np.float64)}
    for name in classes:
        table[f"tp:{name}"] = ((labels == name) & (predicted == name)).astype(np.float64)
        table[f"predicted:{name}"] = (predicted == name).astype(np.float64)
        table[f"true:{name}"] = (labels == name).astype(np.float64)
    return table


def resample_weights(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap multiplicities in chunks: each row (n,) counts how often each image was drawn (sums to n).

    Drawn with numpy's PCG64 from `seed`, CHUNK rows at a time, so a seed fixes every row.
    """
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, CHUNK):
        rows = min(CHUNK, resamples - start)
        drawn = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        yield np.bincount(drawn.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def _stacked(tables: Sequence[Table], statistics: Mapping[str, Statistic]) -> tuple[np.ndarray, dict]:
    """All columns the statistics need, of every table, as one (n, k) matrix; and each column's index."""
    columns = list(dict.fromkeys(c for s in statistics.values() for c in s.columns))
    lengths = {len(t[c]) for t in tables for c in columns}
    if len(lengths) != 1:
        raise ValueError(f"bootstrap: the tables differ in length ({sorted(lengths)} images)")
    matrix = np.stack([t[c] for t in tables for c in columns], axis=1)
    return matrix, {(side, c): side * len(columns) + i for side in range(len(tables)) for i, c in enumerate(columns)}


def _values(sums: np.ndarray, index: dict, side: int, statistic: Statistic, n: int) -> np.ndarray:
    return statistic.value(sums[:, [index[side, c] for c in statistic.columns]], n)


def _interval(values: np.ndarray) -> list[float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return [float(low), float(high)]


def verdict(interval: Sequence[float]) -> str:
    """'better' when the difference's interval lies above 0, 'worse' below it, else 'within noise'."""
    return "better" if interval[0] > 0 else "worse" if interval[1] < 0 else "within noise"


def compare_tables(a: Table, b: Table, statistics: Mapping[str, Statistic], resamples: int = RESAMPLES,
                   seed: int = 0) -> dict[str, dict]:
    """Paired bootstrap of every statistic, B against A, over the same images.

    Args:
        a, b: per-image columns of the two sides, rows in the same image order.
        statistics: metric name -> Statistic.
        resamples: bootstrap resamples (10,000 puts the 2.5 % tails' Monte Carlo error near 0.1 of the
            interval's spread).
        seed: the resampling seed; the same seed gives the same intervals.
    Returns:
        {metric: {"a", "b", "diff" (b - a), "ci95" [lo, hi] of the difference, "verdict",
        "a_ci95", "b_ci95" (each side's own interval)}}.
    Raises:
        ValueError: no images, tables of different lengths, or resamples < 1.
    """
    if resamples < 1:
        raise ValueError(f"bootstrap: resamples must be at least 1, got {resamples}")
    matrix, index = _stacked((a, b), statistics)
    n = len(matrix)
    if n == 0:
        raise ValueError("bootstrap: no images to resample")
    full = matrix.sum(axis=0, keepdims=True)
    draws = {name: ([], []) for name in statistics}
    for weights in resample_weights(n, resamples, seed):
        sums = weights @ matrix
        for name, statistic in statistics.items():
            for side in (0, 1):
                draws[name][side].append(_values(sums, index, side, statistic, n))
    result = {}
    for name, statistic in statistics.items():
        point_a, point_b = (float(_values(full, index, side, statistic, n)[0]) for side in (0, 1))
        values_a, values_b = (np.concatenate(draws[name][side]) for side in (0, 1))
        interval = _interval(values_b - values_a)
        result[name] = {"a": point_a, "b": point_b, "diff": point_b - point_a, "ci95": interval,
                        "verdict": verdict(interval), "a_ci95": _interval(values_a), "b_ci95": _interval(values_b)}
    return result


def comparison_lines(comparison: Mapping[str, Mapping], label_a: str = "A", label_b: str = "B") -> list[str]:
    """`compare_tables` output as an aligned text table, one metric per line after a header."""
    width = max([len(name) for name in comparison] + [6])
    lines = [f"{'metric':<{width}}  {label_a[:9]:>9}  {label_b[:9]:>9}  {'B - A':>8}  {'95% interval':>19}  verdict"]
    for name, row in comparison.items():
        low, high = row["ci95"]
        lines.append(f"{name:<{width}}  {row['a']:>9.4f}  {row['b']:>9.4f}  {row['diff']:>+8.4f}  "
                     f"[{low:+.4f}, {high:+.4f}]  {row['verdict']}")
    return lines


def point_values(table: Table, statistics: Mapping[str, Statistic]) -> dict[str, float]:
    """Every statistic on all images of one table (no resampling)."""
    matrix, index = _stacked((table,), statistics)
    full, n = matrix.sum(axis=0, keepdims=True), len(matrix)
    return {name: float(_values(full, index, 0, statistic, n)[0]) for name, statistic in statistics.items()}


def mean_table(tables: Sequence[Table]) -> Table:
    """The column-wise mean of tables over the same images (several runs of one side, e.g. seeds).

    Every statistic is a function of column sums, so this is the per-image average of the runs:
    mean per-image scores, mean counts.
    """
    return {column: np.mean([t[column] for t in tables], axis=0) for column in tables[0]}
