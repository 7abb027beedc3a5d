"""Drawing surface for synthetic pages: fonts, word-annotated text and colours.

Text is drawn one word at a time so every word gets its own ink-tight box;
decorations drawn straight on ``PageCanvas.draw`` are never annotated.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]
Box = tuple[int, int, int, int]

FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
FONT_FILES = {
    "sans": "DejaVuSans.ttf",
    "sans_bold": "DejaVuSans-Bold.ttf",
    "sans_italic": "DejaVuSans-Oblique.ttf",
    "mono": "DejaVuSansMono.ttf",
    "mono_bold": "DejaVuSansMono-Bold.ttf",
    "serif": "DejaVuSerif.ttf",
    "serif_bold": "DejaVuSerif-Bold.ttf",
    "serif_italic": "DejaVuSerif-Italic.ttf",
}
# Smallest font size in pixels. Tiny pages (thumbnails) keep their layout with
# blob-like glyphs instead of overflowing with over-sized text.
MIN_FONT_PX = 4
ACCENT_COLORS: tuple[Color, ...] = (
    (24, 54, 120), (120, 24, 36), (20, 96, 60), (16, 100, 120), (90, 40, 120), (170, 80, 10),
)


@functools.lru_cache(maxsize=1024)
def load_font(file_name: str, size_px: int) -> ImageFont.FreeTypeFont:
    """Load a DejaVu font shipped with matplotlib, cached per (file, size).

    Args:
        file_name: file name inside matplotlib's ``fonts/ttf`` folder.
        size_px: em size in pixels.

    Returns:
        The loaded font.
    """
    return ImageFont.truetype(str(FONT_DIR / file_name), size_px)


def ink_color(rng: np.random.Generator) -> Color:
    """Return a dark printing-ink colour (near black, dark grey or dark blue)."""
    base = int(rng.integers(0, 60))
    if rng.random() < 0.2:
        return (base // 2, base // 2, base + 60)
    return (base, base, base)


def accent_color(rng: np.random.Generator) -> Color:
    """Return a saturated corporate accent colour dark enough to read on paper."""
    return ACCENT_COLORS[int(rng.integers(len(ACCENT_COLORS)))]


def tint(color: Color, amount: float) -> Color:
    """Blend ``color`` towards white.

    Args:
        color: RGB colour.
        amount: 0 keeps the colour, 1 gives white.

    Returns:
        The lighter colour.
    """
    return tuple(int(round(c + (255 - c) * amount)) for c in color)


class PageCanvas:
    """A page being drawn, plus the ink box and text of every annotated word.

    Attributes:
        image: the RGB page.
        draw: drawing context for decorations, which are not annotated.
        width, height: page size in pixels.
        unit: pixels per layout unit; a page's long side is 1000 units.
        outline_mask: optional "L" mask of the page's true outline (rounded
            ID cards); None means the whole rectangle is page.
        word_boxes: ink boxes (left, top, right, bottom) of annotated words.
        word_texts: the annotated words, parallel to ``word_boxes``.
        word_lines: per word, the index of the ``write`` call (one printed line or table cell)
            that drew it, so words can be merged into line boxes (see ``line_boxes``).
    """

    def __init__(self, paper: np.ndarray) -> None:
        """Start a page on a paper background.

        Args:
            paper: (H, W, 3) uint8 RGB paper texture.
        """
        self.image = Image.fromarray(paper)
        self.draw = ImageDraw.Draw(self.image)
        self.width, self.height = self.image.size
        self.unit = max(self.width, self.height) / 1000.0
        self.outline_mask: Image.Image | None = None
        self.word_boxes: list[Box] = []
        self.word_texts: list[str] = []
        self.word_lines: list[int] = []
        self._lines_written = 0

    def px(self, units: float) -> int:
        """Convert layout units to whole pixels (at least 1)."""
        return max(1, round(units * self.unit))

    def font(self, style: str, size: float) -> ImageFont.FreeTypeFont:
        """Return the font of ``style`` (a FONT_FILES key) at ``size`` layout units."""
        return load_font(FONT_FILES[style], max(MIN_FONT_PX, round(size * self.unit)))

    def fitted_font(self, style: str, size: float, text: str, max_width: float) -> ImageFont.FreeTypeFont:
        """Return the largest font up to ``size`` units whose rendering of ``text`` fits.

        Args:
            style: FONT_FILES key.
            size: preferred size in layout units.
            text: the line that has to fit.
            max_width: available width in pixels.

        Returns:
            The font, never smaller than MIN_FONT_PX.
        """
        return shrink_to_fit(self.font(style, size), text, max_width)

    def write(self, x: float, y: float, text: str, font: ImageFont.FreeTypeFont, fill: Color, align: str = "left") -> float:
        """Draw one line of text word by word, annotating each word.

        Args:
            x: left edge for ``align="left"``, centre for "center", right edge for "right".
            y: top of the line (ascender line).
            text: the line; words are separated by whitespace, leading whitespace indents.
            font: font to draw with.
            fill: RGB ink colour.
            align: "left", "center" or "right".

        Returns:
            The x coordinate of the right end of the line.
        """
        words = text.split()
        space = font.getlength(" ")
        indent = font.getlength(text[: len(text) - len(text.lstrip())])
        advances = [font.getlength(word) for word in words]
        total = indent + sum(advances) + space * max(0, len(words) - 1)
        start = {"left": x, "center": x - total / 2, "right": x - total}[align]
        cursor = start + indent
        for word, advance in zip(words, advances):
            self._write_word(round(cursor), round(y), word, font, fill)
            cursor += advance + space
        self._lines_written += 1
        return start + total

    def _write_word(self, x: int, y: int, word: str, font: ImageFont.FreeTypeFont, fill: Color) -> None:
        """Draw one word at (x, y) and record the box of its actual ink pixels."""
        mask, offset = font.getmask2(word, mode="L")
        ink = mask.getbbox()
        if ink is None:
            return
        box = (x + offset[0] + ink[0], y + offset[1] + ink[1], x + offset[0] + ink[2], y + offset[1] + ink[3])
        # A word cut by the page edge would be unannotated ink, so it is not drawn at all.
        if box[0] < 0 or box[1] < 0 or box[2] > self.width or box[3] > self.height:
            return
        self.draw.text((x, y), word, font=font, fill=fill)
        self.word_boxes.append(box)
        self.word_texts.append(word)
        self.word_lines.append(self._lines_written)

    def line_boxes(self) -> tuple[list[Box], list[str]]:
        """Boxes and texts of whole lines: the union of the ink boxes each ``write`` call drew.

        A line is what one ``write`` drew (a row's left label and its right-aligned price are
        two lines, as receipt sets like SROIE annotate them). Returns (boxes, texts) in drawing order.
        """
        boxes: dict[int, list[int]] = {}
        texts: dict[int, list[str]] = {}
        for box, text, line in zip(self.word_boxes, self.word_texts, self.word_lines):
            if line in boxes:
                merged = boxes[line]
                boxes[line] = [min(merged[0], box[0]), min(merged[1], box[1]), max(merged[2], box[2]),
                               max(merged[3], box[3])]
                texts[line].append(text)
            else:
                boxes[line], texts[line] = list(box), [text]
        return [tuple(box) for box in boxes.values()], [" ".join(words) for words in texts.values()]

    def write_cell(
        self, text: str, span: tuple[float, float], top: float, height: float, font: ImageFont.FreeTypeFont, fill: Color, align: str = "left"
    ) -> None:
        """Draw text vertically centred in a table cell, padded from the cell's sides.

        Args:
            text: cell text.
            span: (left, right) edges of the cell in pixels.
            top: top edge of the row in pixels.
            height: row height in pixels.
            font: font to draw with.
            fill: RGB ink colour.
            align: "left", "center" or "right" inside the cell.
        """
        pad = font.size * 0.45
        x = {"left": span[0] + pad, "center": (span[0] + span[1]) / 2, "right": span[1] - pad}[align]
        # Ascender-anchored text sits about 1.15 em tall including descenders.
        self.write(x, top + (height - font.size * 1.15) / 2, text, font, fill, align)

    @staticmethod
    def wrap(text: str, font: ImageFont.FreeTypeFont, max_width: float) -> list[str]:
        """Greedily wrap ``text`` into lines no wider than ``max_width`` pixels.

        Args:
            text: paragraph text.
            font: font the lines will be drawn with.
            max_width: available width in pixels.

        Returns:
            The lines, in order.
        """
        lines: list[str] = []
        current: list[str] = []
        for word in text.split():
            if current and font.getlength(" ".join([*current, word])) > max_width:
                lines.append(" ".join(current))
                current = []
            current.append(word)
        if current:
            lines.append(" ".join(current))
        return lines

    def dashed_line(self, x0: float, x1: float, y: float, color: Color, dash: int, width: int = 1) -> None:
        """Draw a horizontal dashed rule (receipt separators), not annotated.

        Args:
            x0: left end in pixels.
            x1: right end in pixels.
            y: vertical position in pixels.
            color: RGB colour.
            dash: dash length in pixels; gaps are the same length.
            width: line width in pixels.
        """
        for start in np.arange(x0, x1, 2 * dash):
            self.draw.line([(start, y), (min(start + dash, x1), y)], fill=color, width=width)


def shrink_to_fit(font: ImageFont.FreeTypeFont, text: str, max_width: float) -> ImageFont.FreeTypeFont:
    """Return ``font`` or a smaller size of the same face so that ``text`` fits ``max_width``.

    Args:
        font: preferred font.
        text: the line that has to fit.
        max_width: available width in pixels.

    Returns:
        The font, never smaller than MIN_FONT_PX.
    """
    file_name = Path(font.path).name
    while font.getlength(text) > max_width and font.size > MIN_FONT_PX:
        font = load_font(file_name, max(MIN_FONT_PX, int(font.size * 0.9)))
    return font


def line_height(font: ImageFont.FreeTypeFont, spacing: float = 1.3) -> int:
    """Return the baseline-to-baseline distance for ``font`` in pixels.

    Args:
        font: the font.
        spacing: multiple of the em size.

    Returns:
        Line pitch in pixels.
    """
    return round(font.size * spacing)
