"""Layout of a business letter: letterhead, address block, paragraphs, signature."""

from __future__ import annotations

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
    tint,
)
from doclab.data.synthetic.marks import draw_logo, draw_signature

JOB_TITLES = ("Head of Finance", "Customer Relations Manager", "Managing Director", "Legal Counsel", "Account Manager")
SUBJECTS = ("Contract renewal", "Your application", "Account statement", "Delivery schedule", "Annual inspection")


def render_letter(canvas: PageCanvas, rng: np.random.Generator) -> None:
    """Draw a typed business letter on a portrait page.

    Args:
        canvas: the page (portrait, roughly A4).
        rng: the document's random generator.
    """
    accent, ink = accent_color(rng), ink_color(rng)
    margin = canvas.px(rng.uniform(65, 100))
    body_style = text.pick(rng, ("serif", "serif", "sans"))
    body = canvas.font(body_style, rng.uniform(12.5, 19.0))
    bold = load_font(FONT_FILES[f"{body_style}_bold"], body.size)
    spacing = rng.uniform(1.35, 1.65)
    company = text.company_name(rng)
    y = _letterhead(canvas, rng, margin, company, accent, ink)
    y = _addressing(canvas, rng, y, margin, (body, bold), spacing, ink)
    # Closing lines, signature and footer take about 200 units at the bottom.
    closing_top = canvas.height - margin - canvas.px(200)
    pitch = line_height(body, spacing)
    unused = [text.LETTER_SENTENCES[i] for i in rng.permutation(len(text.LETTER_SENTENCES))]
    while unused:
        count = int(rng.integers(2, 5))
        lines = canvas.wrap(" ".join(unused[:count]), body, canvas.width - 2 * margin)
        unused = unused[count:]
        # Whole paragraphs only: a letter does not stop mid-sentence.
        if y + len(lines) * pitch > closing_top:
            break
        for line in lines:
            canvas.write(margin, y, line, body, ink)
            y += pitch
        y += round(pitch * rng.uniform(0.4, 0.9))
    _closing(canvas, rng, y, margin, (body, bold), spacing, ink)
    _footer(canvas, rng, margin, company, accent, ink)


def _letterhead(canvas: PageCanvas, rng: np.random.Generator, margin: int, company: str, accent: Color, ink: Color) -> int:
    """Company name (centred, or left beside a logo), address line and a coloured rule.

    Returns:
        The y coordinate below the letterhead.
    """
    top = canvas.px(rng.uniform(40, 70))
    name_style, name_size = text.pick(rng, ("serif_bold", "sans_bold")), rng.uniform(28, 62)
    small = canvas.font("sans", rng.uniform(10, 12))
    address = f"{text.street_address(rng)}, {text.city_line(rng)}  Tel {text.phone_number(rng)}"
    if rng.random() < 0.5:
        name_font = canvas.fitted_font(name_style, name_size, company, canvas.width - 2 * margin)
        canvas.write(canvas.width / 2, top, company, name_font, accent, "center")
        y = top + line_height(name_font, 1.25)
        canvas.write(canvas.width / 2, y, address, small, ink, "center")
    else:
        logo_size = canvas.px(rng.uniform(55, 80))
        draw_logo(canvas, rng, margin, top, logo_size, accent)
        x = margin + logo_size + canvas.px(18)
        name_font = canvas.fitted_font(name_style, name_size, company, canvas.width - margin - x)
        canvas.write(x, top, company, name_font, accent)
        y = top + max(line_height(name_font, 1.25), logo_size - line_height(small))
        canvas.write(x, y, address, small, ink)
    y += line_height(small, 1.4) + canvas.px(6)
    canvas.draw.line([(margin, y), (canvas.width - margin, y)], fill=accent, width=max(1, canvas.px(2.5)))
    return y + canvas.px(40)


def _addressing(
    canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int,
    fonts: tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont], spacing: float, ink: Color,
) -> int:
    """Date, recipient address, subject line and salutation.

    Args:
        fonts: regular and bold body fonts.

    Returns:
        The y coordinate where the first paragraph starts.
    """
    body, bold = fonts
    pitch = line_height(body, spacing)
    date_right = rng.random() < 0.5
    canvas.write(canvas.width - margin if date_right else margin, top, text.date_text(rng), body, ink, "right" if date_right else "left")
    y = top + 2 * pitch
    recipient_last = text.pick(rng, text.LAST_NAMES)
    title = text.pick(rng, ("Mr", "Ms", "Dr", "Mrs"))
    recipient = (f"{title} {text.pick(rng, text.FIRST_NAMES)} {recipient_last}", text.company_name(rng), text.street_address(rng), text.city_line(rng))
    for line in recipient:
        canvas.write(margin, y, line, body, ink)
        y += line_height(body, 1.3)
    y += pitch
    canvas.write(margin, y, f"Re: {text.pick(rng, SUBJECTS)} {text.reference_code(rng, 'REF')}", bold, ink)
    y += 2 * pitch
    canvas.write(margin, y, f"Dear {title} {recipient_last},", body, ink)
    return y + round(pitch * 1.6)


def _closing(
    canvas: PageCanvas, rng: np.random.Generator, top: int, margin: int,
    fonts: tuple[ImageFont.FreeTypeFont, ImageFont.FreeTypeFont], spacing: float, ink: Color,
) -> None:
    """Complimentary close, handwritten signature, typed name and job title.

    Args:
        fonts: regular and bold body fonts.
    """
    body, bold = fonts
    pitch = line_height(body, spacing)
    canvas.write(margin, top, text.pick(rng, ("Yours sincerely,", "Kind regards,", "Yours faithfully,")), body, ink)
    signature_height = canvas.px(rng.uniform(40, 60))
    pen = text.pick(rng, ((20, 40, 150), (20, 20, 25)))
    draw_signature(canvas, rng, margin, top + pitch, canvas.px(rng.uniform(130, 220)), signature_height, pen)
    y = top + pitch + signature_height + canvas.px(10)
    canvas.write(margin, y, text.person_name(rng), bold, ink)
    canvas.write(margin, y + pitch, text.pick(rng, JOB_TITLES), body, ink)


def _footer(canvas: PageCanvas, rng: np.random.Generator, margin: int, company: str, accent: Color, ink: Color) -> None:
    """Thin rule and a small centred registration/contact line at the page bottom."""
    small = canvas.font("sans", rng.uniform(9.5, 11))
    y = canvas.height - canvas.px(35) - small.size
    canvas.draw.line([(margin, y - canvas.px(10)), (canvas.width - margin, y - canvas.px(10))], fill=tint(accent, 0.4), width=1)
    line = f"{company}  Registered No {int(rng.integers(100000, 9999999))}  {text.email_address(rng)}"
    canvas.write(canvas.width / 2, y, line, small, ink, "center")
