"""Benchmark: our CLEval against the clovaai `cleval` package on the same inputs.

    uv run --extra bench python tests/benchmarks/bench_cleval.py [--images 20] [--repeats 5] [--quick]

`--extra bench` installs the `cleval` package (numba, Polygon3, torchmetrics); without it
only our side is timed. Cases are
deterministic receipt-like pages (about 1000 x 1400 px): 100 word quads on text lines, and
100 detections made of jittered hits, a few splits and merges, and false positives. Both
sides run in "cleval" (package) mode with GT text, so their per-image hmeans must agree
within 2e-3; our "competition" mode is timed as well. Times are per image, median over
repeats, the candidates alternating within each repeat. Target: >= 20x the package and
<= 5 ms/image.
"""
from __future__ import annotations

import argparse

import numpy as np
from timing import measure, print_result, profile_top, row

from doclab.metrics.cleval.metric import CLEvalMetric

TARGET_SPEEDUP = 20.0
TARGET_MS_PER_IMAGE = 5.0
TOLERANCE = 2e-3  # per-image hmean, as the metric contract asks


def _quad(x0: float, y0: float, x1: float, y1: float, rng: np.random.Generator, jitter: float) -> np.ndarray:
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)
    return corners + rng.uniform(-jitter, jitter, corners.shape)


def make_page(rng: np.random.Generator, words: int = 100, detections: int = 100) -> tuple[list, list, list]:
    """One synthetic page.

    Returns:
        (gt quads, gt texts, detected quads); each quad is (4, 2) float64.
    """
    gt, texts = [], []
    line_y, x = 60.0, 60.0
    while len(gt) < words:
        chars = int(rng.integers(1, 13))
        width = chars * rng.uniform(10, 14)
        if x + width > 960:
            line_y, x = line_y + rng.uniform(38, 50), 60.0
        height = rng.uniform(22, 30)
        gt.append(_quad(x, line_y, x + width, line_y + height, rng, 1.0))
        texts.append("".join(rng.choice(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"), chars)))
        x += width + rng.uniform(15, 40)
    preds = []
    for quad in gt:
        kind = rng.random()
        x0, y0 = quad.min(axis=0)
        x1, y1 = quad.max(axis=0)
        if kind < 0.08 and x1 - x0 > 40:
            mid = (x0 + x1) / 2
            preds += [_quad(x0, y0, mid - 2, y1, rng, 2.0), _quad(mid + 2, y0, x1, y1, rng, 2.0)]
        elif kind < 0.9:
            preds.append(_quad(x0, y0, x1, y1, rng, 3.0))
    while len(preds) < detections:
        x0, y0 = rng.uniform(0, 900), rng.uniform(0, 1350)
        preds.append(_quad(x0, y0, x0 + rng.uniform(15, 150), y0 + rng.uniform(15, 35), rng, 1.0))
    order = rng.permutation(len(preds))[:detections]
    return gt, texts, [preds[i] for i in order]


def ours_hmeans(pages: list, mode: str) -> list[float]:
    """Our per-image hmean of each page (one metric per page, as the package is run)."""
    hmeans = []
    for gt, texts, preds in pages:
        metric = CLEvalMetric(mode=mode)
        metric.update(gt, preds, gt_texts=texts)
        hmeans.append(metric.compute()["cleval/hmean"])
    return hmeans


def score_ours(pages: list, mode: str) -> float:
    """Score all pages with one accumulator; returns the mean per-image hmean."""
    metric = CLEvalMetric(mode=mode)
    for gt, texts, preds in pages:
        metric.update(gt, preds, gt_texts=texts)
    return metric.compute()["cleval/hmean"]


def package_hmeans(pages: list) -> list[float]:
    """The `cleval` package's per-image hmean of each page (raises ImportError when absent)."""
    from cleval import CLEvalMetric as PackageMetric

    hmeans = []
    for gt, texts, preds in pages:
        metric = PackageMetric()  # one per image, as the competition scores it
        metric.update(np.array(preds, dtype=np.float32).reshape(-1, 8), np.array(gt, dtype=np.float32).reshape(-1, 8),
                      det_letters=[""] * len(preds), gt_letters=texts)
        hmeans.append(float(metric.compute()["det_h"]))
    return hmeans


def _package_available(pages: list) -> bool:
    try:
        package_hmeans(pages[:1])  # imports it and compiles its numba kernels outside the timing
    except ImportError:
        return False
    return True


def run(repeats: int = 5, quick: bool = False, images: int | None = None) -> dict:
    """Time ours and the package side by side on the same pages.

    Args:
        repeats: timed passes over all pages (median); `quick` caps it at 2.
        quick: 5 pages instead of 20.
        images: pages per pass (overrides `quick`).
    Returns:
        {"rows": table rows, "metrics": flat numbers for bench.json, "notes": lines,
        "profile": cProfile lines of ours when a target is not met}.
    """
    count = images or (5 if quick else 20)
    repeats = min(repeats, 2) if quick else repeats
    rng = np.random.default_rng(0)
    pages = [make_page(rng) for _ in range(count)]
    score_ours(pages[:2], "cleval")  # warm-up: imports, first-call caches
    call = {"ours": lambda: score_ours(pages, "cleval"), "competition": lambda: score_ours(pages, "competition")}
    available = _package_available(pages)
    if available:
        call["reference"] = lambda: package_hmeans(pages)
    wall, cpu = measure(call, repeats)
    per_image = {name: ms / count for name, ms in wall.items()}
    metrics = {"cleval.ms_per_image": per_image["ours"], "cleval.competition_ms_per_image": per_image["competition"]}
    target = f">= {TARGET_SPEEDUP:.0f}x, <= {TARGET_MS_PER_IMAGE:.0f} ms/image"
    if not available:
        check = "cleval package not installed: run with `uv run --extra bench`"
        rows = [row("cleval (100 GT x 100 det)", per_image["ours"], None, "ms/image", target, None, check)]
        return {"rows": rows, "metrics": metrics, "notes": [], "profile": []}
    gap = float(np.max(np.abs(np.subtract(ours_hmeans(pages, "cleval"), package_hmeans(pages)))))
    check = f"max per-image |hmean - package| {gap:.1e} ({'equal' if gap <= TOLERANCE else 'NOT equal'} within {TOLERANCE:g})"
    speedup = per_image["reference"] / per_image["ours"]
    met = speedup >= TARGET_SPEEDUP and per_image["ours"] <= TARGET_MS_PER_IMAGE
    rows = [row("cleval (100 GT x 100 det)", per_image["ours"], per_image["reference"], "ms/image", target, met, check),
            row("cleval, competition mode", per_image["competition"], per_image["reference"], "ms/image", "-", None)]
    metrics.update({"cleval.reference_ms_per_image": per_image["reference"], "cleval.speedup": speedup,
                    "cleval.cpu_speedup": cpu["reference"] / cpu["ours"], "cleval.max_hmean_diff": gap})
    notes = [f"{count} pages, median of {repeats} repeats (wall); CPU-time speed-up {metrics['cleval.cpu_speedup']:.1f}x"]
    profile = [] if met else profile_top(lambda: score_ours(pages, "cleval"))
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": profile}


def main() -> None:
    """Time both sides on the same pages and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help="pages (default 20, 5 with --quick)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.images))


if __name__ == "__main__":
    main()
