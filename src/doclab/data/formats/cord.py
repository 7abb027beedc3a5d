"""CORD v2 receipts: `{train,dev,test}/json/<id>.json` + `{split}/image/<id>.png`.

Each JSON holds `valid_line[].words[]` with `quad` {x1..x4, y1..y4} and `text`, and
`meta.image_size` {width, height}.
"""
from __future__ import annotations

from pathlib import Path

from doclab.data.formats.common import (Dataset, declared_size, grouped_words, image_for, json_files, quad,
                                        split_folders, text_of)
from doclab.data.formats.ufo import load_json
from doclab.data.records import DataError, Rejection, Word

SPLITS = {"train": "train", "dev": "val", "test": "test"}
QUAD_KEYS = ("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4")


def _word(raw: object, where: str) -> Word:
    if not isinstance(raw, dict) or not isinstance(raw.get("quad"), dict):
        raise DataError(f"{where}: expected an object with a 'quad' {{x1..x4, y1..y4}}")
    values = [raw["quad"].get(key) for key in QUAD_KEYS]
    bad = [key for key, v in zip(QUAD_KEYS, values) if not isinstance(v, (int, float)) or isinstance(v, bool)]
    if bad:
        raise DataError(f"{where}: 'quad' needs numeric {', '.join(bad)}")
    return Word(points=quad(values), text=text_of(raw, "text", where))


def read_cord_json(path: Path, problems: list[Rejection]) -> tuple[tuple[int, int] | None, tuple[Word, ...]]:
    """One receipt's JSON -> (declared size or None, words); a bad word is a rejection naming file and word.

    Raises:
        DataError: malformed JSON (file and line) or no `valid_line` list.
    """
    doc = load_json(path)
    lines = doc.get("valid_line") if isinstance(doc, dict) else None
    if not isinstance(lines, list):
        raise DataError(f"{path}: expected an object with a 'valid_line' list (CORD v2)")
    words = grouped_words(_word, path, lines, "valid_line", problems)
    meta = doc.get("meta")
    size = meta.get("image_size") if isinstance(meta, dict) else None
    return (declared_size(size.get("width"), size.get("height")) if isinstance(size, dict) else None), tuple(words)


def read_cord(images: Path, annotations: Path | None, problems: list[Rejection]) -> Dataset:
    """CORD v2 from its root (train/dev/test kept as the split, dev as val) or from one split folder.

    Args:
        images: the CORD root, or one split folder holding `json/` and `image/`.
        annotations: must be None (the JSONs sit in the set's own `json/` folders).
        problems: collects the rejected words.
    """
    def read_part(folder: Path) -> Dataset:
        part = Dataset()
        for path in json_files(folder / "json"):
            part.images[image_for(folder / "image", path.stem)] = read_cord_json(path, problems)
        return part

    if annotations is not None:
        raise DataError(f"{annotations}: format 'cord' reads the JSONs in the set's own folders under {images}, "
                        "not an annotations path")
    return split_folders(images, SPLITS, read_part)
