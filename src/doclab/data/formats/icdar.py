"""ICDAR 2015 / SROIE text files: one `x1,y1,x2,y2,x3,y3,x4,y4[,text]` line per word."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from doclab.data.formats.ufo import DONT_CARE
from doclab.data.records import DataError, Rejection, Word


def annotation_file(folder: Path, image_name: str) -> Path | None:
    """The txt for an image: `<stem>.txt` (SROIE) or `gt_<stem>.txt` (ICDAR 2015)."""
    stem = Path(image_name).stem
    for candidate in (folder / f"{stem}.txt", folder / f"gt_{stem}.txt"):
        if candidate.is_file():
            return candidate
    return None


def read_icdar_txt(path: Path) -> tuple[tuple[Word, ...], list[Rejection]]:
    """Parse one annotation file.

    Text may itself contain commas (SROIE), so only the first 8 fields are coordinates.

    Args:
        path: the txt file (UTF-8, BOM allowed).
    Returns:
        (words, rejected lines naming `file:line`).
    """
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    words, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            coords = [float(v) for v in fields[:8]]
            if len(coords) < 8:
                raise ValueError
        except ValueError:
            problems.append(Rejection(f"{path}:{number}", f"expected 'x1,y1,...,x4,y4[,text]', got {line[:60]!r}"))
            continue
        text = ",".join(fields[8:]).strip() if len(fields) > 8 else None
        points = np.asarray(coords, dtype=np.float64).reshape(4, 2)
        words.append(Word(points=points, text=text, ignore=text == DONT_CARE))
    return tuple(words), problems
