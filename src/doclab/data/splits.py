"""Seeded, stratified train/val/test splits, honouring an explicit split file."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from doclab.data.formats.ufo import load_json
from doclab.data.records import DataError

SPLITS = ("train", "val", "test")


def _by_name(ids) -> dict[str, list[str]]:
    by_name = defaultdict(list)
    for item_id in ids:
        by_name[item_id.split("/", 1)[-1]].append(item_id)
    return by_name


def read_split_file(path: Path, ids: list[str], dropped: set[str] = frozenset()) -> dict[str, str]:
    """{id: split} from a JSON `{"train": [...], "val": [...], "test": [...]}` file.

    Entries may be full ids (`source/file`) or bare file names when those are unambiguous;
    non-list keys (notes) are ignored.

    Args:
        path: the split file.
        ids: ids of the usable (preprocessed) images.
        dropped: ids rejected by validation (`data.on_bad: skip`): entries naming them are left out
            instead of failing as unknown.
    Raises:
        DataError: an unknown or ambiguous entry, or an image listed in two splits.
    """
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise DataError(f"{path}: expected an object with 'train'/'val'/'test' lists")
    by_name, dropped_by_name = _by_name(ids), _by_name(dropped)
    assigned: dict[str, str] = {}
    for split in SPLITS:
        entries = doc.get(split, [])
        if not isinstance(entries, list):
            raise DataError(f"{path}: '{split}' must be a list of image ids")
        for entry in entries:
            entry = Path(str(entry)).with_suffix(".jpg").as_posix()
            matches = [entry] if entry in ids else by_name.get(entry, [])
            if not matches and (entry in dropped or entry in dropped_by_name):
                continue
            if len(matches) != 1:
                why = "is not among the preprocessed images" if not matches else "is ambiguous across sources"
                raise DataError(f"{path}: '{split}' entry {entry!r} {why}")
            if assigned.get(matches[0], split) != split:
                raise DataError(f"{path}: {entry!r} is listed in both '{assigned[matches[0]]}' and '{split}'")
            assigned[matches[0]] = split
    return assigned


def _quotas(sizes: dict[str, int], wanted: int) -> dict[str, int]:
    """Per-group counts summing to `wanted`, proportional to the group sizes.

    Rounding per group would give small groups nothing at all (2 images x 0.15 -> 0), so the
    total is fixed first and shared out by largest remainder, ties going to larger groups.
    """
    total = sum(sizes.values())
    exact = {group: n * wanted / total if total else 0.0 for group, n in sizes.items()}
    quota = {group: int(value) for group, value in exact.items()}
    by_remainder = sorted(sizes, key=lambda g: (-(exact[g] - quota[g]), -sizes[g], g))
    for group in by_remainder[:max(wanted - sum(quota.values()), 0)]:
        quota[group] += 1
    return quota


def _count(total: int, fraction: float) -> int:
    """round(total * fraction), but at least one item when the fraction asks for any and train keeps one."""
    return min(max(int(round(total * fraction)), 1 if fraction > 0 and total >= 3 else 0), total)


def _split_groups(by_group: dict[str, list[str]], val: float, test: float,
                  rng: np.random.Generator) -> dict[str, str]:
    sizes = {group: len(ids) for group, ids in by_group.items()}
    total = sum(sizes.values())
    n_test = _quotas(sizes, _count(total, test))
    left = {group: sizes[group] - n_test[group] for group in sizes}
    n_val = _quotas(left, min(_count(total, val), sum(left.values())))
    assigned = {}
    for group in sorted(by_group):
        ids = by_group[group]
        order = [ids[i] for i in rng.permutation(len(ids))]
        cut_val = n_test[group] + n_val[group]
        assigned.update({item: "test" if i < n_test[group] else "val" if i < cut_val else "train"
                         for i, item in enumerate(order)})
    return assigned


def assign_splits(groups: dict[str, str], val: float, test: float, seed: int,
                  explicit: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Split ids so every group (document type, or source when unlabelled) is spread evenly.

    Args:
        groups: {id: stratification group}.
        val, test: fractions of each group.
        seed: RNG seed (same seed and ids -> same split).
        explicit: {id: split} that wins over the random assignment; when it leaves `val`
            empty, `val` is carved out of its train part with the same stratification.
    Returns:
        {"train": [...], "val": [...], "test": [...]} with sorted ids.
    """
    rng = np.random.default_rng(seed)
    explicit = explicit or {}
    assigned = dict(explicit)
    by_group = defaultdict(list)
    for item_id in sorted(groups):
        if item_id not in explicit:
            by_group[groups[item_id]].append(item_id)
    assigned.update(_split_groups(by_group, val, test, rng))
    if val > 0 and explicit and not any(s == "val" for s in assigned.values()):
        train_by_group = defaultdict(list)
        for item_id in sorted(assigned):
            if assigned[item_id] == "train":
                train_by_group[groups[item_id]].append(item_id)
        assigned.update(_split_groups(train_by_group, val, 0.0, rng))
    return {split: sorted(i for i, s in assigned.items() if s == split) for split in SPLITS}
