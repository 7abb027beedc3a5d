"""`doclab import`: a public set in its own format -> a UFO folder (images/, annotations.json, splits.json).

The same readers serve `data.sources`; importing is for users who want the set as plain UFO
(to look at, share, or merge), with the set's own split written as a split file.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doclab.data.formats.common import SPLIT_NAMES, Dataset, upright_size
from doclab.data.formats.registry import read_dataset
from doclab.data.formats.ufo import ufo_document, ufo_image_entry
from doclab.data.records import DataError, Rejection
from doclab.io import atomic_directory, atomic_write_json

SHOWN_PROBLEMS = 8


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote: counts for the one-line report, and the problems it skipped."""

    images: int
    words: int
    dont_care: int
    splits: dict[str, int]
    copied: int
    skipped: list[Rejection]


def _check_folders(src: Path, dst: Path) -> None:
    """DST replaces a folder wholesale: never the source, nothing around it, nor a folder of something else."""
    source, target = src.resolve(), dst.resolve()
    if target == source or target.is_relative_to(source) or source.is_relative_to(target):
        raise DataError(f"{dst}: the output folder must lie outside the source {src} (and not contain it)")
    if target.is_file() or (target.is_dir() and any(target.iterdir()) and not (target / "annotations.json").is_file()):
        raise DataError(f"{dst}: exists and is not an earlier import (no annotations.json): choose a new folder")


def _finite_words(dataset: Dataset, problems: list[Rejection]) -> None:
    """JSON has no NaN: a word with NaN/inf coordinates (possible in a txt line) is a problem, not a crash."""
    for name, (size, words) in dataset.images.items():
        bad = [i for i, word in enumerate(words) if not np.isfinite(word.points).all()]
        problems.extend(Rejection(f"{name} word {i + 1}", "NaN or infinite coordinates") for i in bad)
        dataset.images[name] = (size, tuple(w for i, w in enumerate(words) if i not in bad))


def _place(source: Path, target: Path) -> bool:
    """Hard-link `source` to `target` (no extra disk space); copy where links cannot be made. True if copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
        return False
    except OSError:  # another file system, or one without hard links
        shutil.copy2(source, target)
        return True


def _fail(problems: list[Rejection]) -> None:
    shown = "; ".join(p.line() for p in problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    raise DataError(f"{len(problems)} bad input(s): {shown}{more} "
                    "(fix them, or pass --on-bad skip to drop them and list them in rejected.json)")


def import_dataset(fmt: str, src: Path, dst: Path, annotations: Path | None = None,
                   on_bad: str = "error") -> ImportSummary:
    """Convert a set to a UFO folder, written whole or not at all.

    Args:
        fmt: a name in `registry.IMPORT_FORMATS`.
        src: the set's root or image folder (what a `data.sources` entry's `images` would be).
        dst: output folder: images/ (hard links or copies), annotations.json, splits.json when the
            set has its own split, rejected.json when problems were skipped.
        annotations: the annotation file/folder where the format needs one outside `src`.
        on_bad: 'error' stops on the first problems (nothing written); 'skip' drops them.
    Returns:
        The counts written and the problems skipped.
    Raises:
        DataError: bad input (with on_bad 'error'), or an unsafe output folder (one line).
    """
    _check_folders(src, dst)
    problems: list[Rejection] = []
    dataset = read_dataset(fmt, src, annotations, problems, label=lambda name: str(src / name))
    if not dataset.images and not problems:
        raise DataError(f"{src}: no annotated images found (is it the {fmt} layout? README: Public sets)")
    _finite_words(dataset, problems)
    if problems and on_bad == "error":
        _fail(problems)
    entries, copied = {}, 0
    with atomic_directory(dst) as tmp:
        for name, (size, words) in dataset.images.items():
            width, height = size or upright_size(src / name)
            copied += _place(src / name, tmp / "images" / name)
            entries[name] = ufo_image_entry(width, height, list(words))
        atomic_write_json(tmp / "annotations.json", ufo_document(entries))
        splits = {s: sorted(n for n, split in dataset.splits.items() if split == s) for s in SPLIT_NAMES}
        if dataset.splits:
            atomic_write_json(tmp / "splits.json", {**splits, "note": f"the {fmt} set's own split (doclab import)"})
        if problems:
            rejected = [{"item": p.item, "reason": p.reason} for p in problems]
            atomic_write_json(tmp / "rejected.json", {"rejected": rejected})
    words = [w for _, ws in dataset.images.values() for w in ws]
    counts = {s: len(names) for s, names in splits.items()} if dataset.splits else {}
    return ImportSummary(len(entries), len(words), sum(w.ignore for w in words), counts, copied, problems)
