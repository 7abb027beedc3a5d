"""Per-image work of the preprocess stage, run in a process pool: read, validate, resize, write."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from doclab.data.images import exif_point_transform, read_image
from doclab.data.polygons import check_polygon
from doclab.data.records import DataError, Item, Rejection, Word


@dataclass(frozen=True)
class WorkerSettings:
    out_images: Path
    max_side: int
    jpeg_quality: int
    min_word_side: float
    seed: int
    synthetic_long_side: int
    synthetic_granularity: str = "word"


@dataclass
class Processed:
    """What a worker sends back: small metadata only (the pixels are already on disk)."""

    id: str
    source: str
    label: str | None = None
    width: int = 0
    height: int = 0
    source_size: tuple[int, int] = (0, 0)  # (width, height) of the source image, upright, before resizing
    words: tuple[Word, ...] | None = None
    ok: bool = True
    problems: list[Rejection] = field(default_factory=list)
    notes: list[Rejection] = field(default_factory=list)

    @property
    def key(self) -> str:
        """Path of the written image under `images/`, also its key in the outputs."""
        return processed_key(self.id)


def processed_key(item_id: str) -> str:
    """Every image is stored as JPEG: `src/a.png` -> `src/a.jpg`."""
    return Path(item_id).with_suffix(".jpg").as_posix()


def _synthetic_item(item: Item, settings: WorkerSettings) -> tuple[Item, np.ndarray]:
    from doclab.data.synthetic.generator import generate_document

    index = int(Path(item.id).stem.rsplit("_", 1)[1])
    doc = generate_document(settings.seed, index, long_side=settings.synthetic_long_side,
                            granularity=settings.synthetic_granularity)
    words = tuple(Word(points=w.points.astype(np.float64), text=w.text) for w in doc.words)
    return Item(id=item.id, source=item.source, words=words, label=doc.doc_type), doc.image


def _annotation_frame(item: Item, orientation: int, stored: tuple[int, int], upright: tuple[int, int]):
    """How to bring annotation points into the decoded upright frame.

    Annotations are taken to be in the upright (EXIF-applied) frame, as viewers show the image,
    unless their declared img_w/img_h match only the stored frame of a rotated JPEG.
    Returns (transform or None, annotation frame size) or raises DataError on a size mismatch.
    """
    declared = item.size
    transposed = orientation in (5, 6, 7, 8)
    if declared is None or declared == upright:
        return None, upright
    if transposed and declared == stored:
        return exif_point_transform(orientation, *stored), upright
    same_aspect = abs(declared[0] / declared[1] - upright[0] / upright[1]) < 0.01 * upright[0] / upright[1]
    if same_aspect:
        return None, declared
    raise DataError(f"annotation size {declared[0]}x{declared[1]} does not match the image "
                    f"({upright[0]}x{upright[1]} upright)")


def _clean_words(item: Item, words: tuple[Word, ...], scale: tuple[float, float], transform, size, min_side):
    kept, problems, notes = [], [], []
    for index, word in enumerate(words):
        points = word.points if transform is None else transform(word.points)
        points = points * np.asarray(scale)
        # Degenerate means degenerate in the source image: words that only become thin
        # through downscaling are kept (the training targets ignore too-small text).
        clean, message = check_polygon(points, size[0], size[1], min_side * min(scale), scale)
        where = f"{item.id} word {index + 1}"
        if clean is None:
            problems.append(Rejection(where, message))
            continue
        if message:
            notes.append(Rejection(where, message))
        kept.append(Word(points=np.round(clean, 2), text=word.text, ignore=word.ignore))
    return tuple(kept), problems, notes


def process_item(item: Item, settings: WorkerSettings) -> Processed:
    """Read (or generate), validate, resize and write one image.

    Args:
        item: what a source listed (`path` None for generated items).
        settings: output folder and preprocess params.
    Returns:
        Metadata with scaled words; `ok` False when the image itself is unusable.
    """
    try:
        if item.path is None:
            item, pixels = _synthetic_item(item, settings)
            orientation, stored = 1, (pixels.shape[1], pixels.shape[0])
        else:
            pixels, orientation, stored = read_image(item.path, settings.max_side)
        upright = stored[::-1] if orientation in (5, 6, 7, 8) else stored
        transform, frame = _annotation_frame(item, orientation, stored, upright) if item.words is not None else (None, upright)
    except DataError as exc:
        message = str(exc).removeprefix(f"{item.path}: ")
        return Processed(item.id, item.source, ok=False, problems=[Rejection(item.id, message)])
    height, width = pixels.shape[:2]
    # Size from the full-resolution frame, not the decoded pixels: a JPEG decoded at 1/s rounds its
    # sides up, which would make the output size (and the word scale) depend on the reduction.
    ratio = min(1.0, settings.max_side / max(upright))
    out_w, out_h = max(1, round(upright[0] * ratio)), max(1, round(upright[1] * ratio))
    if (out_w, out_h) != (width, height):
        pixels = cv2.resize(pixels, (out_w, out_h), interpolation=cv2.INTER_AREA)
    result = Processed(item.id, item.source, label=item.label, width=out_w, height=out_h,
                       source_size=(int(upright[0]), int(upright[1])))
    if item.words is not None:
        scale = (out_w / frame[0], out_h / frame[1])
        result.words, result.problems, result.notes = _clean_words(
            item, item.words, scale, transform, (out_w, out_h), settings.min_word_side)
    target = settings.out_images / processed_key(item.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    encoded = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, settings.jpeg_quality])[1]
    target.write_bytes(encoded.tobytes())
    return result
