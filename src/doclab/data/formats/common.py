"""What every detection reader returns, and the helpers they share (image listing, sizes, quads)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from doclab.data.formats.labels import IMAGE_SUFFIXES
from doclab.data.images import EXIF_ORIENTATION
from doclab.data.records import DataError, Rejection, Word

Annotation = tuple[tuple[int, int] | None, tuple[Word, ...]]  # ((img_w, img_h) or None, words), as read_ufo
SPLIT_NAMES = ("train", "val", "test")


@dataclass
class Dataset:
    """A detection set as read from disk.

    Attributes:
        images: {image path relative to the source's image folder (posix): annotation}, in a stable order.
        splits: {image path: 'train' | 'val' | 'test'} for the images of a set that ships its own split.
        rejected: images whose whole annotation was rejected (already reported: not again as unannotated).
    """

    images: dict[str, Annotation] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)

    def add(self, other: Dataset) -> None:
        """Merge another part of the same set (e.g. its test folder) into this one."""
        self.images.update(other.images)
        self.splits.update(other.splits)
        self.rejected.update(other.rejected)


# read(images, annotations or None, problems) -> Dataset: the signature of every detection reader.
Reader = Callable[[Path, Path | None, list[Rejection]], Dataset]


def image_files(folder: Path) -> list[str]:
    """Image files under `folder` (recursively), as sorted posix paths relative to it."""
    if not folder.is_dir():
        raise DataError(f"{folder}: image folder not found")
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def with_split(part: Dataset, prefix: str, split: str | None) -> Dataset:
    """`part`'s images renamed `<prefix>/<name>` and all assigned to `split` (None: the set has no split)."""
    images = {f"{prefix}/{name}": annotation for name, annotation in part.images.items()}
    return Dataset(images, dict.fromkeys(images, split) if split else {}, {f"{prefix}/{n}" for n in part.rejected})


def quad(values: list[float]) -> np.ndarray:
    """`[x1, y1, ..., x4, y4]` -> (4, 2) float64 points."""
    return np.asarray(values, dtype=np.float64).reshape(4, 2)


def rectangle(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """An axis-aligned box as a clockwise quad from its top-left corner."""
    return np.asarray([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def declared_size(width: object, height: object) -> tuple[int, int] | None:
    """(width, height) when an annotation file states both as positive numbers, else None (read from pixels)."""
    numbers = [v for v in (width, height) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0]
    return (int(width), int(height)) if len(numbers) == 2 else None


def upright_size(path: Path) -> tuple[int, int]:
    """(width, height) as viewers show the image (EXIF rotation applied), from the header only.

    Annotations without a declared size are taken to be in this frame (as preprocess does), so
    an importer writes it as img_w/img_h.
    """
    try:
        with Image.open(path) as image:  # lazy: reads the header, not the pixels
            width, height = image.size
            orientation = image.getexif().get(EXIF_ORIENTATION, 1)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError) as exc:
        raise DataError(f"{path}: unreadable image ({exc})") from None
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def split_folders(root: Path, folders: dict[str, str], read_part: Callable[[Path], Dataset]) -> Dataset:
    """A set shipped as one folder per split (`folders`: folder name -> split), or just one of those folders.

    Args:
        root: the set's root (holding the split folders) or a single split folder.
        folders: e.g. {"train": "train", "dev": "val", "test": "test"}.
        read_part: reads one split folder; names relative to it.
    Returns:
        The whole set, names prefixed with their split folder and the split recorded; a single
        split folder is read as it is, without a split.
    """
    found = [(name, split) for name, split in folders.items() if (root / name).is_dir()]
    if not found:
        return read_part(root)
    dataset = Dataset()
    for name, split in found:
        dataset.add(with_split(read_part(root / name), name, split))
    return dataset


def image_for(folder: Path, stem: str) -> str:
    """The image file named `stem` in `folder` (any image suffix), as a name relative to `folder`'s parent.

    When there is none, the name of the `.png` it should be, so the missing image is reported by name.
    """
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return f"{folder.name}/{candidate.name}"
    return f"{folder.name}/{stem}.png"


def json_files(folder: Path) -> list[Path]:
    """The per-image annotation files of a folder, sorted."""
    if not folder.is_dir():
        raise DataError(f"{folder}: annotation folder not found")
    return sorted(folder.glob("*.json"))


def collect_word(parse: Callable[[object, str], Word], raw: object, where: str, words: list[Word],
                 problems: list[Rejection]) -> None:
    """Append `parse(raw, where)` to `words`; a DataError becomes a rejection of that word (the rest of the
    file is kept, as a bad line of an ICDAR txt is)."""
    try:
        words.append(parse(raw, where))
    except DataError as exc:
        problems.append(Rejection(where, str(exc).removeprefix(f"{where}: ")))


def grouped_words(parse: Callable[[object, str], Word], path: Path, groups: list, name: str,
                  problems: list[Rejection]) -> list[Word]:
    """The words of `groups[i]["words"][j]` (CORD's valid_line, FUNSD's form), each parsed by `parse`;
    a group without a 'words' list or a bad word is a rejection naming `<name>[i]` (`.words[j]`)."""
    words: list[Word] = []
    for i, group in enumerate(groups):
        entries = group.get("words") if isinstance(group, dict) else None
        if not isinstance(entries, list):
            problems.append(Rejection(f"{path}: {name}[{i}]", "expected an object with a 'words' list"))
            continue
        for j, raw in enumerate(entries):
            collect_word(parse, raw, f"{path}: {name}[{i}].words[{j}]", words, problems)
    return words


def text_of(raw: dict, key: str, where: str) -> str | None:
    """An optional transcription field; empty text counts as unknown."""
    text = raw.get(key)
    if text is not None and not isinstance(text, str):
        raise DataError(f"{where}: '{key}' must be a string, got {text!r}")
    return text or None
