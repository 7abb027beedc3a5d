"""`doclab report`: rewrite the generated table of experiments.md from `dvc exp show --json`.

    rows = write_report(".", "experiments.md")

Params and metrics come from DVC; training times from the dvclive epoch-time plots, which are
committed to git (`cache: false`), so they are read from each experiment's commit with
`git show <rev>:<path>` (metrics files carry no timings, to stay byte-identical on reruns).
"""
from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

from doclab.experiments.noise import against_best
from doclab.experiments.report_table import (
    WORKSPACE,
    ExperimentRow,
    ReportError,
    experiment_rows,
    render_table,
    splice_table,
    sum_epoch_times,
)
from doclab.io import atomic_write_text

__all__ = ["ReportError", "exp_show", "training_seconds", "write_report"]

# dvclive folders of the training stages; their epoch times add up to an experiment's training time.
EPOCH_TIME_PATTERNS = (
    "dvclive/train_detector/plots/metrics/perf/epoch_time_s.tsv",
    "dvclive/train_classifier/*/plots/metrics/perf/epoch_time_s.tsv",
)
LIVE_ROOTS = ("dvclive/train_detector", "dvclive/train_classifier")


# `dvc exp show` has been seen waiting minutes on a lock just after queued experiments finished; a
# fresh call then answers at once. Each try is bounded, so a sweep or report never hangs on it.
EXP_SHOW_TIMEOUT_S = 120
EXP_SHOW_TRIES = 3
EXP_SHOW_RETRY_S = 2.0


def _run(cmd: list[str], repo: Path, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)


def _last_line(text: str) -> str:
    """The line that says what went wrong: DVC's last `ERROR:` line, else the last line but DVC's support banner."""
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("Having any troubles?")]
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1]


def check_project(repo: Path) -> None:
    """Fail with one line unless `repo` is a folder inside a git work tree that holds a dvc.yaml.

    Raises:
        FileNotFoundError: `repo` is not a folder.
        ReportError: not a git repository, or no dvc.yaml.
    """
    if not repo.is_dir():
        raise FileNotFoundError(f"{repo}: no such folder")
    if _run(["git", "rev-parse", "--is-inside-work-tree"], repo).returncode != 0:
        raise ReportError(f"{repo}: not a git repository (DVC experiments live in git: git init, then commit)")
    if not (repo / "dvc.yaml").is_file():
        raise ReportError(f"{repo}: no dvc.yaml, not a DVC pipeline")


def exp_show(repo: Path, all_commits: bool = False) -> list[dict]:
    """Parsed `dvc exp show --json` of `repo` (see `doclab.experiments.report_table` for its structure).

    Args:
        repo: the DVC project root.
        all_commits: also every commit's experiments (`-A`), not only HEAD's.
    Raises:
        ReportError: DVC failed on every one of EXP_SHOW_TRIES tries (its error line), did not answer in
            time, or printed something that is not JSON.
    """
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"] + (["--all-commits"] if all_commits else [])
    result = None
    for attempt in range(EXP_SHOW_TRIES):
        if attempt:
            time.sleep(EXP_SHOW_RETRY_S)
        try:
            result = _run(cmd, repo, EXP_SHOW_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            continue
        # A queue worker finishing an experiment at that moment can make one call fail: ask again.
        if result.returncode == 0:
            break
    if result is None:
        raise ReportError(f"{repo}: dvc exp show did not answer in {EXP_SHOW_TRIES} tries of {EXP_SHOW_TIMEOUT_S} s "
                          "(another dvc process holding its lock?)")
    if result.returncode != 0:
        raise ReportError(f"{repo}: dvc exp show failed: {_last_line(result.stderr or result.stdout)}")
    try:
        shown = json.loads(result.stdout)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{repo}: dvc exp show --json printed invalid JSON ({exc})") from None
    if not isinstance(shown, list):
        raise ReportError(f"{repo}: dvc exp show --json printed a {type(shown).__name__}, expected a list")
    return shown


def _epoch_time_files(repo: Path, rev: str) -> list[str]:
    """Paths (relative to `repo`) of the epoch-time TSVs in the workspace or in commit `rev`."""
    if rev == WORKSPACE:
        found = [path.relative_to(repo).as_posix() for pattern in EPOCH_TIME_PATTERNS for path in repo.glob(pattern)]
    else:
        listing = _run(["git", "ls-tree", "-r", "--name-only", rev, "--", *LIVE_ROOTS], repo)
        found = listing.stdout.splitlines() if listing.returncode == 0 else []
    return sorted(path for path in found if any(fnmatch.fnmatchcase(path, p) for p in EPOCH_TIME_PATTERNS))


def training_seconds(repo: Path, rev: str) -> float | None:
    """Summed epoch times of train_detector and every train_classifier/<member> stage.

    Args:
        repo: the DVC project root (may be a subfolder of the git work tree).
        rev: a commit sha, or 'workspace' for the files on disk.
    Returns:
        Seconds, or None when the revision holds no epoch-time record.
    Raises:
        ReportError: a record exists but cannot be read as numbers (names revision and file).
    """
    files = _epoch_time_files(repo, rev)
    if not files:
        return None
    total = 0.0
    for path in files:
        if rev == WORKSPACE:
            text, source = (repo / path).read_text(encoding="utf-8"), path
        else:
            shown = _run(["git", "show", f"{rev}:./{path}"], repo)  # './': relative to repo, not the git root
            if shown.returncode != 0:
                raise ReportError(f"{rev[:7]}:{path}: git show failed: {_last_line(shown.stderr)}")
            text, source = shown.stdout, f"{rev[:7]}:{path}"
        total += sum_epoch_times(text, source)
    return total


def _read_document(out: Path) -> str | None:
    if not out.exists():
        return None
    try:
        return out.read_bytes().decode("utf-8")  # bytes, so line endings survive untranslated
    except UnicodeDecodeError as exc:
        raise ReportError(f"{out}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def write_report(repo: str | Path, out: str | Path, all_commits: bool = False) -> list[ExperimentRow]:
    """Regenerate the table between the report markers of `out`; text outside them is kept byte for byte.

    Rows with per-image validation results are marked against the best of them (`val vs best`):
    'within noise' when the paired bootstrap cannot tell them apart.

    `out` is created (title, table, a '## Notes' heading) when missing, and not rewritten when
    the table is unchanged.

    Args:
        repo: the DVC project root (a git work tree with dvc.yaml).
        out: the Markdown file, normally `<repo>/experiments.md`.
        all_commits: include experiments of every commit (`dvc exp show -A`).
    Returns:
        The table's rows.
    Raises:
        FileNotFoundError, ReportError: one line naming the repository or file and the problem.
    """
    repo, out = Path(repo).resolve(), Path(out)  # resolved: errors name the real folder, not '.'
    check_project(repo)
    shown = exp_show(repo, all_commits)
    rows = experiment_rows(shown, lambda rev: training_seconds(repo, rev))
    marks = against_best(str(repo), {row.name: row.rev for row in rows if row.rev})
    rows = [replace(row, noise=marks.get(row.name, {}).get("verdict")) for row in rows]
    document = _read_document(out)
    updated = splice_table(document, render_table(rows), str(out))
    if updated != document:
        atomic_write_text(out, updated)
    return rows
