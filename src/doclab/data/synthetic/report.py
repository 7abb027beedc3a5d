"""Layout of a tabular report: title block and a dense numeric grid table."""

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
from doclab.data.synthetic.marks import draw_logo

INTEGER_COLUMNS = ("Units", "Orders", "Returns", "Stock")
# Keeps a report's word count near the 60-250 range of real scanned tables.
MAX_CELLS = 200


def render_table_report(canvas: PageCanvas, rng: np.random.Generator) -> None:
    """Draw a report page dominated by one grid table of numbers.

    Args:
        canvas: the page (landscape).
        rng: the document's random generator.
    """
    accent, ink = accent_color(rng), ink_color(rng)
    margin = canvas.px(rng.uniform(28, 50))
    style = text.pick(rng, ("sans", "sans", "mono"))
    body = canvas.font(style, rng.uniform(10.5, 13.5))
    top = _title_block(canvas, rng, margin, body, accent, ink)
    footer_top = canvas.height - margin - line_height(body, 1.2)
    columns = int(rng.integers(5, 10))
    headers = [text.pick(rng, ("Region", "Segment", "Code"))]
    headers += [text.REPORT_COLUMNS[i] for i in rng.choice(len(text.REPORT_COLUMNS), size=columns - 1, replace=False)]
    table_space = footer_top - canvas.px(15) - top
    fitting_rows = table_space // round(body.size * 1.6) - 2
    rows = max(1, min(fitting_rows, MAX_CELLS // columns - 2, int(rng.integers(10, 40))))
    row_height = min(round(body.size * rng.uniform(1.6, 2.3)), table_space // (rows + 2))
    _grid_table(canvas, rng, top, margin, headers, rows, style, body, row_height, accent, ink)
    chart_top = top + (rows + 2) * row_height + canvas.px(30)
    # Reports whose table is short get a chart below it, as printed dashboards do.
    if footer_top - canvas.px(20) - chart_top > canvas.px(130):
        chart_right = margin + (canvas.width - 2 * margin) * rng.uniform(0.5, 1.0)
        _bar_chart(canvas, rng, (margin, chart_top, chart_right, footer_top - canvas.px(20)), body, accent, ink)
    small = load_font(FONT_FILES["sans"], max(MIN_FONT_PX, round(body.size * 0.9)))
    canvas.write(margin, footer_top, f"Generated {text.date_text(rng)} {text.time_text(rng)} by {text.person_name(rng)}", small, ink)
    canvas.write(canvas.width - margin, footer_top, text.pick(rng, ("Confidential", "Internal use only", "Draft")), small, ink, "right")


def _title_block(canvas: PageCanvas, rng: np.random.Generator, margin: int, body: ImageFont.FreeTypeFont, accent: Color, ink: Color) -> int:
    """Report title, period/author line and page number (logo half the time).

    Returns:
        The y coordinate where the table starts.
    """
    right = canvas.width - margin
    if rng.random() < 0.5:
        logo_size = canvas.px(rng.uniform(40, 60))
        draw_logo(canvas, rng, right - logo_size, margin, logo_size, accent)
        right -= logo_size + canvas.px(15)
    title = text.pick(rng, text.REPORT_TITLES)
    title_font = canvas.fitted_font("sans_bold", rng.uniform(20, 42), title, canvas.width * 0.6)
    canvas.write(margin, margin, title, title_font, accent if rng.random() < 0.6 else ink)
    canvas.write(right, margin, f"Page {int(rng.integers(1, 4))} of {int(rng.integers(4, 9))}", body, ink, "right")
    y = margin + line_height(title_font, 1.35)
    subtitle = f"Period: {text.date_text(rng)} to {text.date_text(rng)}   Prepared by: {text.person_name(rng)}"
    canvas.write(margin, y, subtitle, body, ink)
    return y + line_height(body, 1.3) + canvas.px(18)


def _column_values(rng: np.random.Generator, header: str, rows: int) -> tuple[list[str], str]:
    """Random cell values for one numeric column plus the column's total.

    Args:
        rng: the document's random generator.
        header: column title; decides percent, integer or money values.
        rows: number of body rows.

    Returns:
        The formatted cells and the formatted total (mean for percentages).
    """
    if "%" in header:
        values = rng.normal(rng.uniform(-5, 25), rng.uniform(2, 10), size=rows)
        return [f"{v:.1f}%" for v in values], f"{values.mean():.1f}%"
    scale = 10 ** rng.uniform(1.5, 4.5)
    values = rng.uniform(0.1, 1.0, size=rows) * scale
    if header in INTEGER_COLUMNS:
        counts = np.round(values).astype(int)
        return [f"{v:,}" for v in counts], f"{counts.sum():,}"
    return [text.money(v, True) for v in values], text.money(float(values.sum()), True)


def _row_labels(rng: np.random.Generator, header: str, rows: int) -> list[str]:
    """First-column labels: product codes or segment names."""
    if header == "Code":
        return [f"{text.alphanumeric(rng, 1)}-{int(rng.integers(1000, 9999))}" for _ in range(rows)]
    order = rng.permutation(len(text.REPORT_ROW_LABELS))
    names = [text.REPORT_ROW_LABELS[order[i % len(order)]] for i in range(rows)]
    return [name if i < len(order) else f"{name} {i // len(order) + 1}" for i, name in enumerate(names)]


def _fit_fonts(style: str, size: int, columns: list[list[str]], edges: list[float]) -> tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont]:
    """Shrink the table fonts until every cell, measured in bold, fits its padded column.

    Args:
        style: FONT_FILES key of the body font.
        size: preferred size in pixels.
        columns: all texts of each column.
        edges: column edges in pixels.

    Returns:
        The regular and bold fonts to use.
    """
    while size > MIN_FONT_PX:
        bold = load_font(FONT_FILES["sans_bold"], size)
        # write_cell pads 0.45 em on each side.
        widest = [max(bold.getlength(cell) for cell in cells) + size for cells in columns]
        if all(width <= right - left for width, left, right in zip(widest, edges, edges[1:])):
            break
        size -= 1
    return load_font(FONT_FILES[style], size), load_font(FONT_FILES["sans_bold"], size)


def _grid_table(
    canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, headers: list[str], rows: int,
    style: str, body: ImageFont.FreeTypeFont, row_height: int, accent: Color, ink: Color,
) -> None:
    """Header row, zebra-striped body rows, bold total row and grid lines."""
    left, right = margin, canvas.width - margin
    label_width = (right - left) * rng.uniform(0.14, 0.22)
    edges = [left, left + label_width, *np.linspace(left + label_width, right, len(headers))[1:].tolist()]
    columns = [_row_labels(rng, headers[0], rows)]
    totals = ["Total"]
    for header in headers[1:]:
        cells, total = _column_values(rng, header, rows)
        columns.append(cells)
        totals.append(total)
    cells_per_column = [[header, total, *cells] for header, total, cells in zip(headers, totals, columns)]
    body, bold = _fit_fonts(style, body.size, cells_per_column, edges)
    bottom = top + (rows + 2) * row_height
    canvas.draw.rectangle([left, top, right, top + row_height], fill=tint(accent, rng.uniform(0.55, 0.8)))
    if rng.random() < 0.5:
        stripe = tint(accent, 0.92)
        for row in range(1, rows + 1, 2):
            canvas.draw.rectangle([left, top + (row + 1) * row_height, right, top + (row + 2) * row_height], fill=stripe)
    canvas.draw.rectangle([left, bottom - row_height, right, bottom], fill=tint(ink, 0.85))
    for column, header in enumerate(headers):
        span = (edges[column], edges[column + 1])
        align = "left" if column == 0 else "right"
        canvas.write_cell(header, span, top, row_height, bold, ink, align)
        for row, cell in enumerate(columns[column]):
            canvas.write_cell(cell, span, top + (row + 1) * row_height, row_height, body, ink, align)
        canvas.write_cell(totals[column], span, bottom - row_height, row_height, bold, ink, align)
    full_grid = rng.random() < 0.7
    rule = tint(ink, rng.uniform(0.2, 0.6))
    for row in range(rows + 3):
        canvas.draw.line([(left, top + row * row_height), (right, top + row * row_height)], fill=rule, width=1)
    for edge in edges if full_grid else (edges[0], edges[-1]):
        canvas.draw.line([(edge, top), (edge, bottom)], fill=rule, width=1)


def _bar_chart(
    canvas: PageCanvas, rng: np.random.Generator, box: tuple[float, float, float, float],
    body: ImageFont.FreeTypeFont, accent: Color, ink: Color,
) -> None:
    """Captioned bar chart with y-axis tick labels and light grid lines.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        box: (left, top, right, bottom) of the chart including caption, in pixels.
        body: font of the caption and tick labels.
        accent: bar colour.
        ink: axis and text colour.
    """
    left, top, right, bottom = box
    caption = f"Figure {int(rng.integers(1, 6))}: {text.pick(rng, text.REPORT_TITLES)}"
    canvas.write(left, top, caption, load_font(FONT_FILES["sans_bold"], body.size), ink)
    plot_left, plot_top = left + body.size * 5, top + line_height(body, 2.0)
    ticks = int(rng.integers(3, 6))
    step = float(rng.choice([10, 20, 25, 50, 100, 250, 500]))
    for tick in range(ticks + 1):
        y = bottom - (bottom - plot_top) * tick / ticks
        canvas.draw.line([(plot_left, y), (right, y)], fill=tint(ink, 0.8), width=1)
        canvas.write(plot_left - body.size * 0.5, y - body.size * 0.55, f"{step * tick:,.0f}", body, ink, "right")
    bars = int(rng.integers(5, 16))
    pitch = (right - plot_left) / bars
    heights = rng.uniform(0.1, 1.0, size=bars) * (bottom - plot_top)
    for index, height in enumerate(heights):
        x = plot_left + pitch * (index + 0.2)
        canvas.draw.rectangle([x, bottom - height, x + pitch * 0.6, bottom], fill=tint(accent, 0.3 * (index % 2)))
    canvas.draw.line([(plot_left, plot_top), (plot_left, bottom), (right, bottom)], fill=ink, width=max(1, canvas.px(1.5)))
