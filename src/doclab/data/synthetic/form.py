"""Layout of a fill-in form: section bars, labelled boxes or underlines, checkboxes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import ImageFont

from doclab.data.synthetic import text
from doclab.data.synthetic.canvas import (
    FONT_FILES,
    Color,
    PageCanvas,
    accent_color,
    ink_color,
    line_height,
    load_font,
    shrink_to_fit,
    tint,
)
from doclab.data.synthetic.marks import draw_logo, draw_signature

FIELD_VALUES: dict[str, Callable[[np.random.Generator], str]] = {
    "Surname": lambda rng: text.pick(rng, text.LAST_NAMES),
    "First name": lambda rng: text.pick(rng, text.FIRST_NAMES),
    "Date of birth": text.date_text,
    "Nationality": lambda rng: text.pick(rng, text.COUNTRY_NAMES).title(),
    "Address": text.street_address,
    "City": lambda rng: text.pick(rng, text.CITIES),
    "Postcode": lambda rng: str(int(rng.integers(10000, 99999))),
    "Telephone": text.phone_number,
    "E-mail": text.email_address,
    "Occupation": lambda rng: text.pick(rng, ("Engineer", "Teacher", "Accountant", "Nurse", "Designer", "Driver")),
    "Employer": text.company_name,
    "Passport number": lambda rng: text.alphanumeric(rng, 9),
    "Account number": lambda rng: str(int(rng.integers(10**9, 10**10))),
    "Start date": text.date_text,
    "Department": lambda rng: text.pick(rng, ("Finance", "Sales", "Logistics", "IT", "Marketing")),
    "Reference": lambda rng: text.reference_code(rng, "REF"),
}
CHECKBOX_GROUPS = (
    ("Title", ("Mr", "Mrs", "Ms", "Dr")),
    ("Marital status", ("Single", "Married", "Divorced", "Widowed")),
    ("Employment", ("Full-time", "Part-time", "Self-employed", "Student")),
    ("Preferred contact", ("Phone", "E-mail", "Post")),
    ("Do you hold a driving licence?", ("Yes", "No")),
)
SECTION_TITLES = (
    "PERSONAL DETAILS", "CONTACT INFORMATION", "EMPLOYMENT DETAILS", "BANK DETAILS",
    "EMERGENCY CONTACT", "ADDITIONAL INFORMATION",
)
FORM_TITLES = (
    "APPLICATION FORM", "EMPLOYEE REGISTRATION FORM", "CUSTOMER INFORMATION FORM",
    "CHANGE OF ADDRESS FORM", "MEMBERSHIP APPLICATION", "INSURANCE CLAIM FORM",
)
DECLARATION = "I declare that the information given in this form is correct and complete, and I agree to the processing of my personal data."


@dataclass(frozen=True)
class FormStyle:
    """Per-form choices shared by all fields.

    Attributes:
        label: font of printed labels.
        handwriting: font of filled-in values.
        ink: printed ink colour.
        pen: colour of filled-in values and ticks.
        accent: colour of section bars.
        boxed: True draws value boxes below labels, False underlines beside them.
        fill_rate: probability that a field has been filled in.
    """

    label: ImageFont.FreeTypeFont
    handwriting: ImageFont.FreeTypeFont
    ink: Color
    pen: Color
    accent: Color
    boxed: bool
    fill_rate: float


def render_form(canvas: PageCanvas, rng: np.random.Generator) -> None:
    """Draw a partly filled-in form on a portrait page.

    Args:
        canvas: the page (portrait, roughly US letter).
        rng: the document's random generator.
    """
    style = FormStyle(
        label=canvas.font("sans", rng.uniform(10.5, 12.5)),
        handwriting=canvas.font(text.pick(rng, ("sans_italic", "serif_italic")), rng.uniform(14, 20)),
        ink=ink_color(rng),
        # Forms are filled in with blue pens twice as often as with black ones.
        pen=text.pick(rng, ((20, 40, 150), (25, 25, 30), (20, 40, 150))),
        accent=accent_color(rng),
        boxed=bool(rng.random() < 0.6),
        fill_rate=rng.uniform(0.5, 0.95),
    )
    margin = canvas.px(rng.uniform(45, 65))
    y = _header(canvas, rng, margin, style)
    # The declaration and signature block needs about 150 units at the bottom.
    closing_top = canvas.height - margin - canvas.px(150)
    labels = [list(FIELD_VALUES)[i] for i in rng.permutation(len(FIELD_VALUES))]
    sections = [SECTION_TITLES[i] for i in rng.permutation(len(SECTION_TITLES))]
    for number, title in enumerate(sections, start=1):
        if y + canvas.px(110) > closing_top:
            break
        y = _section(canvas, rng, y, margin, closing_top, f"{number}. {title}", labels, style)
    _closing(canvas, rng, closing_top, margin, style)


def _header(canvas: PageCanvas, rng: np.random.Generator, margin: int, style: FormStyle) -> int:
    """Organisation line with optional logo, form code, rule, title and instructions.

    Returns:
        The y coordinate where the first section starts.
    """
    x, block = margin, 0
    if rng.random() < 0.5:
        block = canvas.px(rng.uniform(38, 55))
        draw_logo(canvas, rng, margin, margin, block, style.accent)
        x += block + canvas.px(12)
    organisation = canvas.font("sans_bold", rng.uniform(14, 20))
    canvas.write(x, margin + max(0, block - organisation.size) / 2, text.company_name(rng), organisation, style.accent)
    code = f"Form {text.alphanumeric(rng, 2)}-{int(rng.integers(1, 99))} (rev. {int(rng.integers(2015, 2025))})"
    canvas.write(canvas.width - margin, margin, code, load_font(FONT_FILES["mono"], style.label.size), style.ink, "right")
    y = margin + max(block, line_height(organisation)) + canvas.px(10)
    canvas.draw.line([(margin, y), (canvas.width - margin, y)], fill=style.ink, width=max(1, canvas.px(2)))
    y += canvas.px(18)
    title = text.pick(rng, FORM_TITLES)
    title_font = canvas.fitted_font(text.pick(rng, ("sans_bold", "serif_bold")), rng.uniform(22, 44), title, canvas.width - 2 * margin)
    canvas.write(canvas.width / 2, y, title, title_font, style.ink, "center")
    y += line_height(title_font, 1.4)
    instruction = "Please complete all fields in BLOCK CAPITALS and sign the declaration."
    instruction_font = shrink_to_fit(load_font(FONT_FILES["sans_italic"], style.label.size), instruction, canvas.width - 2 * margin)
    canvas.write(canvas.width / 2, y, instruction, instruction_font, style.ink, "center")
    return y + line_height(instruction_font) + canvas.px(18)


def _section(
    canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, bottom: int, title: str, labels: list[str], style: FormStyle
) -> int:
    """A section bar followed by rows of fields and checkbox groups, stopping before ``bottom``.

    Args:
        labels: field labels in order of use; used labels are rotated to the back.

    Returns:
        The y coordinate below the section.
    """
    bar_height = round(style.label.size * 2.1)
    dark_bar = rng.random() < 0.3
    canvas.draw.rectangle([margin, top, canvas.width - margin, top + bar_height], fill=style.accent if dark_bar else tint(style.accent, 0.75))
    bold = load_font(FONT_FILES["sans_bold"], round(style.label.size * 1.1))
    canvas.write_cell(title, (margin, canvas.width - margin), top, bar_height, bold, (255, 255, 255) if dark_bar else style.ink)
    y = top + bar_height + canvas.px(12)
    for _ in range(int(rng.integers(2, 5))):
        if rng.random() < 0.25:
            height = round(style.label.size * 1.2) + canvas.px(16)
            if y + height > bottom:
                break
            _checkbox_row(canvas, rng, y, margin, style)
        else:
            height = _field_row_height(canvas, style)
            if y + height > bottom:
                break
            row_labels = [labels.pop(0) for _ in range(int(rng.integers(1, 4)))]
            labels.extend(row_labels)
            _field_row(canvas, rng, y, margin, row_labels, style)
        y += height
    return y + canvas.px(10)


def _field_row_height(canvas: PageCanvas, style: FormStyle) -> int:
    """Height in pixels of one row of fields, including the gap below it."""
    if style.boxed:
        return line_height(style.label, 1.35) + round(style.handwriting.size * 1.7) + canvas.px(14)
    return round(style.handwriting.size * 1.5) + canvas.px(18)


def _field_row(canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, labels: list[str], style: FormStyle) -> None:
    """Fields side by side: label with a box below it, or label with an underline beside it.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        top: top of the row in pixels.
        margin: page margin in pixels.
        labels: labels of the fields in this row.
        style: form-wide choices.
    """
    gap = canvas.px(16)
    width = (canvas.width - 2 * margin - gap * (len(labels) - 1)) / len(labels)
    box_height = round(style.handwriting.size * 1.7)
    for index, label in enumerate(labels):
        x = margin + index * (width + gap)
        value = FIELD_VALUES[label](rng) if rng.random() < style.fill_rate else None
        if style.boxed:
            canvas.write(x, top, label, style.label, style.ink)
            box_top = top + line_height(style.label, 1.35)
            canvas.draw.rectangle([x, box_top, x + width, box_top + box_height], outline=style.ink, width=1)
            value_box = (x, box_top, x + width, box_height)
        else:
            line_y = top + round(style.handwriting.size * 1.5)
            label_end = canvas.write(x, line_y - style.label.size * 1.05, f"{label}:", style.label, style.ink)
            canvas.draw.line([(label_end + canvas.px(6), line_y), (x + width, line_y)], fill=style.ink, width=1)
            value_box = (label_end + canvas.px(6), line_y - box_height, x + width, box_height)
        if value is not None:
            left, box_top, right, height = value_box
            font = shrink_to_fit(style.handwriting, value, right - left - style.handwriting.size)
            canvas.write_cell(value, (left, right), box_top, height, font, style.pen)


def _checkbox_row(canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, style: FormStyle) -> None:
    """A question followed by tick boxes, one of them usually crossed."""
    question, options = CHECKBOX_GROUPS[int(rng.integers(len(CHECKBOX_GROUPS)))]
    x = canvas.write(margin, top, f"{question}", style.label, style.ink) + canvas.px(20)
    size = round(style.label.size * 0.95)
    chosen = int(rng.integers(len(options))) if rng.random() < style.fill_rate else -1
    for index, option in enumerate(options):
        box_top = top + round(style.label.size * 0.08)
        canvas.draw.rectangle([x, box_top, x + size, box_top + size], outline=style.ink, width=1)
        if index == chosen:
            pen_width = max(1, size // 6)
            canvas.draw.line([(x + 2, box_top + 2), (x + size - 2, box_top + size - 2)], fill=style.pen, width=pen_width)
            canvas.draw.line([(x + 2, box_top + size - 2), (x + size - 2, box_top + 2)], fill=style.pen, width=pen_width)
        x = canvas.write(x + size + canvas.px(6), top, option, style.label, style.ink) + canvas.px(22)


def _closing(canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int, style: FormStyle) -> None:
    """Declaration text, signature and date lines, and the page footer."""
    italic = load_font(FONT_FILES["sans_italic"], style.label.size)
    y = top
    for line in canvas.wrap(DECLARATION, italic, canvas.width - 2 * margin):
        canvas.write(margin, y, line, italic, style.ink)
        y += line_height(italic, 1.35)
    line_y = y + canvas.px(48)
    middle = margin + (canvas.width - 2 * margin) * 0.55
    canvas.draw.line([(margin, line_y), (middle, line_y)], fill=style.ink, width=1)
    canvas.draw.line([(middle + canvas.px(40), line_y), (canvas.width - margin, line_y)], fill=style.ink, width=1)
    canvas.write(margin, line_y + canvas.px(5), "Signature", style.label, style.ink)
    canvas.write(middle + canvas.px(40), line_y + canvas.px(5), "Date", style.label, style.ink)
    if rng.random() < style.fill_rate:
        draw_signature(canvas, rng, margin + canvas.px(20), line_y - canvas.px(42), canvas.px(rng.uniform(120, 200)), canvas.px(40), style.pen)
        date_font = style.handwriting
        canvas.write(middle + canvas.px(50), line_y - date_font.size * 1.1, text.date_text(rng), date_font, style.pen)
    footer = f"Page 1 of {int(rng.integers(1, 4))}"
    canvas.write(canvas.width / 2, canvas.height - margin + canvas.px(10), footer, style.label, style.ink, "center")
