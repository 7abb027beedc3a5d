"""Layout of a business invoice: logo block, addresses, ruled item table, totals box."""

from __future__ import annotations

import numpy as np
from PIL import ImageFont

from doclab.data.synthetic import text
from doclab.data.synthetic.canvas import (
    FONT_FILES,
    MIN_FONT_PX,
    Color,
    PageCanvas,
    accent_color,
    ink_color,
    line_height,
    load_font,
    tint,
)
from doclab.data.synthetic.marks import draw_logo, draw_stamp

TABLE_COLUMNS = ("#", "Description", "Qty", "Unit price", "Amount")
# Column edges as fractions of the table width, and each column's alignment.
TABLE_EDGES = (0.0, 0.07, 0.58, 0.70, 0.85, 1.0)
TABLE_ALIGN = ("center", "left", "center", "right", "right")
STAMP_COLORS: tuple[Color, ...] = ((185, 30, 35), (35, 55, 165))


def render_invoice(canvas: PageCanvas, rng: np.random.Generator) -> None:
    """Draw an invoice on a portrait page.

    Args:
        canvas: the page (portrait, roughly A4).
        rng: the document's random generator.
    """
    accent, ink = accent_color(rng), ink_color(rng)
    margin = canvas.px(rng.uniform(45, 70))
    body = canvas.font("sans", rng.uniform(10.5, 15.5))
    y = _header(canvas, rng, margin, body, accent, ink)
    y = _addresses(canvas, rng, y, margin, body, accent, ink)
    row_height = round(body.size * rng.uniform(1.9, 2.4))
    # Reserve room for the totals box (4 rows) and the footer below the item table.
    table_bottom = canvas.height - margin - canvas.px(60) - 5 * row_height
    y, subtotal = _item_table(canvas, rng, y, margin, table_bottom, body, row_height, accent, ink)
    totals_top = y + canvas.px(20)
    _totals(canvas, rng, totals_top, margin, subtotal, body, row_height, accent, ink)
    _footer(canvas, rng, margin, body, ink)
    if rng.random() < 0.35:
        center = (canvas.width * rng.uniform(0.25, 0.75), min(canvas.height * 0.85, totals_top + canvas.px(rng.uniform(0, 120))))
        stamp_text = [text.pick(rng, ("PAID", "RECEIVED", "APPROVED")), text.date_text(rng)]
        draw_stamp(canvas, rng, center, canvas.px(rng.uniform(170, 240)), stamp_text, text.pick(rng, STAMP_COLORS))


def _header(canvas: PageCanvas, rng: np.random.Generator, margin: int, body: ImageFont.FreeTypeFont, accent: Color, ink: Color) -> int:
    """Logo, company block and the INVOICE title with its reference data.

    Returns:
        The y coordinate below the header.
    """
    right = canvas.width - margin
    title = text.pick(rng, ("INVOICE", "TAX INVOICE", "INVOICE"))
    title_font = canvas.fitted_font(text.pick(rng, ("sans_bold", "serif_bold")), rng.uniform(36, 84), title, canvas.width * 0.5)
    title_left = right - title_font.getlength(title)
    canvas.write(right, margin, title, title_font, accent, "right")
    logo_size = canvas.px(rng.uniform(55, 85))
    draw_logo(canvas, rng, margin, margin, logo_size, accent)
    x = margin + logo_size + canvas.px(15)
    company = text.company_name(rng)
    name_font = canvas.fitted_font("sans_bold", rng.uniform(17, 26), company, title_left - canvas.px(25) - x)
    canvas.write(x, margin, company, name_font, accent if rng.random() < 0.5 else ink)
    small = load_font(FONT_FILES["sans"], max(MIN_FONT_PX, round(body.size * 0.88)))
    y = margin + line_height(name_font, 1.3)
    for line in (text.street_address(rng), text.city_line(rng), f"Tel: {text.phone_number(rng)}", text.email_address(rng)):
        canvas.write(x, y, line, small, ink)
        y += line_height(small, 1.35)
    meta_y = margin + line_height(title_font, 1.3)
    label_right = right - canvas.px(135)
    for label, value in (
        ("Invoice No:", text.reference_code(rng, "INV")),
        ("Date:", text.date_text(rng)),
        ("Due date:", text.date_text(rng)),
        ("Customer ID:", text.alphanumeric(rng, 6)),
    ):
        canvas.write(label_right, meta_y, label, load_font(FONT_FILES["sans_bold"], body.size), ink, "right")
        canvas.write(right, meta_y, value, body, ink, "right")
        meta_y += line_height(body, 1.45)
    return max(y, meta_y) + canvas.px(30)


def _addresses(canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, body: ImageFont.FreeTypeFont, accent: Color, ink: Color) -> int:
    """BILL TO and (sometimes) SHIP TO address blocks side by side.

    Returns:
        The y coordinate below the blocks.
    """
    columns = [("BILL TO", margin)]
    if rng.random() < 0.6:
        columns.append(("SHIP TO", canvas.width // 2))
    label_font = load_font(FONT_FILES["sans_bold"], body.size)
    bottom = top
    for title, x in columns:
        y = top
        canvas.write(x, y, title, label_font, accent)
        y += line_height(label_font, 1.6)
        for line in (text.person_name(rng), text.company_name(rng), text.street_address(rng), text.city_line(rng)):
            canvas.write(x, y, line, body, ink)
            y += line_height(body, 1.4)
        bottom = max(bottom, y)
    return bottom + canvas.px(30)


def _item_table(
    canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, bottom_limit: int,
    body: ImageFont.FreeTypeFont, row_height: int, accent: Color, ink: Color,
) -> tuple[int, float]:
    """Ruled item table with a filled header row.

    Returns:
        The y coordinate of the table's bottom edge and the sum of the amounts.
    """
    left, right = margin, canvas.width - margin
    edges = [left + (right - left) * fraction for fraction in TABLE_EDGES]
    header_dark = rng.random() < 0.35
    canvas.draw.rectangle([left, top, right, top + row_height], fill=accent if header_dark else tint(accent, 0.8))
    bold = load_font(FONT_FILES["sans_bold"], body.size)
    for column, title in enumerate(TABLE_COLUMNS):
        header_ink = (255, 255, 255) if header_dark else ink
        canvas.write_cell(title, (edges[column], edges[column + 1]), top, row_height, bold, header_ink, TABLE_ALIGN[column])
    rule_color = tint(ink, 0.6)
    rows = max(1, min(int(rng.integers(4, 16)), (bottom_limit - top) // row_height - 1))
    subtotal, y = 0.0, top + row_height
    for row in range(rows):
        quantity, unit_price = int(rng.integers(1, 12)), text.price(rng, 5, 900)
        amount = round(quantity * unit_price, 2)
        subtotal += amount
        cells = (str(row + 1), text.pick(rng, text.SERVICES), str(quantity), text.money(unit_price, True), text.money(amount, True))
        for column, cell in enumerate(cells):
            canvas.write_cell(cell, (edges[column], edges[column + 1]), y, row_height, body, ink, TABLE_ALIGN[column])
        y += row_height
        canvas.draw.line([(left, y), (right, y)], fill=rule_color, width=1)
    if rng.random() < 0.5:
        for edge in edges[1:-1]:
            canvas.draw.line([(edge, top), (edge, y)], fill=rule_color, width=1)
    canvas.draw.rectangle([left, top, right, y], outline=ink, width=max(1, canvas.px(1.5)))
    return y, round(subtotal, 2)


def _totals(
    canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, subtotal: float,
    body: ImageFont.FreeTypeFont, row_height: int, accent: Color, ink: Color,
) -> None:
    """Boxed subtotal/tax/total block on the right, payment details on the left."""
    rate = int(rng.choice([5, 10, 19, 20, 21]))
    tax = round(subtotal * rate / 100, 2)
    rows = (("Subtotal", subtotal), (f"Tax {rate}%", tax), ("Total due", subtotal + tax))
    box_left, right = margin + (canvas.width - 2 * margin) * 0.58, canvas.width - margin
    bold = load_font(FONT_FILES["sans_bold"], round(body.size * 1.15))
    canvas.draw.rectangle([box_left, top + 2 * row_height, right, top + 3 * row_height], fill=tint(accent, 0.82))
    for index, (label, value) in enumerate(rows):
        font = bold if index == len(rows) - 1 else body
        canvas.write_cell(label, (box_left, right), top + index * row_height, row_height, font, ink)
        canvas.write_cell(text.money(value, True), (box_left, right), top + index * row_height, row_height, font, ink, "right")
    canvas.draw.rectangle([box_left, top, right, top + 3 * row_height], outline=ink, width=1)
    small = load_font(FONT_FILES["sans"], max(MIN_FONT_PX, round(body.size * 0.9)))
    y = top
    for line in ("Payment terms: Net 30 days", f"Bank: {text.pick(rng, text.COMPANY_WORDS)} Bank", f"IBAN: GB{int(rng.integers(10, 99))} {text.alphanumeric(rng, 4)} {int(rng.integers(1000, 9999))} {int(rng.integers(1000, 9999))} {int(rng.integers(1000, 9999))}"):
        canvas.write(margin, y, line, small, ink)
        y += line_height(small, 1.5)


def _footer(canvas: PageCanvas, rng: np.random.Generator, margin: int, body: ImageFont.FreeTypeFont, ink: Color) -> None:
    """Rule and centred closing lines at the bottom of the page."""
    small = load_font(FONT_FILES["sans"], max(MIN_FONT_PX, round(body.size * 0.85)))
    italic = load_font(FONT_FILES["sans_italic"], body.size)
    y = canvas.height - margin - line_height(small, 1.4) - line_height(italic, 1.5)
    canvas.draw.line([(margin, y - canvas.px(8)), (canvas.width - margin, y - canvas.px(8))], fill=tint(ink, 0.5), width=1)
    canvas.write(canvas.width / 2, y, "Thank you for your business!", italic, ink, "center")
    y += line_height(italic, 1.5)
    company_line = f"Reg. No {int(rng.integers(1000000, 9999999))}  {text.phone_number(rng)}  {text.email_address(rng)}"
    canvas.write(canvas.width / 2, y, company_line, small, ink, "center")
