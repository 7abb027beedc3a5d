"""PPOCRLabel `Label.txt`: one line per image, `<path>\\t<JSON list>` of
`{"transcription": ..., "points": [[x, y], ...], "difficult": false}`.

PPOCRLabel writes paths as `<image folder name>/<file>` (relative to the folder above the one
holding Label.txt); `###` marks a don't-care region, as in PaddleOCR.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from doclab.data.formats.common import Dataset, collect_word, text_of
from doclab.data.formats.ufo import DONT_CARE, parse_points
from doclab.data.records import DataError, Rejection, Word

LABEL_FILE = "Label.txt"


def _word(raw: object, where: str) -> Word:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected an object with 'points' and 'transcription'")
    text = text_of(raw, "transcription", where)
    return Word(points=parse_points(raw.get("points"), where), text=text, ignore=text == DONT_CARE)


def _image_name(label_file: Path, images: Path, written: str) -> str | None:
    """The image a Label.txt path means, relative to `images`; None when it lies outside."""
    relative = written.replace("\\", "/")
    base = label_file.parent
    candidates = [base.parent / relative, base / relative, base / Path(relative).name]
    image = next((c for c in candidates if c.is_file()), candidates[0])
    # abspath, not resolve: a symlinked image folder (a DVC link, say) must not move outside `images`.
    image, root = Path(os.path.abspath(image)), Path(os.path.abspath(images))
    return image.relative_to(root).as_posix() if image.is_relative_to(root) else None


def _parse_words(payload: str, where: str, problems: list[Rejection]) -> tuple[Word, ...]:
    try:
        entries = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: malformed JSON after the tab ({exc.msg})") from None
    if not isinstance(entries, list):
        raise DataError(f"{where}: expected a JSON list of words after the tab")
    words: list[Word] = []
    for i, raw in enumerate(entries):
        collect_word(_word, raw, f"{where} word {i + 1}", words, problems)
    return tuple(words)


def _read_line(line: str, where: str, path: Path, images: Path, dataset: Dataset, problems: list[Rejection]) -> None:
    """Add one Label.txt line's image to `dataset`, or record why it cannot be."""
    written, tab, payload = line.partition("\t")
    if not tab or not written.strip():
        problems.append(Rejection(where, f"expected '<image path>\\t<JSON list of words>', got {line[:60]!r}"))
        return
    name = _image_name(path, images, written.strip())
    if name is None:
        problems.append(Rejection(where, f"image {written!r} is outside the image folder {images}"))
        return
    if name in dataset.images or name in dataset.rejected:
        problems.append(Rejection(where, f"image {written!r} listed again (kept the first line)"))
        return
    try:
        dataset.images[name] = (None, _parse_words(payload, where, problems))
    except DataError as exc:
        problems.append(Rejection(where, str(exc).removeprefix(f"{where}: ")))
        dataset.rejected.add(name)


def read_ppocrlabel(images: Path, annotations: Path | None, problems: list[Rejection]) -> Dataset:
    """A PPOCRLabel folder's Label.txt; a bad line is a rejection naming `Label.txt:<line>`.

    Args:
        images: the labelled image folder.
        annotations: the Label.txt file (None: `<images>/Label.txt`).
        problems: collects bad lines and words, images listed twice and paths outside `images`.
    """
    path = annotations if annotations is not None else images / LABEL_FILE
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    dataset = Dataset()
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if line.strip():
            _read_line(line, where, path, images, dataset, problems)
    return dataset
