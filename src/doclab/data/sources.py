"""Gather the items of every configured source (files only; pixels are read later, in workers)."""
from __future__ import annotations

from pathlib import Path

from doclab.config import SourceParams
from doclab.data.formats.labels import read_image_folder, read_label_csv, read_meta
from doclab.data.formats.registry import DETECTION_FORMATS, read_dataset
from doclab.data.records import Item, Rejection


def _labels(source: SourceParams, root: Path, problems: list[Rejection]) -> dict[str, str] | None:
    if not source.labels:
        return None
    meta = read_meta(root / source.meta) if source.meta else None
    labels, rejected = read_label_csv(root / source.labels, meta)
    problems.extend(rejected)
    return labels


def _detection_items(source: SourceParams, root: Path, problems: list[Rejection]) -> list[Item]:
    folder = root / source.images
    annotations = root / source.annotations if source.annotations else None
    labels = _labels(source, root, problems)
    dataset = read_dataset(source.format, folder, annotations, problems, label=lambda name: f"{source.name}/{name}")
    return [Item(id=f"{source.name}/{name}", source=source.name, path=folder / name, words=words,
                 label=labels.get(name) if labels is not None else None, size=size)
            for name, (size, words) in dataset.images.items()]


def _classification_items(source: SourceParams, root: Path, problems: list[Rejection]) -> list[Item]:
    folder = root / source.images
    if source.format == "imagefolder":
        labels, rejected = read_image_folder(folder)
        problems.extend(rejected)
    else:
        labels = _labels(source, root, problems)
    items = []
    for name, label in labels.items():
        if not (folder / name).is_file():
            problems.append(Rejection(f"{source.name}/{name}", f"label for a missing image ({folder / name})"))
            continue
        items.append(Item(id=f"{source.name}/{name}", source=source.name, path=folder / name, label=label))
    return items


def collect_items(sources: tuple[SourceParams, ...], root: Path) -> tuple[list[Item], list[Rejection]]:
    """All items of all sources, in a stable order, and the problems found reading annotations.

    Args:
        sources: `data.sources` from params.
        root: folder that relative source paths start from (the repository root).
    Returns:
        (items, problems). Items keep their origin in `source` and in their id prefix.
    Raises:
        DataError: a missing annotation file/folder or a malformed JSON/CSV (names file and line).
    """
    items: list[Item] = []
    problems: list[Rejection] = []
    for source in sources:
        if source.format in DETECTION_FORMATS:
            items.extend(_detection_items(source, root, problems))
        else:
            items.extend(_classification_items(source, root, problems))
    return items, problems
