"""UFO JSON, the competition's detection format.

    {"images": {"<file>": {"img_w": W, "img_h": H,
                           "words": {"<id>": {"points": [[x, y], ...], "transcription": "..."}}}}}
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from doclab.data.records import DataError, Rejection, Word
from doclab.io import read_json

DONT_CARE = "###"


def load_json(path: Path, problems: list[Rejection] | None = None) -> object:
    """`doclab.io.read_json`; with `problems`, a duplicate key is recorded there (first kept) instead of raised."""
    if problems is None:
        return read_json(path)
    return read_json(path, on_duplicate=lambda message: problems.append(
        Rejection(str(path), f"duplicate id {message} (kept the first occurrence)")))


def parse_points(raw: object, where: str) -> np.ndarray:
    """A JSON list of [x, y] pairs -> (N, 2) float64; DataError naming `where` otherwise."""
    if not isinstance(raw, list) or not raw:
        raise DataError(f"{where}: 'points' must be a non-empty list of [x, y] pairs")
    try:
        points = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: 'points' must be a list of numeric [x, y] pairs") from None
    if points.ndim != 2 or points.shape[1] != 2:
        raise DataError(f"{where}: 'points' must be a list of [x, y] pairs, got shape {points.shape}")
    return points


def _parse_word(raw: object, where: str) -> Word:
    if not isinstance(raw, dict) or "points" not in raw:
        raise DataError(f"{where}: each word must be an object with 'points'")
    text = raw.get("transcription")
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: 'transcription' must be a string")
    ignore = bool(raw.get("illegibility", False)) or text == DONT_CARE
    return Word(points=parse_points(raw["points"], where), text=text, ignore=ignore)


def _parse_size(entry: dict, where: str) -> tuple[int, int] | None:
    if "img_w" not in entry and "img_h" not in entry:
        return None
    width, height = entry.get("img_w"), entry.get("img_h")
    for key, value in (("img_w", width), ("img_h", height)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
            raise DataError(f"{where}: '{key}' must be a positive number, got {value!r}")
    return int(width), int(height)


def read_ufo(path: str | Path, problems: list[Rejection] | None = None
             ) -> dict[str, tuple[tuple[int, int] | None, tuple[Word, ...]]]:
    """Read a UFO JSON file.

    Geometry is not judged here (3-point or NaN polygons are returned as they are): the
    preprocess validator and the metric each apply their own rules.

    Args:
        path: the JSON file.
        problems: collects duplicate image/word ids (first kept); None makes them errors.
    Returns:
        {image file name: ((img_w, img_h) or None, words)} in file order.
    Raises:
        DataError: malformed JSON or structure, naming the file, image and word id.
    """
    path = Path(path)
    doc = load_json(path, problems)
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), dict):
        raise DataError(f"{path}: expected an object with an 'images' mapping (UFO JSON)")
    images = {}
    for name, entry in doc["images"].items():
        where = f"{path}: image {name!r}"
        if not isinstance(entry, dict):
            raise DataError(f"{where}: expected an object with 'words'")
        words = entry.get("words", {})
        if not isinstance(words, dict):
            raise DataError(f"{where}: 'words' must be a mapping of word id -> word")
        parsed = tuple(_parse_word(w, f"{where} word {wid!r}") for wid, w in words.items())
        images[name] = (_parse_size(entry, where), parsed)
    return images


def ufo_document(images: dict[str, dict]) -> dict:
    """Wrap per-image entries as a UFO document (`{"images": ...}`)."""
    return {"images": images}


def ufo_image_entry(width: int, height: int, words: list[Word], extra: dict | None = None,
                    scores: list[float] | None = None) -> dict:
    """One image's UFO entry with word ids 0001, 0002, ... (extra keys are kept alongside)."""
    out = {}
    for i, word in enumerate(words):
        entry = {"points": [[round(float(x), 2), round(float(y), 2)] for x, y in word.points]}
        if word.text is not None:
            entry["transcription"] = word.text
        if word.ignore:
            entry["illegibility"] = True
        if scores is not None:
            entry["score"] = round(float(scores[i]), 4)
        out[f"{i + 1:04d}"] = entry
    return {"img_w": int(width), "img_h": int(height), "words": out, **(extra or {})}
