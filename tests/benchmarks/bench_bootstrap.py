"""Benchmark: `compare_tables` (every detection metric, both sides, one matrix product per 1,000
resamples) against the textbook loop (resample indices, index every column, score), same data, same run.

    uv run python tests/benchmarks/bench_bootstrap.py [--images 1000] [--resamples 10000] [--repeats 5] [--quick]

Both draw their own resamples, so their intervals agree within Monte Carlo error (the check).
Target: all nine detection metrics of 1,000 images with 10,000 resamples in under 1 s.
"""
from __future__ import annotations

import argparse

import numpy as np
from timing import measure, print_result, profile_top, row

from doclab.metrics.bootstrap import DETECTION_COLUMNS, DETECTION_STATISTICS, compare_tables

TARGET_SECONDS = 1.0


def synthetic_rows(rng: np.random.Generator, images: int, recall_shift: float) -> dict[str, np.ndarray]:
    """Per-image columns shaped like real receipts': 20-300 GT characters, ~95 % found."""
    gt = rng.integers(20, 300, images).astype(float)
    tp = np.minimum(gt, np.round(gt * np.clip(rng.normal(0.95 + recall_shift, 0.04, images), 0, 1)))
    det = tp + rng.integers(0, 12, images)
    recall, precision = tp / gt, tp / det
    table = {"hmean": 2 * recall * precision / (recall + precision), "recall": recall, "precision": precision,
             "num_char_tp": tp, "num_char_gt": gt, "num_char_det": det,
             "gran_score_recall": rng.integers(0, 3, images).astype(float),
             "gran_score_precision": rng.integers(0, 3, images).astype(float),
             "iou_gt": np.round(gt / 8), "iou_det": np.round(det / 8), "iou_matched": np.round(tp / 9)}
    return {column: table[column] for column in DETECTION_COLUMNS}


def reference_compare(a: dict, b: dict, resamples: int, seed: int) -> dict[str, list[float]]:
    """The loop a reviewer would write: per resample, index every column of both sides and score."""
    rng = np.random.default_rng(seed)
    n = len(a["hmean"])
    diffs = {name: [] for name in DETECTION_STATISTICS}
    for _ in range(resamples):
        picked = rng.integers(0, n, n)
        for name, statistic in DETECTION_STATISTICS.items():
            values = [statistic.value(np.array([[side[c][picked].sum() for c in statistic.columns]]), n)[0]
                      for side in (a, b)]
            diffs[name].append(values[1] - values[0])
    return {name: np.percentile(d, [2.5, 97.5]).tolist() for name, d in diffs.items()}


def run(repeats: int = 5, quick: bool = False, images: int = 1000, resamples: int = 10_000) -> dict:
    """Time ours and the loop on the same tables; check the intervals agree.

    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    repeats = min(repeats, 2) if quick else repeats
    rng = np.random.default_rng(0)
    a, b = synthetic_rows(rng, images, 0.0), synthetic_rows(rng, images, 0.003)
    reference_resamples = min(resamples, 2000)  # the loop is slow: fewer resamples, scaled to the same count
    call = {"ours": lambda: compare_tables(a, b, DETECTION_STATISTICS, resamples, 0),
            "reference": lambda: reference_compare(a, b, reference_resamples, 1)}
    wall, _ = measure(call, repeats)
    ours, reference = call["ours"](), call["reference"]()
    worst = max(abs(x - y) / (r[1] - r[0]) for name, r in reference.items() for x, y in zip(ours[name]["ci95"], r))
    agree = worst < 0.1
    reference_ms = wall["reference"] * resamples / reference_resamples
    met = wall["ours"] / 1000 < TARGET_SECONDS and agree
    check = f"interval ends within {worst:.1%} of the interval's width of the loop's ({'agree' if agree else 'DIFFER'})"
    rows = [row(f"bootstrap {images} images x {resamples} resamples, 9 metrics", wall["ours"], reference_ms,
                "ms", f"< {TARGET_SECONDS:g} s, agree", met, check)]
    metrics = {"bootstrap.ms": wall["ours"], "bootstrap.reference_ms": reference_ms,
               "bootstrap.speedup": reference_ms / wall["ours"], "bootstrap.worst_interval_gap": worst}
    notes = [f"median of {repeats} repeats; the loop ran {reference_resamples} resamples, its time is scaled "
             f"to {resamples}"]
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": [] if met else profile_top(call["ours"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--resamples", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.images, args.resamples))


if __name__ == "__main__":
    main()
