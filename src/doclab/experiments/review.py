"""`doclab compare A B --md DIR`: one Markdown review of B against A, for a PR comment or a reviewer.

    comparison = compare_experiments(".", ["main"], ["exp-a1b2c"])
    write_review(".", comparison, Path("review"))   # review/review.md + review/images/*.jpg

The report holds, in order: both sides' revisions, the params.yaml keys that differ, every metric
with its paired-bootstrap interval and verdict (and the run spread of a side with several runs),
the detection images whose H-mean moved most with A | B overlays (`review_images`), and the
change of the classification confusion matrix. Image links are relative (`images/<name>.jpg`).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import yaml

from doclab.experiments.compare import Comparison, TaskRuns
from doclab.experiments.review_images import cell, moved_section
from doclab.experiments.revisions import CompareError, RevisionFiles, Revisions
from doclab.io import atomic_directory, atomic_write_text, staged_outputs

PARAMS_FILE = "params.yaml"
REVIEW_FILE = "review.md"
IMAGES_DIR = "images"
MISSING = "—"  # a params key one revision lacks


def write_review(root: str | Path, comparison: Comparison, out_dir: str | Path, count: int = 4) -> Path:
    """Write `out_dir/review.md` and its pictures in `out_dir/images/`, all together or not at all.

    Only those two entries of `out_dir` are replaced (it may be a folder holding other things, even
    the project root); `images/` is replaced whole, so a rerun leaves no stale picture.

    Args:
        root: the DVC project the comparison was made in (params and pictures are read from it).
        comparison: `compare_experiments`'s result.
        out_dir: the report's folder (created when missing).
        count: images per list of the most improved / most degraded.
    Returns:
        The path of review.md.
    Raises:
        CompareError: a revision no longer resolves. Missing pictures' files only give a note.
    """
    out_dir = Path(out_dir)
    with Revisions(root) as revisions:
        a = [revisions.open(rev) for rev in comparison.a]
        b = [revisions.open(rev) for rev in comparison.b]
        with staged_outputs(), atomic_directory(out_dir / IMAGES_DIR) as images:
            sections = [_head(comparison, a, b), params_section(a, b), metrics_section(comparison)]
            if "detection" in comparison.tasks:
                sections.append(moved_section(comparison, a[0], b[0], images, count))
            if "classification" in comparison.tasks:
                sections.append(confusion_section(comparison.tasks["classification"]))
            atomic_write_text(out_dir / REVIEW_FILE, "\n".join(line for s in sections for line in s).rstrip() + "\n")
    return out_dir / REVIEW_FILE


def _side(files: Sequence[RevisionFiles]) -> str:
    """'`main` (`1a2b3c4`)', several joined, the workspace without a sha."""
    named = ", ".join(f"`{f.rev}`" + ("" if f.sha == "workspace" else f" (`{f.sha[:7]}`)") for f in files)
    return named + (f": {len(files)} runs, per-image results averaged" if len(files) > 1 else "")


def _head(comparison: Comparison, a: Sequence[RevisionFiles], b: Sequence[RevisionFiles]) -> list[str]:
    images = ", ".join(f"{len(runs.images)} {task} images" for task, runs in comparison.tasks.items())
    return [f"## doclab review: B against A ({comparison.split})", "",
            f"- **A**: {_side(a)}", f"- **B**: {_side(b)}", f"- {comparison.split} split: {images}", ""]


def flatten(tree: object, prefix: str = "") -> dict[str, object]:
    """Nested params as dotted keys ({"a": {"b": 1}} -> {"a.b": 1}); lists and scalars are leaves."""
    if not isinstance(tree, dict) or (prefix and not tree):
        return {prefix: tree} if prefix else {}
    flat: dict[str, object] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return flat


def _value_text(value: object) -> str:
    """A params value as YAML spells it (true, null, [1, 2]) rather than Python's repr."""
    return value if isinstance(value, str) else json.dumps(value)


def _read_params(files: RevisionFiles, notes: list[str]) -> dict[str, object]:
    """A revision's flattened params.yaml; {} and a note when it is absent or not YAML (the report goes on)."""
    try:
        return flatten(yaml.safe_load(files.read_bytes(PARAMS_FILE)) or {})
    except CompareError as exc:
        notes.append(f"{exc}")
    except yaml.YAMLError as exc:
        notes.append(f"{files.rev}: {PARAMS_FILE}: not valid YAML ({str(exc).splitlines()[0]})")
    return {}


def _side_values(params: list[dict[str, object]], key: str) -> str:
    """One side's value of `key`: one value when its runs agree, else each run's (seeds), in run order."""
    values = [_value_text(p[key]) if key in p else MISSING for p in params]
    return values[0] if len(set(values)) == 1 else ", ".join(values)


def params_section(a: Sequence[RevisionFiles], b: Sequence[RevisionFiles]) -> list[str]:
    """The `| param | A | B |` table of the params.yaml keys whose values differ between the sides.

    Args:
        a, b: each side's revisions.
    Returns:
        Markdown lines; "No params differ." when every key agrees.
    """
    notes: list[str] = []
    sides = [[_read_params(files, notes) for files in side] for side in (a, b)]
    keys = sorted({key for side in sides for params in side for key in params})
    rows = [(key, _side_values(sides[0], key), _side_values(sides[1], key)) for key in keys]
    changed = [row for row in rows if row[1] != row[2]]
    lines = ["### Params", ""] + [f"Note: {note}" for note in notes] + ([""] if notes else [])
    if not changed:
        return lines + ["No params differ.", ""]
    lines += ["| param | A | B |", "|---|---|---|"]
    lines += [f"| `{cell(key)}` | {cell(value_a)} | {cell(value_b)} |" for key, value_a, value_b in changed]
    return lines + [""]


def _verdict(verdict: str) -> str:
    return f"**{verdict}**" if verdict in ("better", "worse") else verdict


def metrics_section(comparison: Comparison) -> list[str]:
    """The metric table with intervals and verdicts, then each side's run spread when it has several runs."""
    images = " and ".join(f"{len(runs.images)} {task}" for task, runs in comparison.tasks.items())
    lines = ["### Metrics", "",
             (f"B − A with its 95% interval from a paired bootstrap over the {images} images "
              f"({comparison.resamples} resamples, seed {comparison.seed}); **better** / **worse** when the "
              "interval excludes 0."), "",
             "| metric | A | B | B − A | 95% interval | verdict |", "|---|---:|---:|---:|---|---|"]
    for name, row in comparison.metrics.items():
        low, high = row["ci95"]
        lines.append(f"| {name} | {row['a']:.4f} | {row['b']:.4f} | {row['diff']:+.4f} | "
                     f"[{low:+.4f}, {high:+.4f}] | {_verdict(row['verdict'])} |")
    spread = {name: row for name, row in comparison.metrics.items() if "a_runs" in row}
    if spread:
        lines += ["", ("Run spread: each run's own value, mean ± sd [min, max] over a side's runs (the interval "
                       "above is over the images of the averaged runs)."), "",
                  f"| metric | A ({_runs(len(comparison.a))}) | B ({_runs(len(comparison.b))}) |", "|---|---:|---:|"]
        lines += [f"| {name} | {_spread(row['a_runs'])} | {_spread(row['b_runs'])} |" for name, row in spread.items()]
    return lines + [""]


def _runs(count: int) -> str:
    return f"{count} run" + ("s" if count != 1 else "")


def _spread(values: Sequence[float]) -> str:
    runs = np.asarray(values, dtype=np.float64)
    sd = runs.std(ddof=1) if len(runs) > 1 else 0.0
    return f"{runs.mean():.4f} ± {sd:.4f} [{runs.min():.4f}, {runs.max():.4f}]"


def confusion_counts(runs: Sequence[Sequence[dict]], classes: Sequence[str]) -> np.ndarray:
    """(true, predicted) counts of classification rows, averaged over a side's runs.

    Args:
        runs: per revision, rows {"label", "predicted", ...}.
        classes: the row and column order.
    Returns:
        (len(classes), len(classes)) float64 counts (fractional when runs disagree).
    """
    index = {name: i for i, name in enumerate(classes)}
    counts = np.zeros((len(runs), len(classes), len(classes)))
    for run, rows in enumerate(runs):
        for row in rows:
            counts[run, index[row["label"]], index[row["predicted"]]] += 1
    return counts.mean(axis=0)


def _count(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.2f}"


def confusion_section(runs: TaskRuns) -> list[str]:
    """The B − A change of the confusion matrix, shown only on the classes whose counts changed.

    Returns:
        Markdown lines: rows are true classes, columns predicted ones, each changed cell
        "B − A (A → B)"; "Unchanged." when every count is the same.
    """
    classes = list(runs.a[0][0]["probabilities"])
    # A label outside the probabilities' classes would be a malformed file; keep it rather than fail.
    classes += sorted({row[k] for side in (runs.a, runs.b) for rows in side for row in rows
                       for k in ("label", "predicted")} - set(classes))
    a, b = confusion_counts(runs.a, classes), confusion_counts(runs.b, classes)
    change = b - a
    averaged = len(runs.a) > 1 or len(runs.b) > 1
    lines = ["### Confusion-matrix change", "",
             f"(true, predicted) counts over {len(runs.images)} images"
             + (f", each side's averaged over its runs (A {len(runs.a)}, B {len(runs.b)})" if averaged else "")
             + ". Cells: B − A (A → B); rows true class, columns predicted; zero changes blank.", ""]
    rows_changed = [i for i in range(len(classes)) if np.any(change[i] != 0)]
    columns_changed = [j for j in range(len(classes)) if np.any(change[:, j] != 0)]
    if not rows_changed:
        return lines[:2] + [(f"Unchanged: every (true, predicted) count of the {len(runs.images)} images is the "
                             "same on both sides."), ""]
    lines += ["| true \\ predicted | " + " | ".join(cell(classes[j]) for j in columns_changed) + " |",
              "|---|" + "---:|" * len(columns_changed)]
    for i in rows_changed:
        cells = [f"{'+' if change[i, j] > 0 else ''}{_count(change[i, j])} ({_count(a[i, j])} → {_count(b[i, j])})"
                 if change[i, j] else "" for j in columns_changed]
        lines.append(f"| {cell(classes[i])} | " + " | ".join(cells) + " |")
    return lines + [""]
