"""The terminal form of a `Comparison`: the metric table, then each side's run spread when it has several runs."""
from __future__ import annotations

import numpy as np

from doclab.experiments.compare import Comparison
from doclab.metrics.bootstrap import comparison_lines


def side_label(revs: tuple[str, ...]) -> str:
    """'main' for one revision, 'main (+2 runs)' for several."""
    return revs[0] if len(revs) == 1 else f"{revs[0]} (+{len(revs) - 1} runs)"


def spread_lines(comparison: Comparison) -> list[str]:
    """Per metric, each side's mean, standard deviation and range over its runs (empty with one run per side)."""
    rows = {name: row for name, row in comparison.metrics.items() if "a_runs" in row}
    if not rows:
        return []
    width = max(len(name) for name in rows)
    lines = [f"{'metric':<{width}}  {'A runs: mean ± sd [min, max]':>32}  {'B runs: mean ± sd [min, max]':>32}"]
    for name, row in rows.items():
        cells = []
        for side in ("a", "b"):
            runs = np.array(row[f"{side}_runs"])
            cells.append(f"{runs.mean():.4f} ± {runs.std(ddof=1) if len(runs) > 1 else 0:.4f} "
                         f"[{runs.min():.4f}, {runs.max():.4f}]")
        lines.append(f"{name:<{width}}  {cells[0]:>32}  {cells[1]:>32}")
    return lines


def comparison_text(comparison: Comparison) -> str:
    """What `doclab compare` prints without --json."""
    images = ", ".join(f"{len(runs.images)} {task} images" for task, runs in comparison.tasks.items())
    head = [f"B = {', '.join(comparison.b)} against A = {', '.join(comparison.a)} on {comparison.split} ({images}); "
            f"paired bootstrap over images, {comparison.resamples} resamples, seed {comparison.seed}", ""]
    table = comparison_lines(comparison.metrics, side_label(comparison.a), side_label(comparison.b))
    spread = spread_lines(comparison)
    if spread:
        spread = ["", "run spread (each run's own value; the interval above is over images of the averaged runs):",
                  *spread]
    return "\n".join(head + table + spread)
