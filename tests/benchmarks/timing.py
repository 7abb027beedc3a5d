"""What the benchmark scripts share: side-by-side timing, result rows, profiles of a slow path.

The scripts run as `python tests/benchmarks/bench_x.py` and are imported by `suite.py`, both
with this folder on sys.path, so this module is imported as `timing`.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Callable

import numpy as np


def measure(call: dict, repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median wall-clock and process-CPU ms per call; the candidates alternate each repeat.

    Args:
        call: name -> zero-argument callable.
        repeats: calls of each candidate.
    Returns:
        ({name: median wall ms}, {name: median process-CPU ms}).
    """
    wall, cpu = {name: [] for name in call}, {name: [] for name in call}
    for _ in range(repeats):
        for name, run in call.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            run()
            wall[name].append((time.perf_counter() - start_wall) * 1000)
            cpu[name].append((time.process_time() - start_cpu) * 1000)
    return ({name: float(np.median(t)) for name, t in wall.items()},
            {name: float(np.median(t)) for name, t in cpu.items()})


def row(benchmark: str, ours: float, reference: float | None, unit: str, target: str,
        met: bool | None, check: str = "", higher_is_better: bool = False) -> dict:
    """One line of the suite's table.

    Args:
        benchmark: its name in the table.
        ours, reference: the two figures in `unit` (reference None when there is none).
        unit: e.g. "ms/image" (lower is better) or "images/s" (`higher_is_better`).
        target: the goal in words, e.g. ">= 20x".
        met: whether the goal is reached (None: no goal).
        check: the equality check's result in words.
        higher_is_better: the ratio is ours / reference instead of reference / ours.
    Returns:
        {"benchmark", "ours", "reference", "unit", "ratio", "target", "met", "check"}; ratio > 1
        means ours is better (None without a reference).
    """
    ratio = None
    if reference is not None and ours > 0 and reference > 0:
        ratio = ours / reference if higher_is_better else reference / ours
    return {"benchmark": benchmark, "ours": ours, "reference": reference, "unit": unit, "ratio": ratio,
            "target": target, "met": met, "check": check}


def profile_top(call: Callable[[], object], entries: int = 8) -> list[str]:
    """Profile one call of `call`: the functions with the most cumulative time.

    Args:
        call: what to profile (run once under cProfile).
        entries: how many lines to keep.
    Returns:
        Lines "cumulative ms (share of the call) calls function (file:line)", largest first.
    """
    profiler = cProfile.Profile()
    profiler.runcall(call)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = max(stats.total_tt, 1e-9)
    listed = sorted(stats.stats.items(), key=lambda item: item[1][3], reverse=True)
    lines = []
    for (path, line, function), (_, calls, _, cumulative, _) in listed:
        if function == "<lambda>" or "_lsprof" in function:  # the wrapper and the profiler itself
            continue
        where = f"{path.rsplit('/', 1)[-1]}:{line}" if path != "~" else "built-in"
        lines.append(f"{cumulative * 1000:9.1f} ms ({cumulative / total:4.0%}) {calls:7d} calls  {function} ({where})")
        if len(lines) == entries:
            break
    return lines


def _figure(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


def markdown_table(rows: list[dict]) -> str:
    """The rows (from `row`) as one Markdown table: benchmark | ours | reference | ratio | target | met."""
    lines = ["| benchmark | ours | reference | ratio | target | met |", "| --- | --- | --- | --- | --- | --- |"]
    for entry in rows:
        ratio = "-" if entry["ratio"] is None else f"{entry['ratio']:.1f}x"
        met = {True: "yes", False: "**no**", None: "-"}[entry["met"]]
        lines.append(f"| {entry['benchmark']} | {_figure(entry['ours'], entry['unit'])} | "
                     f"{_figure(entry['reference'], entry['unit'])} | {ratio} | {entry['target'] or '-'} | {met} |")
    return "\n".join(lines)


def print_result(result: dict) -> None:
    """A benchmark's result (from its `run`) on stdout: the table, the checks, the profile if any."""
    print(markdown_table(result["rows"]))
    for entry in result["rows"]:
        if entry["check"]:
            print(f"{entry['benchmark']}: {entry['check']}")
    for note in result.get("notes", []):
        print(note)
    if result.get("profile"):
        print("profile of ours (cumulative):")
        print("\n".join(result["profile"]))
