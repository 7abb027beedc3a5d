"""Gather the items of every configured source (files only; pixels are read later, in workers)."""
from __future__ import annotations

from pathlib import Path

from doclab.config import SourceParams
from doclab.data.formats.icdar import annotation_file, read_icdar_txt
from doclab.data.formats.labels import IMAGE_SUFFIXES, read_image_folder, read_label_csv, read_meta
from doclab.data.formats.ufo import read_ufo
from doclab.data.records import DataError, Item, Rejection


def _image_files(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _labels(source: SourceParams, root: Path, problems: list[Rejection]) -> dict[str, str] | None:
    if not source.labels:
        return None
    meta = read_meta(root / source.meta) if source.meta else None
    labels, rejected = read_label_csv(root / source.labels, meta)
    problems.extend(rejected)
    return labels


def _detection_items(source: SourceParams, root: Path, problems: list[Rejection]) -> list[Item]:
    folder = root / source.images
    files = _image_files(folder)
    labels = _labels(source, root, problems)
    if source.format == "ufo":
        annotations = read_ufo(root / source.annotations, problems)
    else:
        if not (root / source.annotations).is_dir():
            raise DataError(f"{root / source.annotations}: annotation folder not found (data.sources {source.name})")
        annotations = {}
        for name in files:
            txt = annotation_file(root / source.annotations, name)
            if txt is not None:
                words, rejected = read_icdar_txt(txt)
                problems.extend(rejected)
                annotations[name] = (None, words)
    items = []
    for name, (size, words) in annotations.items():
        if not (folder / name).is_file():
            problems.append(Rejection(f"{source.name}/{name}", f"annotation for a missing image ({folder / name})"))
            continue
        label = labels.get(name) if labels is not None else None
        items.append(Item(id=f"{source.name}/{name}", source=source.name, path=folder / name,
                          words=words, label=label, size=size))
    for name in sorted(set(files) - set(annotations)):
        problems.append(Rejection(f"{source.name}/{name}", "image without annotation"))
    return items


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
        if source.format in ("ufo", "icdar"):
            items.extend(_detection_items(source, root, problems))
        else:
            items.extend(_classification_items(source, root, problems))
    return items, problems
