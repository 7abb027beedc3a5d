"""ICDAR 2015 / SROIE text files: one `x1,y1,x2,y2,x3,y3,x4,y4[,text]` line per word, one file per image."""
from __future__ import annotations

from pathlib import Path

from doclab.data.formats.common import Dataset, Reader, image_files, quad, with_split
from doclab.data.formats.ufo import DONT_CARE
from doclab.data.records import DataError, Rejection, Word

# The sets' own folder layouts (image folder, annotation folder, split), found when no annotation folder is given.
LAYOUTS = {
    "sroie": (("img", "box", None),),  # SROIE as commonly redistributed (github ICDAR-2019-SROIE: img/ + box/)
    "icdar2015": (("ch4_training_images", "ch4_training_localization_transcription_gt", "train"),
                  ("ch4_test_images", "Challenge4_Test_Task1_GT", "test")),
}


def annotation_file(folder: Path, image_name: str) -> Path | None:
    """The annotation of an image: `<stem>.txt` or `<stem>.csv` (SROIE) or `gt_<stem>.txt` (ICDAR 2015)."""
    stem = Path(image_name).stem
    for candidate in (folder / f"{stem}.txt", folder / f"{stem}.csv", folder / f"gt_{stem}.txt"):
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
        words.append(Word(points=quad(coords), text=text, ignore=text == DONT_CARE))
    return tuple(words), problems


def _read_pairs(images: Path, annotations: Path, problems: list[Rejection]) -> Dataset:
    """Every image in `images` that has a txt/csv in `annotations` (images without one are left out)."""
    if not annotations.is_dir():
        raise DataError(f"{annotations}: annotation folder not found")
    dataset = Dataset()
    for name in image_files(images):
        txt = annotation_file(annotations, name)
        if txt is not None:
            words, rejected = read_icdar_txt(txt)
            problems.extend(rejected)
            dataset.images[name] = (None, words)
    return dataset


def icdar_reader(layout: str) -> Reader:
    """The reader of one flavour of txt annotations.

    Args:
        layout: 'icdar', 'sroie' or 'icdar2015' (a key of LAYOUTS, or none).
    Returns:
        read(images, annotations, problems): with `annotations`, an image folder + txt folder (the
        plain `icdar` format); without, the set's own layout under `images` when present (with
        its split), else the txt files beside the images.
    """
    def read(images: Path, annotations: Path | None, problems: list[Rejection]) -> Dataset:
        if annotations is not None:
            return _read_pairs(images, annotations, problems)
        found = [(i, a, split) for i, a, split in LAYOUTS.get(layout, ()) if (images / i).is_dir()]
        if not found:
            return _read_pairs(images, images, problems)
        dataset = Dataset()
        for image_dir, annotation_dir, split in found:
            part = _read_pairs(images / image_dir, images / annotation_dir, problems)
            dataset.add(with_split(part, image_dir, split))
        return dataset
    return read
