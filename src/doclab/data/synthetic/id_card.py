"""Layout of an identity card: rounded landscape card, header band, photo, fields, MRZ."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from doclab.data.synthetic import text
from doclab.data.synthetic.canvas import Color, PageCanvas, accent_color, ink_color, line_height, tint
from doclab.data.synthetic.marks import draw_chip, draw_guilloche, draw_photo, draw_signature

CARD_KINDS = ("IDENTITY CARD", "RESIDENCE PERMIT", "DRIVING LICENCE", "STAFF CARD")


def render_id_card(canvas: PageCanvas, rng: np.random.Generator) -> None:
    """Draw an ID card whose page is the card itself (rounded via ``canvas.outline_mask``).

    Args:
        canvas: the page (landscape, about 1.59:1 like ID-1 cards).
        rng: the document's random generator.
    """
    accent, ink = accent_color(rng), ink_color(rng)
    radius = canvas.px(rng.uniform(30, 50))
    canvas.outline_mask = Image.new("L", canvas.image.size, 0)
    ImageDraw.Draw(canvas.outline_mask).rounded_rectangle([0, 0, canvas.width - 1, canvas.height - 1], radius=radius, fill=255)
    draw_guilloche(canvas, rng, tint(accent, rng.uniform(0.55, 0.75)), int(rng.integers(6, 14)))
    inset = canvas.px(6)
    canvas.draw.rounded_rectangle([inset, inset, canvas.width - inset, canvas.height - inset], radius=radius - inset, outline=accent, width=canvas.px(3))
    band_bottom = _header_band(canvas, rng, accent, radius)
    has_mrz = rng.random() < 0.6
    mrz_top = canvas.height - canvas.px(155) if has_mrz else canvas.height - canvas.px(30)
    photo_left, photo_top = canvas.px(40), band_bottom + canvas.px(25)
    photo_bottom = mrz_top - canvas.px(90 if has_mrz else 100)
    photo_right = photo_left + round((photo_bottom - photo_top) * 0.78)
    draw_photo(canvas, rng, (photo_left, photo_top, photo_right, photo_bottom))
    draw_signature(canvas, rng, photo_left, photo_bottom + canvas.px(8), photo_right - photo_left, canvas.px(55), ink)
    surname, given = text.pick(rng, text.LAST_NAMES).upper(), text.pick(rng, text.FIRST_NAMES).upper()
    _fields(canvas, rng, (photo_right + canvas.px(35), photo_top, photo_bottom), (surname, given), accent, ink)
    if has_mrz:
        _machine_readable_zone(canvas, rng, mrz_top, (surname, given), ink)
    elif rng.random() < 0.6:
        draw_chip(canvas, canvas.width - canvas.px(170), canvas.height - canvas.px(150), canvas.px(110))


def _header_band(canvas: PageCanvas, rng: np.random.Generator, accent: Color, radius: int) -> int:
    """Issuing state and card kind, on a coloured band or straight on the card.

    Returns:
        The y coordinate below the header.
    """
    band_bottom = canvas.px(rng.uniform(105, 130))
    on_band = rng.random() < 0.6
    if on_band:
        canvas.draw.rounded_rectangle([0, 0, canvas.width, band_bottom], radius=radius, fill=accent, corners=(True, True, False, False))
    color = (255, 255, 255) if on_band else accent
    state = f"{text.pick(rng, text.CAPITAL_WORDS)} OF {text.pick(rng, text.COUNTRY_NAMES)}"
    state_font = canvas.fitted_font("sans_bold", rng.uniform(28, 46), state, canvas.width - 2 * radius)
    kind_font = canvas.font(text.pick(rng, ("sans", "serif")), rng.uniform(18, 28))
    total = line_height(state_font, 1.15) + kind_font.size
    y = (band_bottom - total) / 2
    canvas.write(canvas.width / 2, y, state, state_font, color, "center")
    canvas.write(canvas.width / 2, y + line_height(state_font, 1.15), text.pick(rng, CARD_KINDS), kind_font, color, "center")
    return band_bottom


def _fields(
    canvas: PageCanvas, rng: np.random.Generator, block: tuple[int, int, int], names: tuple[str, str], accent: Color, ink: Color
) -> None:
    """Small labels with bold values in two columns to the right of the photo.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        block: (left, top, bottom) of the field block in pixels.
        names: (surname, given name).
        accent: label colour.
        ink: value colour.
    """
    left, top, bottom = block
    label_font = canvas.font("sans", rng.uniform(12, 15))
    value_font = canvas.font(text.pick(rng, ("sans_bold", "mono_bold")), rng.uniform(21, 28))
    second_column = left + (canvas.width - canvas.px(40) - left) * 0.5
    rows = (
        (("Surname", names[0]),),
        (("Given names", names[1]),),
        (("Date of birth", text.date_text(rng)), ("Sex", text.pick(rng, ("F", "M")))),
        (("Nationality", text.pick(rng, text.COUNTRY_NAMES)[:3]), ("Date of expiry", text.date_text(rng))),
        (("Place of birth", text.pick(rng, text.CITIES).upper()), ("Issued", text.date_text(rng))),
        (("Document No.", text.alphanumeric(rng, 9)),),
    )
    natural_pitch = line_height(label_font, 1.2) + line_height(value_font, 1.25)
    # Spread the rows over the photo's height, but never squeeze them below their natural pitch.
    pitch = max(natural_pitch, min(natural_pitch * 1.4, (bottom - top) / len(rows)))
    for index, row in enumerate(rows):
        y = top + index * pitch
        for column, (label, value) in enumerate(row):
            x = left if column == 0 else second_column
            canvas.write(x, y, label, label_font, accent)
            canvas.write(x, y + line_height(label_font, 1.2), value, value_font, ink)


def _machine_readable_zone(canvas: PageCanvas, rng: np.random.Generator, top: int, names: tuple[str, str], ink: Color) -> None:
    """Three 30-character TD1 machine-readable lines spanning most of the card width."""
    country = text.pick(rng, text.COUNTRY_NAMES)[:3]
    digits = "".join(str(d) for d in rng.integers(0, 10, size=14))
    name_field = f"{names[0]}<<{names[1]}"
    lines = (
        f"I<{country}{text.alphanumeric(rng, 9)}{digits[0]}".ljust(30, "<"),
        f"{digits[1:7]}{digits[7]}{text.pick(rng, ('F', 'M'))}{digits[8:14]}{country}".ljust(29, "<") + digits[0],
        name_field[:30].ljust(30, "<"),
    )
    font = canvas.fitted_font("mono", 42, lines[0], canvas.width * 0.76)
    pitch = round(font.size * 1.12)
    for index, line in enumerate(lines):
        canvas.write(canvas.width / 2, top + index * pitch, line, font, ink, "center")
