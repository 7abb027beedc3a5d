"""Classification labels: CSV `ID,target` (+ optional meta.csv `target,class_name`) and ImageFolder."""
from __future__ import annotations

import csv
from pathlib import Path

from doclab.data.records import DataError, Rejection

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def _read_rows(path: Path, header: tuple[str, str]) -> list[tuple[int, list[str]]]:
    """Rows of a two-column CSV with a required header, as (line number, fields).

    Strict quoting: an unclosed quote would otherwise swallow every later row into one field.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f, strict=True)
            rows: list[tuple[int, list[str]]] = []
            try:
                for row in reader:
                    rows.append((reader.line_num, row))
            except csv.Error as exc:
                start = rows[-1][0] + 1 if rows else 1
                raise DataError(f"{path}: line {start}: malformed CSV ({exc})") from None
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: malformed CSV ({exc})") from None
    if not rows or [c.strip() for c in rows[0][1][:2]] != list(header):
        raise DataError(f"{path}: line 1: expected the header '{','.join(header)}'")
    return [(line, row) for line, row in rows[1:] if any(c.strip() for c in row)]


def read_meta(path: Path) -> dict[str, str]:
    """meta.csv: {target value: class name}."""
    mapping: dict[str, str] = {}
    for line, row in _read_rows(path, ("target", "class_name")):
        if len(row) != 2 or not row[1].strip():
            raise DataError(f"{path}: line {line}: expected 'target,class_name', got {','.join(row)!r}")
        if row[0].strip() in mapping:
            raise DataError(f"{path}: line {line}: target {row[0].strip()!r} listed twice")
        mapping[row[0].strip()] = row[1].strip()
    return mapping


def read_label_csv(path: Path, meta: dict[str, str] | None) -> tuple[dict[str, str], list[Rejection]]:
    """Labels CSV `ID,target` -> ({image file: class name}, problems).

    Args:
        path: the CSV file.
        meta: target -> class name; when given, a target not in it is an unknown label.
    Returns:
        Labels by image file name, and the rows rejected (bad row, duplicate ID, unknown label).
    """
    labels: dict[str, str] = {}
    problems = []
    for line, row in _read_rows(path, ("ID", "target")):
        where = f"{path}:{line}"
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            problems.append(Rejection(where, f"expected 'ID,target', got {','.join(row)!r}"))
            continue
        image_id, target = row[0].strip(), row[1].strip()
        if image_id in labels:
            problems.append(Rejection(where, f"duplicate ID {image_id!r}"))
            continue
        if meta is not None and target not in meta:
            known = ", ".join(sorted(meta)[:20])
            problems.append(Rejection(where, f"unknown label {target!r} for {image_id!r} (meta.csv has: {known})"))
            continue
        labels[image_id] = meta[target] if meta is not None else target
    return labels, problems


def read_image_folder(root: Path) -> tuple[dict[str, str], list[Rejection]]:
    """ImageFolder `root/<class>/<image>` -> ({'<class>/<image>': class}, problems)."""
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    labels, problems = {}, []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        files = sorted(p for p in class_dir.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            problems.append(Rejection(str(class_dir), f"class {class_dir.name!r} has no images"))
        for file in files:
            labels[file.relative_to(root).as_posix()] = class_dir.name
    return labels, problems
