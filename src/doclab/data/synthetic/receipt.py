"""Layout of a thermal till receipt: narrow, monospace, dashed separators.

The receipt is built as a list of rows first, so the number of item lines can
be chosen to fill exactly the space between the header and the totals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import ImageFont

from doclab.data.synthetic import text
from doclab.data.synthetic.canvas import FONT_FILES, Color, PageCanvas, line_height, load_font
from doclab.data.synthetic.marks import draw_barcode, draw_logo


@dataclass(frozen=True)
class ReceiptRow:
    """One receipt row.

    Attributes:
        kind: "center", "left" or "pair" (left and right aligned text), or the
            unannotated marks "rule", "barcode" and "logo".
        texts: the row's text (two entries for "pair").
        font: font of the text rows.
    """

    kind: str
    texts: tuple[str, ...] = ()
    font: ImageFont.FreeTypeFont | None = None


@dataclass(frozen=True)
class ReceiptStyle:
    """Per-receipt choices shared by all rows.

    Attributes:
        body: regular monospace font.
        bold: bold monospace font of the same size.
        spacing: line pitch as a multiple of the font size.
        tax_rate: sales tax in percent.
        card_digits: last four digits of the paying card, or None for cash.
    """

    body: ImageFont.FreeTypeFont
    bold: ImageFont.FreeTypeFont
    spacing: float
    tax_rate: int
    card_digits: str | None


def render_receipt(canvas: PageCanvas, rng: np.random.Generator) -> None:
    """Draw a till receipt filling the whole (narrow, tall) page.

    Args:
        canvas: the page, typically 0.35-0.5 times as wide as tall.
        rng: the document's random generator.
    """
    body = canvas.font("mono", rng.uniform(12.0, 17.0))
    style = ReceiptStyle(
        body=body,
        bold=load_font(FONT_FILES["mono_bold"], body.size),
        spacing=rng.uniform(1.2, 1.45),
        tax_rate=int(rng.choice([5, 7, 8, 10, 19, 20])),
        card_digits=f"{int(rng.integers(10000)):04d}" if rng.random() < 0.6 else None,
    )
    ink_level = int(rng.integers(10, 80))
    ink: Color = (ink_level, ink_level, ink_level)
    left = canvas.px(rng.uniform(14, 30))
    right = canvas.width - left
    header = _header_rows(canvas, rng, style, right - left)
    closing_height = _rows_height(canvas, _closing_rows(style, []), style.spacing)
    top = canvas.px(rng.uniform(12, 40))
    free = canvas.height - top - canvas.px(20) - _rows_height(canvas, header, style.spacing) - closing_height
    items, item_rows = _item_rows(rng, style, free)
    closing = _closing_rows(style, items)
    _draw_rows(canvas, rng, [*header, *item_rows, *closing], top, left, right, ink, style.spacing)


def _header_rows(canvas: PageCanvas, rng: np.random.Generator, style: ReceiptStyle, width: float) -> list[ReceiptRow]:
    """Shop logo, name, address, tax number, date/time and till information."""
    shop = text.pick(rng, text.SHOP_NAMES)
    # Stacking a two-word name one word per line lets it print much larger, as shop headers often do.
    name_lines = shop.split() if " " in shop and rng.random() < 0.5 else [shop]
    widest = max(name_lines, key=len)
    name_font = canvas.fitted_font(text.pick(rng, ("mono_bold", "sans_bold")), rng.uniform(30, 80), widest, width)
    rows = [ReceiptRow("logo")] if rng.random() < 0.4 else []
    rows += [ReceiptRow("center", (line,), name_font) for line in name_lines]
    if rng.random() < 0.5:
        rows.append(ReceiptRow("center", (text.pick(rng, ("Fresh every day", "Since 1987", "Open 7 days")),), style.body))
    rows += [
        ReceiptRow("center", (text.street_address(rng).upper(),), style.body),
        ReceiptRow("center", (text.city_line(rng).upper(),), style.body),
        ReceiptRow("center", (f"TEL {text.phone_number(rng)}",), style.body),
    ]
    if rng.random() < 0.6:
        rows.append(ReceiptRow("center", (f"VAT NO {text.alphanumeric(rng, 10)}",), style.body))
    rows += [
        ReceiptRow("rule"),
        ReceiptRow("pair", (text.date_text(rng), text.time_text(rng)), style.body),
        ReceiptRow("pair", (f"RECEIPT {int(rng.integers(1, 99999)):05d}", f"TILL {int(rng.integers(1, 12))}"), style.body),
        ReceiptRow("left", (f"CASHIER: {text.pick(rng, text.FIRST_NAMES).upper()}",), style.body),
        ReceiptRow("rule"),
    ]
    return rows


def _item_rows(rng: np.random.Generator, style: ReceiptStyle, free_height: float) -> tuple[list[float], list[ReceiptRow]]:
    """Purchased items filling ``free_height`` pixels.

    Returns:
        The line totals and the rows showing them.
    """
    pitch = line_height(style.body, style.spacing)
    tax_flags = ("A", "B", "") if rng.random() < 0.5 else ("",)
    totals: list[float] = []
    rows: list[ReceiptRow] = []
    while True:
        quantity = int(rng.choice([1, 1, 1, 2, 3]))
        unit_price = text.price(rng, 0.5, 30.0)
        line_total = round(quantity * unit_price, 2)
        item_rows = [ReceiptRow("pair", (text.pick(rng, text.GROCERY_ITEMS), f"{text.money(line_total)} {text.pick(rng, tax_flags)}".strip()), style.body)]
        if quantity > 1:
            item_rows.append(ReceiptRow("left", (f"  {quantity} x {text.money(unit_price)}",), style.body))
        if (len(rows) + len(item_rows)) * pitch > free_height:
            return totals, rows
        totals.append(line_total)
        rows += item_rows


def _closing_rows(style: ReceiptStyle, items: list[float]) -> list[ReceiptRow]:
    """Totals, payment and thank-you rows; the same structure whatever ``items`` holds.

    Args:
        style: receipt-wide choices.
        items: line totals of the purchased items.

    Returns:
        The rows, whose heights do not depend on ``items`` so they can be measured up front.
    """
    subtotal = round(sum(items), 2)
    tax = round(subtotal * style.tax_rate / 100, 2)
    total = round(subtotal + tax, 2)
    total_font = load_font(FONT_FILES["mono_bold"], round(style.body.size * 1.5))
    rows = [
        ReceiptRow("rule"),
        ReceiptRow("pair", ("SUBTOTAL", text.money(subtotal)), style.body),
        ReceiptRow("pair", (f"TAX {style.tax_rate}%", text.money(tax)), style.body),
        ReceiptRow("pair", ("TOTAL", text.money(total)), total_font),
    ]
    if style.card_digits is not None:
        rows += [
            ReceiptRow("pair", ("CARD", text.money(total)), style.body),
            ReceiptRow("left", (f"VISA **** **** **** {style.card_digits}",), style.body),
            ReceiptRow("left", (f"APPROVED AUTH 0{style.card_digits[::-1]}",), style.body),
        ]
    else:
        paid = float(np.ceil(total / 10) * 10)
        rows += [
            ReceiptRow("pair", ("CASH", text.money(paid)), style.body),
            ReceiptRow("pair", ("CHANGE", text.money(paid - total)), style.body),
        ]
    rows += [
        ReceiptRow("rule"),
        ReceiptRow("center", ("THANK YOU FOR SHOPPING!",), style.bold),
        ReceiptRow("center", ("PLEASE KEEP YOUR RECEIPT",), style.body),
        ReceiptRow("barcode"),
    ]
    return rows


def _row_height(canvas: PageCanvas, row: ReceiptRow, spacing: float) -> int:
    """Vertical space a row takes in pixels."""
    if row.font is not None:
        return line_height(row.font, spacing)
    return {"rule": canvas.px(16), "barcode": canvas.px(62), "logo": canvas.px(80)}[row.kind]


def _rows_height(canvas: PageCanvas, rows: list[ReceiptRow], spacing: float) -> int:
    """Total height of ``rows`` in pixels."""
    return sum(_row_height(canvas, row, spacing) for row in rows)


def _draw_rows(
    canvas: PageCanvas, rng: np.random.Generator, rows: list[ReceiptRow], top: float, left: float, right: float, ink: Color, spacing: float
) -> None:
    """Draw rows top to bottom starting at ``top``."""
    y, center = top, (left + right) / 2
    for row in rows:
        height = _row_height(canvas, row, spacing)
        if row.kind == "center":
            canvas.write(center, y, row.texts[0], row.font, ink, "center")
        elif row.kind == "left":
            canvas.write(left, y, row.texts[0], row.font, ink)
        elif row.kind == "pair":
            canvas.write(left, y, row.texts[0], row.font, ink)
            canvas.write(right, y, row.texts[1], row.font, ink, "right")
        elif row.kind == "rule":
            canvas.dashed_line(left, right, y + height / 2, ink, dash=canvas.px(5), width=max(1, canvas.px(1.5)))
        elif row.kind == "barcode":
            draw_barcode(canvas, rng, center - (right - left) * 0.35, y + canvas.px(8), (right - left) * 0.7, height - canvas.px(16), ink)
        else:
            draw_logo(canvas, rng, center - canvas.px(33), y + canvas.px(6), canvas.px(66), ink)
        y += height
