"""Built-in synthetic document generator: realistic pages with word- or line-level polygons.

Each document is drawn flat at its final resolution with real fonts, then
photographed: placed on a background with rotation and perspective, lit,
blurred, noised and JPEG-compressed at random. Word boxes are the ink extents of
each word, warped with exactly the page's homography so they keep hugging the
glyphs; line boxes are the union of a printed line's word boxes. Output depends only on
(seed, index, doc_type, long_side, granularity), and the pixels not on the granularity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from doclab.data.synthetic.canvas import Color, PageCanvas, accent_color, tint
from doclab.data.synthetic.form import render_form
from doclab.data.synthetic.id_card import render_id_card
from doclab.data.synthetic.invoice import render_invoice
from doclab.data.synthetic.letter import render_letter
from doclab.data.synthetic.photo import page_homography, paper_texture, photograph_effects, place_page, warp_boxes
from doclab.data.synthetic.receipt import render_receipt
from doclab.data.synthetic.report import render_table_report

DOC_TYPES: tuple[str, ...] = ("receipt", "invoice", "form", "letter", "id_card", "table_report")
GRANULARITIES: tuple[str, ...] = ("word", "line")
# Below this the fixed minimum font size no longer fits the layouts.
MIN_LONG_SIDE = 64


@dataclass(frozen=True, eq=False)
class SyntheticWord:
    """One annotated word (or line, with granularity "line").

    Attributes:
        points: (4, 2) float32 x, y pixel coordinates, clockwise from the box's top-left.
        text: the word (the line's words joined by spaces).
    """

    points: np.ndarray
    text: str


@dataclass(frozen=True, eq=False)
class SyntheticDocument:
    """One generated document image with its word annotations.

    Attributes:
        image: (H, W, 3) uint8 RGB image.
        words: every rendered word, in drawing order.
        doc_type: one of DOC_TYPES.
    """

    image: np.ndarray
    words: list[SyntheticWord]
    doc_type: str


@dataclass(frozen=True)
class TypeSpec:
    """How one document type is sized, printed and photographed.

    Attributes:
        render: layout function drawing the page.
        aspect: (min, max) width / height of the output image.
        page_fill: (min, max) page size as a fraction of the image before rotation.
        paper: returns the mean paper colour.
        max_rotation_deg: largest in-plane rotation of the page.
        max_skew: largest perspective corner shift, as a fraction of the page's long side.
    """

    render: Callable[[PageCanvas, np.random.Generator], None]
    aspect: tuple[float, float]
    page_fill: tuple[float, float]
    paper: Callable[[np.random.Generator], Color]
    max_rotation_deg: float
    max_skew: float


def _white_paper(rng: np.random.Generator) -> Color:
    """Office paper: near white with a slight warm or cool cast."""
    level = rng.uniform(232, 250)
    return tuple(int(round(level + shift)) for shift in rng.uniform(-4, 4, size=3))


def _card_stock(rng: np.random.Generator) -> Color:
    """Pastel card base colour."""
    return tint(accent_color(rng), rng.uniform(0.8, 0.9))


_TYPE_SPECS: dict[str, TypeSpec] = {
    "receipt": TypeSpec(render_receipt, (0.36, 0.5), (0.8, 0.94), _white_paper, 4.0, 0.02),
    "invoice": TypeSpec(render_invoice, (0.68, 0.74), (0.88, 0.97), _white_paper, 3.0, 0.015),
    "form": TypeSpec(render_form, (0.74, 0.8), (0.88, 0.97), _white_paper, 3.0, 0.015),
    "letter": TypeSpec(render_letter, (0.68, 0.74), (0.88, 0.97), _white_paper, 3.0, 0.015),
    "id_card": TypeSpec(render_id_card, (1.5, 1.68), (0.78, 0.92), _card_stock, 5.0, 0.03),
    "table_report": TypeSpec(render_table_report, (1.36, 1.46), (0.9, 0.97), _white_paper, 2.5, 0.012),
}


def generate_document(seed: int, index: int, doc_type: str | None = None, long_side: int = 1024,
                      granularity: str = "word") -> SyntheticDocument:
    """Generate one synthetic document image with word or line polygons.

    Deterministic: the same (seed, index, doc_type, long_side) gives byte-identical
    output in any run or process, because all randomness comes from one
    ``np.random.default_rng([seed, index])``.

    Args:
        seed: dataset seed (non-negative).
        index: document index within the dataset (non-negative).
        doc_type: one of DOC_TYPES, or None for ``DOC_TYPES[index % len(DOC_TYPES)]``
            so consecutive indices give balanced classes.
        long_side: length in pixels of the longer image side.
        granularity: "word" (one box per word) or "line" (one box per printed line or table cell,
            the unit line-level receipt sets such as SROIE annotate).

    Returns:
        The document.

    Raises:
        ValueError: if ``doc_type`` is not in DOC_TYPES, ``granularity`` not in GRANULARITIES or
            ``long_side`` is below MIN_LONG_SIDE.
    """
    if doc_type is None:
        doc_type = DOC_TYPES[index % len(DOC_TYPES)]
    if doc_type not in _TYPE_SPECS:
        raise ValueError(f"unknown doc_type {doc_type!r}; valid choices: {', '.join(DOC_TYPES)}")
    if granularity not in GRANULARITIES:
        raise ValueError(f"unknown granularity {granularity!r}; valid choices: {', '.join(GRANULARITIES)}")
    if long_side < MIN_LONG_SIDE:
        raise ValueError(f"long_side must be at least {MIN_LONG_SIDE}, got {long_side}")
    spec = _TYPE_SPECS[doc_type]
    rng = np.random.default_rng([seed, index])
    aspect = rng.uniform(*spec.aspect)
    image_size = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    fill = rng.uniform(*spec.page_fill)
    page_size = (round(image_size[0] * fill), round(image_size[1] * fill))
    canvas = PageCanvas(paper_texture(rng, page_size[1], page_size[0], spec.paper(rng)))
    spec.render(canvas, rng)
    homography = page_homography(rng, page_size, image_size, spec.max_rotation_deg, spec.max_skew)
    image = photograph_effects(rng, place_page(rng, canvas.image, canvas.outline_mask, homography, image_size))
    boxes, texts = canvas.line_boxes() if granularity == "line" else (canvas.word_boxes, canvas.word_texts)
    polygons = warp_boxes(boxes, homography, image_size)
    words = [SyntheticWord(points=points, text=text) for points, text in zip(polygons, texts)]
    return SyntheticDocument(image=image, words=words, doc_type=doc_type)
