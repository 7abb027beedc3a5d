"""Format name -> detection reader: the one table `data.sources` and `doclab import` both read through.

Every reader is `read(images, annotations, problems) -> Dataset`: `images` is the folder the
image names are relative to (for CORD, FUNSD and the ICDAR 2015 / SROIE layouts, the set's
root), `annotations` the file or folder the format needs (None: the format's own default).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from doclab.data.formats.common import Dataset, Reader, image_files
from doclab.data.formats.cord import read_cord
from doclab.data.formats.funsd import read_funsd
from doclab.data.formats.icdar import icdar_reader
from doclab.data.formats.labelme import read_labelme
from doclab.data.formats.ppocrlabel import read_ppocrlabel
from doclab.data.formats.ufo import read_ufo
from doclab.data.records import DataError, Rejection


def _read_ufo(images: Path, annotations: Path | None, problems: list[Rejection]) -> Dataset:
    if annotations is None:
        raise DataError(f"{images}: format 'ufo' needs its annotations JSON file")
    return Dataset(read_ufo(annotations, problems))


READERS: dict[str, Reader] = {
    "ufo": _read_ufo,
    "icdar": icdar_reader("icdar"),
    "sroie": icdar_reader("sroie"),
    "icdar2015": icdar_reader("icdar2015"),
    "cord": read_cord,
    "funsd": read_funsd,
    "labelme": read_labelme,
    "ppocrlabel": read_ppocrlabel,
}
DETECTION_FORMATS = tuple(READERS)
# Image folders a tool writes inside the labelled folder that are not part of the set.
NOT_THE_SET = {"ppocrlabel": ("crop_img/",)}  # PPOCRLabel's exported word crops (recognition data)
IMPORT_FORMATS = tuple(name for name in READERS if name != "ufo")  # UFO already is the target


def read_dataset(fmt: str, images: Path, annotations: Path | None, problems: list[Rejection],
                 label: Callable[[str], str] = str) -> Dataset:
    """Read a detection set and pair it with the image files on disk.

    Args:
        fmt: a name in READERS.
        images: the image folder (or the set's root).
        annotations: annotation file/folder, None for the format's default.
        problems: collects bad lines and words, annotations of missing images, images without annotation.
        label: how a problem names an image (e.g. with its source name in front).
    Returns:
        The annotated images that exist on disk, with the set's own split where it has one.
    Raises:
        DataError: a missing folder or file, or a malformed annotation file (names file and line).
    """
    if fmt not in READERS:
        raise DataError(f"unknown annotation format {fmt!r}, expected one of {', '.join(READERS)}")
    files = [name for name in image_files(images) if not name.startswith(NOT_THE_SET.get(fmt, ()))]
    dataset = READERS[fmt](images, annotations, problems)
    for name in list(dataset.images):
        if not (images / name).is_file():
            problems.append(Rejection(label(name), f"annotation for a missing image ({images / name})"))
            del dataset.images[name]
            dataset.splits.pop(name, None)
    for name in sorted(set(files) - set(dataset.images) - dataset.rejected):
        problems.append(Rejection(label(name), "image without annotation"))
    return dataset
