"""Plain records shared by every reader: words with polygons, labelled images, and errors."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from doclab.errors import DataError  # noqa: F401  (re-exported: the data layer raises it)


@dataclass(frozen=True)
class Word:
    """One annotated text region.

    Attributes:
        points: (N, 2) float64 polygon in image pixels, N >= 3 (quads clockwise from top-left).
        text: transcription if known.
        ignore: don't-care region ('###' or illegible): masked in training, not scored.
    """

    points: np.ndarray
    text: str | None = None
    ignore: bool = False


@dataclass(frozen=True)
class Item:
    """One input image with whatever annotation its source provides.

    Attributes:
        id: unique key `<source>/<path relative to the source's image folder>`.
        source: name of the source it came from (kept so users can filter by origin).
        path: image file on disk; None for generated images (see `image`).
        words: word polygons (None = this item has no detection annotation).
        label: document type (None = no classification label).
        size: (width, height) declared by the annotation, checked against the pixels.
        image: in-memory RGB pixels for generated items.
    """

    id: str
    source: str
    path: Path | None = None
    words: tuple[Word, ...] | None = None
    label: str | None = None
    size: tuple[int, int] | None = None
    image: np.ndarray | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Rejection:
    """An item (or part of it) that failed validation."""

    item: str
    reason: str

    def line(self) -> str:
        return f"{self.item}: {self.reason}"
