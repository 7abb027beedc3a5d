"""labelme: one JSON per image with `shapes[]` (`shape_type` polygon or rectangle, `points`, `label`),
`imagePath` (relative to the JSON) and `imageWidth` / `imageHeight`.

The label is taken as the word's transcription, `###` marking a don't-care region.
"""
from __future__ import annotations

import os
from pathlib import Path

from doclab.data.formats.common import Dataset, collect_word, declared_size, rectangle, text_of
from doclab.data.formats.ufo import DONT_CARE, load_json, parse_points
from doclab.data.records import DataError, Rejection, Word

TEXT_SHAPES = ("polygon", "rectangle")


def _word(raw: object, where: str) -> Word:
    if not isinstance(raw, dict):
        raise DataError(f"{where}: expected an object with 'points'")
    kind = raw.get("shape_type") or "polygon"  # labelme before 3.x wrote no shape_type: polygons
    if kind not in TEXT_SHAPES:
        raise DataError(f"{where}: shape_type {kind!r} is not a text region (expected polygon or rectangle)")
    points = parse_points(raw.get("points"), where)
    if kind == "rectangle":
        if len(points) != 2:
            raise DataError(f"{where}: a rectangle needs 2 points (opposite corners), got {len(points)}")
        (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
        points = rectangle(x0, y0, x1, y1)
    text = text_of(raw, "label", where)
    return Word(points=points, text=text, ignore=text == DONT_CARE)


def read_labelme_json(path: Path, images: Path, problems: list[Rejection]) -> tuple[str, tuple]:
    """One labelme file -> (image name relative to `images`, (declared size or None, words)).

    Raises:
        DataError: malformed JSON (file and line), no `shapes` list, or an `imagePath` that is
            missing or outside `images`.
    """
    doc = load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise DataError(f"{path}: expected an object with a 'shapes' list (labelme)")
    image_path = doc.get("imagePath")
    if not isinstance(image_path, str) or not image_path:
        raise DataError(f"{path}: 'imagePath' must name the image file")
    # labelme writes imagePath relative to the JSON, with the separators of the OS that saved it.
    image, root = Path(os.path.abspath(path.parent / image_path.replace("\\", "/"))), Path(os.path.abspath(images))
    if not image.is_relative_to(root):
        raise DataError(f"{path}: 'imagePath' {image_path!r} points outside the image folder {images}")
    words: list[Word] = []
    for i, raw in enumerate(doc["shapes"]):
        collect_word(_word, raw, f"{path}: shapes[{i}]", words, problems)
    size = declared_size(doc.get("imageWidth"), doc.get("imageHeight"))
    return image.relative_to(root).as_posix(), (size, tuple(words))


def read_labelme(images: Path, annotations: Path | None, problems: list[Rejection]) -> Dataset:
    """Every labelme JSON under `annotations` (default: beside the images, labelme's own habit).

    Args:
        images: the image folder; each JSON's imagePath must lie inside it.
        annotations: folder searched recursively for `*.json` (None: `images`).
        problems: collects the rejected shapes and images annotated twice.
    """
    folder = annotations if annotations is not None else images
    if not folder.is_dir():
        raise DataError(f"{folder}: annotation folder not found")
    dataset = Dataset()
    for path in sorted(folder.rglob("*.json")):
        name, annotation = read_labelme_json(path, images, problems)
        if name in dataset.images:
            problems.append(Rejection(str(path), f"annotates {name!r} again (kept the first file)"))
            continue
        dataset.images[name] = annotation
    return dataset
