"""Benchmark: our CLEval against the clovaai `cleval` package on the same inputs.

    uv run --no-sync python tests/benchmarks/bench_cleval.py              # ours only
    uv run --no-sync --with cleval python tests/benchmarks/bench_cleval.py  # side by side

The second form installs `cleval` (and its numba/Polygon3/torchmetrics) into a throwaway
environment layered over the project venv; it needs PyPI, nothing else. Cases are
deterministic receipt-like pages (about 1000 x 1400 px): 100 word quads on text lines, and
100 detections made of jittered hits, a few splits and merges, and false positives. Both
sides run in "cleval" (package) mode with GT text, so their hmeans must agree; our
"competition" mode is timed as well. Times are per image, median over repeats.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from doclab.metrics.cleval import CLEvalMetric


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


def time_ours(pages: list, mode: str, repeats: int) -> tuple[float, float]:
    """(median ms per image, per-image-mean hmean) of our metric."""
    runs, hmean = [], 0.0
    for _ in range(repeats):
        metric = CLEvalMetric(mode=mode)
        start = time.perf_counter()
        for gt, texts, preds in pages:
            metric.update(gt, preds, gt_texts=texts)
        runs.append((time.perf_counter() - start) * 1e3 / len(pages))
        hmean = metric.compute()["cleval/hmean"]
    return statistics.median(runs), hmean


def _package_hmeans(pages: list) -> list[float]:
    from cleval import CLEvalMetric as PackageMetric

    hmeans = []
    for gt, texts, preds in pages:
        metric = PackageMetric()  # one per image, as the competition scores it
        metric.update(np.array(preds, dtype=np.float32).reshape(-1, 8), np.array(gt, dtype=np.float32).reshape(-1, 8),
                      det_letters=[""] * len(preds), gt_letters=texts)
        hmeans.append(float(metric.compute()["det_h"]))
    return hmeans


def time_package(pages: list, repeats: int) -> tuple[float, float] | None:
    """(median ms per image, per-image-mean hmean) of the `cleval` package, or None if absent."""
    try:
        _package_hmeans(pages[:1])  # imports it and compiles its numba kernels
    except ImportError:
        return None
    runs, hmeans = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        hmeans = _package_hmeans(pages)
        runs.append((time.perf_counter() - start) * 1e3 / len(pages))
    return statistics.median(runs), float(np.mean(hmeans))


def main() -> None:
    """Time both sides on the same pages and print the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    pages = [make_page(rng) for _ in range(args.images)]
    time_ours(pages[:2], "cleval", 1)  # warm-up
    ours_ms, ours_h = time_ours(pages, "cleval", args.repeats)
    comp_ms, comp_h = time_ours(pages, "competition", args.repeats)
    print(f"{args.images} images, 100 GT x 100 detections each")
    print(f"ours (cleval mode)       {ours_ms:8.2f} ms/image   hmean {ours_h:.6f}")
    print(f"ours (competition mode)  {comp_ms:8.2f} ms/image   hmean {comp_h:.6f}")
    package = time_package(pages, max(1, args.repeats // 2))
    if package is None:
        print("cleval package not importable; for the comparison run:\n"
              "    uv run --no-sync --with cleval python tests/benchmarks/bench_cleval.py")
        return
    pkg_ms, pkg_h = package
    print(f"cleval package           {pkg_ms:8.2f} ms/image   hmean {pkg_h:.6f}")
    print(f"speed-up {pkg_ms / ours_ms:.1f}x   |hmean difference| {abs(pkg_h - ours_h):.2e}")


if __name__ == "__main__":
    main()
