"""The benchmark suite: run the selected benchmarks, print one table, write bench.json and benchmarks.md.

    uv run --extra bench python tests/benchmarks/suite.py [NAME...] [--repeats N] [--quick]
        [--profile tiny|default|here] [--json metrics/bench.json] [--markdown benchmarks.md]

NAME is any of cleval, targets, postprocess, tune, loader, pipeline, bootstrap, deploy (default: all). Each
benchmark times our code and its reference side by side in this process (the pipeline one
runs `dvc repro` stage by stage in a temporary clone). Outputs are merged: a run of some
benchmarks replaces their figures and keeps the others' from earlier runs.
"""
from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import re
from pathlib import Path

from timing import markdown_table

from doclab.io import atomic_write_json, atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ("cleval", "targets", "postprocess", "tune", "loader", "pipeline", "bootstrap", "deploy")
# The bench.json key prefixes each benchmark owns (replaced when it runs again).
PREFIXES = {"cleval": ("cleval.",), "targets": ("targets.",), "postprocess": ("postprocess.",), "tune": ("tune.", "tune_grid."),
            "loader": ("loader.", "model_step.", "model_step_gpu."), "pipeline": ("pipeline.",),
            "bootstrap": ("bootstrap.",), "deploy": ("deploy.",)}
SECTION = re.compile(r"<!-- bench:(?P<name>\w+) (?P<rows>.*?) -->\n(?P<body>.*?)<!-- /bench:(?P=name) -->\n", re.DOTALL)


def run_benchmark(name: str, repeats: int | None, quick: bool, profile: str) -> dict:
    """Import `bench_<name>` and call its `run`.

    Args:
        name: one of BENCHMARKS.
        repeats: passed on when given (each benchmark has its own default).
        quick: smaller inputs / fewer repeats.
        profile: the pipeline benchmark's params profile.
    Returns:
        The benchmark's {"rows", "metrics", "notes", "profile"}.
    """
    # Imported on demand: the search's spawned workers re-import this script, and must not
    # import torch and every benchmark with it.
    module = importlib.import_module(f"bench_{name}")
    options = {"quick": quick, **({"repeats": repeats} if repeats else {})}
    if name == "pipeline":
        options["profile"] = profile
    return module.run(**options)


def machine() -> dict[str, str | int]:
    """CPU model, cores, GPU, library versions and the date, for bench.json and benchmarks.md."""
    import cv2
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        models = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        cpu = models[0] if models else cpu
    try:
        from importlib.metadata import version
        cleval_version = version("cleval")
    except ImportError:
        cleval_version = "not installed"
    return {"cpu": cpu, "cores": os.cpu_count() or 0,
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
            "python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "numpy": numpy.__version__, "opencv": cv2.__version__, "cleval": cleval_version,
            "date": datetime.date.today().isoformat()}


def merged_json(old: dict, results: dict[str, dict], settings: dict[str, dict], host: dict) -> dict:
    """bench.json content: the old figures minus those the run benchmarks own, plus their new ones.

    Args:
        old: the existing bench.json ({} when none).
        results: benchmark name -> its result.
        settings: benchmark name -> how it ran (date, repeats, quick, profile).
        host: `machine()`.
    Returns:
        {flat numeric keys..., "machine": host, "runs": {name: settings}}.
    """
    owned = tuple(prefix for name in results for prefix in PREFIXES[name])
    figures = {key: value for key, value in old.items()
               if isinstance(value, int | float) and not key.startswith(owned)}
    for result in results.values():
        figures.update({key: float(value) for key, value in result["metrics"].items()})
    runs = {**old.get("runs", {}), **settings}
    return {**figures, "machine": host, "runs": runs}


def section(name: str, result: dict, settings: dict) -> str:
    """One benchmark's part of benchmarks.md: its rows (kept for merging), checks, notes, profile."""
    lines = [f"<!-- bench:{name} {json.dumps(result['rows'])} -->", f"### {name}", "",
             f"Run {settings['date']}, " + ", ".join(f"{key} {value}" for key, value in settings.items() if key != "date")
             + ".", ""]
    lines += [f"- {entry['benchmark']}: {entry['check']}" for entry in result["rows"] if entry["check"]]
    lines += [f"- {note}" for note in result["notes"]]
    for entry in result["rows"]:
        if entry["met"] is False:
            gap = f"ratio {entry['ratio']:.1f}x" if entry["ratio"] is not None else "no ratio"
            lines += ["", f"**Target not met** ({entry['benchmark']}): {gap}, target {entry['target']}."]
    if result["profile"]:
        lines += ["", "Where ours spends its time (cProfile, one call, cumulative, this process only):", "", "```",
                  *result["profile"], "```"]
    return "\n".join(lines) + "\n<!-- /bench:" + name + " -->\n"


def render_markdown(sections: dict[str, str], host: dict) -> str:
    """benchmarks.md: machine, versions, the summary table over every section, then the sections."""
    rows = []
    for name in BENCHMARKS:
        if name in sections:
            rows += json.loads(SECTION.match(sections[name])["rows"])
    gpu = "" if host["gpu"] == "none" else f", GPU {host['gpu']}"
    return "\n".join([
        "# Benchmarks", "",
        "Generated by `uv run --extra bench python tests/benchmarks/suite.py` (figures also in",
        "`metrics/bench.json`). Ours and the reference run side by side in one process; times are",
        "medians over repeats. Ratios count (> 1: ours is faster); absolute times depend on the machine.", "",
        f"Machine: {host['cpu']}, {host['cores']} cores ({host['usable_cores']} usable){gpu}; "
        f"{host['platform']}; Python {host['python']}, torch {host['torch']}, numpy {host['numpy']}, "
        f"OpenCV {host['opencv']}, cleval {host['cleval']}; last run {host['date']}.", "",
        markdown_table(rows), "", "## Details", "",
        *(sections[name] for name in BENCHMARKS if name in sections)])


def write_outputs(results: dict[str, dict], settings: dict[str, dict], json_path: Path, markdown_path: Path,
                  host: dict) -> None:
    """Merge the results into bench.json and benchmarks.md (each written atomically)."""
    old = json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else {}
    old_sections = {}
    if markdown_path.is_file():
        old_sections = {match["name"]: match[0] for match in SECTION.finditer(markdown_path.read_text(encoding="utf-8"))}
    sections = {**old_sections, **{name: section(name, result, settings[name]) for name, result in results.items()}}
    atomic_write_json(json_path, merged_json(old, results, settings, host))
    atomic_write_text(markdown_path, render_markdown(sections, host))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default: each benchmark's own)")
    parser.add_argument("--quick", action="store_true", help="small inputs and few repeats: a smoke run")
    parser.add_argument("--profile", choices=("tiny", "default", "here"), default="tiny",
                        help="params of the pipeline benchmark: tiny (1-2 min), default (the real sample, ~20 min), "
                             "or here (the real sample in this checkout, keeping its outputs)")
    parser.add_argument("--json", type=Path, default=ROOT / "metrics/bench.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "benchmarks.md")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}: choose from {', '.join(BENCHMARKS)}")
    if args.repeats is not None and args.repeats < 1:
        parser.error("--repeats must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    """Run the selected benchmarks in suite order, print the table, write the outputs."""
    args = parse_args(argv)
    names = [name for name in BENCHMARKS if name in (args.names or BENCHMARKS)]
    host = machine()
    results, settings = {}, {}
    for name in names:
        print(f"running {name} ...", flush=True)
        results[name] = run_benchmark(name, args.repeats, args.quick, args.profile)
        settings[name] = {"date": host["date"], "repeats": args.repeats or "default", "quick": args.quick,
                          **({"profile": "tiny" if args.quick else args.profile} if name == "pipeline" else {})}
    print(markdown_table([entry for result in results.values() for entry in result["rows"]]))
    write_outputs(results, settings, args.json, args.markdown, host)
    print(f"wrote {args.json} and {args.markdown}")


if __name__ == "__main__":
    main()
