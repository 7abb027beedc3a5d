"""Benchmark: `dvc repro` wall time and peak resident memory per stage, end to end.

    uv run python tests/benchmarks/bench_pipeline.py [--profile tiny|default|here]

Copies the working tree into a temporary git + DVC repo (tests/dvc_repo.py `make_repo`) with
the tiny profile (tests/profiles/tiny.yaml, about 1-2 minutes on 2 cores) or the real
defaults (`default`, the full sample: about 20 minutes), then runs each stage alone in DAG
order (`dvc repro --single-item <stage>`) inside a small wrapper process. The wrapper times
the stage and reads `getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest resident set of the
`dvc` process and everything it ran (the stage, its DataLoader and pool workers), so each
stage gets its own peak. No reference and no target: these are the figures to watch.

`here` runs the stages in this checkout itself (default params) and keeps what they write: on a
fresh clone it regenerates the committed dvc.lock and metrics while timing them. Stages DVC finds
up to date take no time, so use it where the outputs are missing or stale.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import print_result, row

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for dvc_repo
from dvc_repo import dvc, env, make_repo  # noqa: E402

PROFILES = ("tiny", "default", "here")
ROOT = Path(__file__).resolve().parents[2]
# Runs in a fresh interpreter per stage, so RUSAGE_CHILDREN covers that stage alone.
WRAPPER = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run([sys.executable, "-m", "dvc", "repro", "--single-item", sys.argv[1]],
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"returncode": done.returncode, "wall_s": wall, "peak_rss_mb": peak / (2**20 if sys.platform == "darwin" else 2**10),
                  "stderr": done.stderr[-2000:]}))
"""


def stages_in_order(repo: Path) -> list[str]:
    """The repo's stages (matrix entries expanded) in dvc.yaml order, which lists dependencies first."""
    return dvc("stage", "list", "--name-only", cwd=repo).stdout.split()


def time_stage(repo: Path, stage: str) -> dict:
    """Run one stage alone; returns {"wall_s", "peak_rss_mb"}.

    Raises:
        RuntimeError: the stage failed (with the end of DVC's stderr).
    """
    done = subprocess.run([sys.executable, "-c", WRAPPER, stage], cwd=repo, env=env(), capture_output=True,
                          text=True, check=True)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["returncode"] != 0:
        raise RuntimeError(f"dvc repro --single-item {stage} failed:\n{figures['stderr']}")
    return {"wall_s": figures["wall_s"], "peak_rss_mb": figures["peak_rss_mb"]}


def run(repeats: int = 1, quick: bool = False, profile: str = "tiny") -> dict:
    """Every stage once, in a temporary clone (a rerun would hit DVC's run cache, so no repeats).

    Args:
        repeats: unused beyond the suite's common signature (one run per stage).
        quick: the tiny profile whatever `profile` says.
        profile: "tiny" (tests/profiles/tiny.yaml) or "default" (params.yaml as committed).
    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    if profile not in PROFILES:
        raise ValueError(f"pipeline profile {profile!r}: expected one of {', '.join(PROFILES)}")
    profile = "tiny" if quick else profile
    rows, metrics = [], {}
    with tempfile.TemporaryDirectory(prefix="doclab-bench-pipeline-") as folder:
        repo = ROOT if profile == "here" else make_repo(Path(folder) / "repo", None if profile == "tiny" else {})
        for stage in stages_in_order(repo):
            figures = time_stage(repo, stage)
            metrics.update({f"pipeline.{stage}.{key}": value for key, value in figures.items()})
            rows.append(row(f"pipeline ({profile}) {stage}", figures["wall_s"], None, "s", "-", None,
                            check=f"peak RSS {figures['peak_rss_mb']:.0f} MiB"))
    total = sum(value for key, value in metrics.items() if key.endswith(".wall_s"))
    metrics["pipeline.total.wall_s"] = total
    metrics["pipeline.total.peak_rss_mb"] = max(value for key, value in metrics.items() if key.endswith(".peak_rss_mb"))
    rows.append(row(f"pipeline ({profile}) total", total, None, "s", "-", None,
                    check=f"peak RSS {metrics['pipeline.total.peak_rss_mb']:.0f} MiB"))
    notes = [f"profile {profile}; peak RSS per stage includes the dvc process that runs it"]
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, default="tiny")
    args = parser.parse_args()
    print_result(run(profile=args.profile))


if __name__ == "__main__":
    main()
