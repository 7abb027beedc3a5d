"""The "images that moved most" section of `doclab compare --md`: side-by-side overlays of A and B.

    lines = moved_section(comparison, a_files, b_files, out / "images", count=4)

Each picture is one JPEG: A's overlay on the left, B's on the right (GT green, detections red), drawn
from each side's first revision: its `models/submission/detection.csv` (test split only) and its
`data/processed` images and annotations, read from git/DVC like the results are.
"""
from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from doclab.data.formats.ufo import read_ufo
from doclab.errors import DataError
from doclab.experiments.compare import Comparison, moved_images
from doclab.experiments.revisions import CompareError, RevisionFiles
from doclab.plots.overlay import draw_overlay

SUBMISSION = "models/submission/detection.csv"  # the evaluate stage's, test split only
PROCESSED = "data/processed"
MAX_PAIR_WIDTH = 1000  # px: a PR comment column is about that wide
JPEG_QUALITY = 80
GAP = 8  # px of white between the two panels


@dataclass(frozen=True)
class SideImages:
    """What one side's pictures are drawn from.

    Attributes:
        files: the side's first revision.
        detections: image key -> detected polygons (N, 2), in processed-image pixels.
        ground_truth: image key -> (GT polygons, don't-care flags).
    """

    files: RevisionFiles
    detections: dict[str, list[np.ndarray]]
    ground_truth: dict[str, tuple[list[np.ndarray], list[bool]]]


def parse_submission(text: str, where: str) -> dict[str, list[np.ndarray]]:
    """The submission CSV's polygons by image key.

    Args:
        text: `filename,polygons` CSV; polygons are "x y x y ..." joined by "|" (an empty field: none).
        where: names the file in errors.
    Returns:
        {image key: [(N, 2) float64 polygon, ...]}.
    Raises:
        CompareError: a malformed header or row (naming the line).
    """
    lines = text.splitlines()
    if not lines or lines[0].strip() != "filename,polygons":
        raise CompareError(f"{where}: expected the header 'filename,polygons'")
    found: dict[str, list[np.ndarray]] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        # Split at the last comma: polygons never hold one, a file name might.
        key, _, field = line.rpartition(",")
        try:
            coords = [np.array(p.split(), dtype=np.float64) for p in field.split("|") if p.strip()]
            found[key] = [c.reshape(-1, 2) for c in coords]
        except ValueError:
            raise CompareError(f"{where}: line {number}: polygons must be 'x y x y ...' joined by '|'") from None
    return found


def _annotations(files: RevisionFiles) -> dict[str, tuple[list[np.ndarray], list[bool]]]:
    """The side's processed GT; read_ufo reads a path, so the bytes go through a temp file."""
    path = f"{PROCESSED}/annotations.json"
    data = files.read_bytes(path)
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / "annotations.json"
        local.write_bytes(data)
        try:
            images = read_ufo(local)
        except DataError as exc:  # name the revision's file, not the temp copy
            raise CompareError(f"{files.rev}: {path}: {str(exc).replace(str(local) + ': ', '')}") from None
    return {key: ([w.points for w in words], [w.ignore for w in words]) for key, (_, words) in images.items()}


def load_side(files: RevisionFiles) -> SideImages:
    """Read a side's detections and GT once (the annotations file holds every image).

    Raises:
        CompareError: a file absent, unreadable (no DVC cache) or malformed.
    """
    try:
        text = files.read_bytes(SUBMISSION).decode("utf-8")
    except UnicodeDecodeError:
        raise CompareError(f"{files.rev}: {SUBMISSION}: not UTF-8 text") from None
    return SideImages(files, parse_submission(text, f"{files.rev}: {SUBMISSION}"), _annotations(files))


def _panel(side: SideImages, key: str, caption: str) -> np.ndarray:
    """One side's overlay of `key`; CompareError when its image, GT or detections are missing."""
    path = f"{PROCESSED}/images/{key}"
    image = cv2.imdecode(np.frombuffer(side.files.read_bytes(path), np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise CompareError(f"{side.files.rev}: {path}: not a decodable image")
    for name, table in (("annotations.json", side.ground_truth), (SUBMISSION, side.detections)):
        if key not in table:
            raise CompareError(f"{side.files.rev}: {key}: not in {name}")
    polygons, ignore = side.ground_truth[key]
    return draw_overlay(image, polygons, ignore, side.detections[key], caption)


def pair_jpeg(left: np.ndarray, right: np.ndarray) -> bytes:
    """Two panels side by side at one height, at most MAX_PAIR_WIDTH wide, as JPEG bytes.

    The sides may have preprocessed the image to different sizes, so each is scaled to the smaller
    height first; shrinking uses INTER_AREA (no aliasing of the thin polygon lines).
    """
    height = min(left.shape[0], right.shape[0])
    panels = [cv2.resize(p, (max(1, round(p.shape[1] * height / p.shape[0])), height), interpolation=cv2.INTER_AREA)
              if p.shape[0] != height else p for p in (left, right)]
    gap = np.full((height, GAP, 3), 255, np.uint8)
    pair = np.hstack([panels[0], gap, panels[1]])
    if pair.shape[1] > MAX_PAIR_WIDTH:
        scale = MAX_PAIR_WIDTH / pair.shape[1]
        pair = cv2.resize(pair, (MAX_PAIR_WIDTH, max(1, round(height * scale))), interpolation=cv2.INTER_AREA)
    # Full-resolution colour (4:4:4): with the default 4:2:0 a 1 px red or green line fades to grey-brown.
    ok, encoded = cv2.imencode(".jpg", pair, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                                              cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise CompareError("cannot encode a review picture as JPEG")
    return encoded.tobytes()


def picture_name(kind: str, rank: int, key: str) -> str:
    """A file name for one picture: keys hold '/' and maybe spaces; the rank keeps flattened keys apart."""
    stem = key.rsplit(".", 1)[0] if "." in key.rsplit("/", 1)[-1] else key
    return f"{kind}_{rank:02d}_{re.sub(r'[^A-Za-z0-9._-]+', '_', stem)}.jpg"


def cell(text: str) -> str:
    """`text` as a Markdown table cell: a '|' would end it early."""
    return str(text).replace("|", "\\|")


def _picture(sides: tuple[SideImages, SideImages] | None, key: str, path: Path, runs_hmean: tuple[float, float]
             ) -> str:
    """Write one pair picture; its Markdown image, or why there is none (one image's problem spares the rest)."""
    if sides is None:
        return ""
    try:
        panels = [_panel(side, key, f"{label} {side.files.rev}: hmean {value:.3f}")
                  for side, label, value in zip(sides, "AB", runs_hmean)]
        path.write_bytes(pair_jpeg(*panels))  # inside the report's temp folder: it lands with review.md
    except DataError as exc:
        return f"(no picture: {cell(exc)})"
    alt = re.sub(r"([\[\]\\])", r"\\\1", key)
    return f"![{alt}: A left, B right](images/{path.name})"


def _first_run_hmean(comparison: Comparison, key: str) -> tuple[float, float]:
    """Each side's first revision's H-mean of `key`: the run its picture shows (the table's are averaged)."""
    runs = comparison.tasks["detection"]
    index = runs.images.index(key)
    return runs.a[0][index]["hmean"], runs.b[0][index]["hmean"]


def _why_no_pictures(comparison: Comparison, a: RevisionFiles, b: RevisionFiles
                     ) -> tuple[tuple[SideImages, SideImages] | None, str]:
    """Both sides' picture sources, or None and the note saying why there are no pictures."""
    if comparison.split != "test":
        return None, (f"No pictures: detections are only saved for the test split ({SUBMISSION}, the evaluate "
                      f"stage's); these are {comparison.split} images.")
    try:
        return (load_side(a), load_side(b)), ""
    except DataError as exc:
        return None, f"No pictures: {exc}"


def moved_section(comparison: Comparison, a: RevisionFiles, b: RevisionFiles, images_dir: Path,
                  count: int) -> list[str]:
    """Markdown lines of the detection images whose H-mean rose and fell most, with their pictures.

    Args:
        comparison: has a "detection" task.
        a, b: each side's first revision (the one pictured).
        images_dir: an existing, empty folder; pictures are written there as `<kind>_<rank>_<key>.jpg`.
        count: images per list.
    Returns:
        The section's lines; a missing submission or DVC cache gives a note instead of pictures.
    """
    improved, degraded = moved_images(comparison.tasks["detection"], count)
    sides, note = _why_no_pictures(comparison, a, b)
    several = len(comparison.a) > 1 or len(comparison.b) > 1
    lines = ["### Images that moved most", "",
             note or (f"Left A ({a.rev}), right B ({b.rev}); GT green, don't-care grey, detections red."
                      + (" Pictures show each side's first run; the table's H-means average the runs."
                         if several else "")), ""]
    for kind, title, rows in (("improved", "Improved (B above A)", improved),
                              ("degraded", "Degraded (B below A)", degraded)):
        lines += [f"#### {title}", ""]
        if not rows:
            lines += ["None.", ""]
            continue
        # The numbers first, then the pictures under the table: a 1000 px picture inside a cell
        # would make GitHub scroll the whole table sideways.
        lines += ["| # | image | A H-mean | B H-mean | B − A |", "|---:|---|---:|---:|---:|"]
        pictures = []
        for rank, (key, hmean_a, hmean_b) in enumerate(rows, start=1):
            lines.append(f"| {rank} | `{cell(key)}` | {hmean_a:.4f} | {hmean_b:.4f} | {hmean_b - hmean_a:+.4f} |")
            picture = _picture(sides, key, images_dir / picture_name(kind, rank, key),
                               _first_run_hmean(comparison, key))
            if picture:
                pictures += [f"**{rank}.** `{key}` {picture}", ""]
        lines += ["", *pictures]
    return lines
