"""FUNSD forms: `{training_data,testing_data}/annotations/<id>.json` + `.../images/<id>.png`.

Each JSON holds `form[]` entities whose `words[]` carry `box` [x0, y0, x1, y1] and `text`.
"""
from __future__ import annotations

import math
from pathlib import Path

from doclab.data.formats.common import Dataset, grouped_words, image_for, json_files, rectangle, split_folders, text_of
from doclab.data.formats.ufo import load_json
from doclab.data.records import DataError, Rejection, Word

SPLITS = {"training_data": "train", "testing_data": "test"}


def _word(raw: object, where: str) -> Word:
    box = raw.get("box") if isinstance(raw, dict) else None
    if not (isinstance(box, list) and len(box) == 4 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in box)):
        raise DataError(f"{where}: 'box' must be [x0, y0, x1, y1] numbers, got {box!r}")
    x0, y0, x1, y1 = box
    return Word(points=rectangle(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), text=text_of(raw, "text", where))


def read_funsd_json(path: Path, problems: list[Rejection]) -> tuple[None, tuple[Word, ...]]:
    """One form's JSON -> (None, words); a bad word is a rejection naming file and word.

    Raises:
        DataError: malformed JSON (file and line) or no `form` list.
    """
    doc = load_json(path)
    form = doc.get("form") if isinstance(doc, dict) else None
    if not isinstance(form, list):
        raise DataError(f"{path}: expected an object with a 'form' list (FUNSD)")
    return None, tuple(grouped_words(_word, path, form, "form", problems))


def read_funsd(images: Path, annotations: Path | None, problems: list[Rejection]) -> Dataset:
    """FUNSD from its `dataset/` root (training_data -> train, testing_data -> test) or one of those folders.

    Args:
        images: the folder holding training_data/ and testing_data/, or one of them.
        annotations: must be None (the JSONs sit in the set's own `annotations/` folders).
        problems: collects the rejected words.
    """
    def read_part(folder: Path) -> Dataset:
        part = Dataset()
        for path in json_files(folder / "annotations"):
            part.images[image_for(folder / "images", path.stem)] = read_funsd_json(path, problems)
        return part

    if annotations is not None:
        raise DataError(f"{annotations}: format 'funsd' reads the JSONs in the set's own folders under {images}, "
                        "not an annotations path")
    return split_folders(images, SPLITS, read_part)
