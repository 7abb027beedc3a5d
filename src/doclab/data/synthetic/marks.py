"""Non-text page marks: logos, stamps, barcodes, signatures, photos, card art.

These are distractors for a text detector: they are drawn directly on the
page and never annotated, including the rotated text inside stamps.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from doclab.data.synthetic.canvas import FONT_FILES, Color, PageCanvas, load_font, tint

PHOTO_BACKGROUNDS: tuple[Color, ...] = ((196, 214, 232), (222, 222, 218), (240, 240, 236), (205, 215, 205))
SKIN_TONES: tuple[Color, ...] = ((241, 206, 180), (224, 172, 136), (198, 134, 96), (141, 85, 54), (92, 58, 38))


def draw_logo(canvas: PageCanvas, rng: np.random.Generator, x: float, y: float, size: float, color: Color) -> None:
    """Draw a geometric company logo with its top-left corner at (x, y).

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        x: left edge in pixels.
        y: top edge in pixels.
        size: logo width and height in pixels.
        color: main logo colour.
    """
    draw, light = canvas.draw, tint(color, 0.55)
    kind = int(rng.integers(4))
    if kind == 0:
        draw.ellipse([x, y, x + size, y + size], fill=color)
        inset = size * 0.22
        draw.ellipse([x + inset, y + inset, x + size - inset, y + size - inset], fill=light)
    elif kind == 1:
        for step in range(3):
            top = y + step * size / 3
            draw.rectangle([x + step * size / 6, top, x + size, top + size / 4], fill=color if step % 2 == 0 else light)
    elif kind == 2:
        draw.polygon([(x, y + size), (x + size * 0.4, y), (x + size * 0.7, y + size * 0.6), (x + size, y + size)], fill=color)
        draw.ellipse([x + size * 0.62, y + size * 0.05, x + size * 0.9, y + size * 0.33], fill=light)
    else:
        half = size / 2
        draw.polygon([(x + half, y), (x + size, y + half), (x + half, y + size), (x, y + half)], fill=color)
        draw.rectangle([x + half * 0.6, y + half * 0.6, x + size - half * 0.6, y + size - half * 0.6], fill=light)


def draw_stamp(canvas: PageCanvas, rng: np.random.Generator, center: tuple[float, float], size: float, lines: list[str], color: Color) -> None:
    """Draw a rotated, semi-transparent ink stamp whose text is deliberately not annotated.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        center: stamp centre in page pixels.
        size: stamp width in pixels.
        lines: text lines printed inside the stamp.
        color: stamp ink colour.
    """
    # Small pages still get a legible stamp shape rather than a degenerate one.
    width, height = max(40, round(size)), max(24, round(size * 0.6))
    stamp = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(stamp)
    border = max(1, round(size / 45))
    draw.rounded_rectangle([border, border, width - border - 1, height - border - 1], radius=height // 6, outline=255, width=border)
    inner = 3 * border
    draw.rounded_rectangle([inner, inner, width - inner - 1, height - inner - 1], radius=height // 8, outline=255, width=max(1, border // 2))
    for row, text in enumerate(lines):
        font = load_font(FONT_FILES["sans_bold"], max(8, round(height * (0.3 if row == 0 else 0.14))))
        draw.text((width / 2, height * (0.42 if row == 0 else 0.72)), text, font=font, fill=255, anchor="mm")
    # Uneven ink: real stamps print patchily, which also keeps them from looking like clean text.
    patchiness = rng.uniform(0.55, 1.0, size=(height, width)).astype(np.float32)
    alpha = (np.asarray(stamp, dtype=np.float32) * patchiness * rng.uniform(0.6, 0.9)).astype(np.uint8)
    rotated = Image.fromarray(alpha).rotate(float(rng.uniform(-30, 30)), resample=Image.Resampling.BILINEAR, expand=True)
    position = (round(center[0] - rotated.width / 2), round(center[1] - rotated.height / 2))
    canvas.image.paste(color, (*position, position[0] + rotated.width, position[1] + rotated.height), rotated)


def draw_barcode(canvas: PageCanvas, rng: np.random.Generator, x: float, y: float, width: float, height: float, color: Color) -> None:
    """Draw a 1-D barcode of random bar widths filling the given box.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        x: left edge in pixels.
        y: top edge in pixels.
        width: barcode width in pixels.
        height: bar height in pixels.
        color: bar colour.
    """
    # Whole-pixel bars: Pillow rounds fractional corners, which can invert one-pixel-wide rectangles.
    module = max(1, round(width / 110))
    cursor, end, top, bottom = round(x), round(x + width), round(y), round(y + height)
    dark = True
    while True:
        bar = module * int(rng.integers(1, 4))
        if cursor + bar > end:
            return
        if dark:
            canvas.draw.rectangle([cursor, top, cursor + bar - 1, bottom], fill=color)
        cursor, dark = cursor + bar, not dark


def draw_signature(canvas: PageCanvas, rng: np.random.Generator, x: float, y: float, width: float, height: float, color: Color) -> None:
    """Draw a looping handwritten-looking scribble inside the given box.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        x: left edge in pixels.
        y: top edge in pixels.
        width: box width in pixels.
        height: box height in pixels.
        color: pen colour.
    """
    t = np.linspace(0.0, 1.0, 240)
    xs = x + width * (0.05 + 0.9 * t)
    ys = np.full_like(t, y + height / 2)
    # A few incommensurate harmonics give irregular loops rather than a regular coil.
    for _ in range(3):
        frequency = rng.uniform(2, 11)
        phase = rng.uniform(0, 2 * np.pi)
        xs += width * rng.uniform(0.01, 0.05) * np.cos(2 * np.pi * frequency * t + phase)
        ys += height * rng.uniform(0.08, 0.22) * np.sin(2 * np.pi * frequency * t + phase + rng.uniform(0.5, 2.5))
    points = list(zip(xs.tolist(), ys.tolist()))
    pen_width = max(1, round(height / 20))
    split = int(rng.integers(60, 180))
    canvas.draw.line(points[:split], fill=color, width=pen_width, joint="curve")
    canvas.draw.line(points[split + 8 :], fill=color, width=pen_width, joint="curve")
    if rng.random() < 0.5:
        flourish_y = y + height * rng.uniform(0.75, 0.95)
        canvas.draw.line([(x + width * 0.1, flourish_y), (x + width * 0.95, flourish_y - height * 0.15)], fill=color, width=pen_width)


def draw_photo(canvas: PageCanvas, rng: np.random.Generator, box: tuple[float, float, float, float]) -> None:
    """Draw an ID photo: tinted background with a head-and-shoulders silhouette.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        box: (left, top, right, bottom) of the photo in pixels.
    """
    left, top, right, bottom = (round(v) for v in box)
    width, height = right - left, bottom - top
    background = PHOTO_BACKGROUNDS[int(rng.integers(len(PHOTO_BACKGROUNDS)))]
    # Drawn on its own image so the shoulders are cut off at the photo edge.
    photo = Image.new("RGB", (width, height), background)
    draw = ImageDraw.Draw(photo)
    draw.ellipse([width * 0.08, height * 0.68, width * 0.92, height * 1.35], fill=tuple(int(v) for v in rng.integers(20, 90, size=3)))
    draw.ellipse([width * 0.3, height * 0.16, width * 0.7, height * 0.66], fill=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))])
    canvas.image.paste(photo, (left, top))
    canvas.draw.rectangle([left, top, right, bottom], outline=(90, 90, 90), width=max(1, round(width / 120)))


def draw_guilloche(canvas: PageCanvas, rng: np.random.Generator, color: Color, count: int) -> None:
    """Draw faint interleaved sine waves across the page, like security printing on cards.

    Args:
        canvas: page to draw on.
        rng: the document's random generator.
        color: line colour (should be light).
        count: number of waves.
    """
    xs = np.linspace(0, canvas.width, 120)
    for _ in range(count):
        center, amplitude = rng.uniform(0, canvas.height), rng.uniform(0.05, 0.2) * canvas.height
        ys = center + amplitude * np.sin(xs / canvas.width * 2 * np.pi * rng.uniform(1, 4) + rng.uniform(0, 6))
        canvas.draw.line(list(zip(xs.tolist(), ys.tolist())), fill=color, width=1)


def draw_chip(canvas: PageCanvas, x: float, y: float, size: float) -> None:
    """Draw a gold smart-card chip with its contact pads.

    Args:
        canvas: page to draw on.
        x: left edge in pixels.
        y: top edge in pixels.
        size: chip width in pixels (height is 0.8 of it).
    """
    height = size * 0.8
    canvas.draw.rounded_rectangle([x, y, x + size, y + height], radius=size / 6, fill=(212, 175, 90), outline=(150, 115, 40), width=2)
    for fraction in (1 / 3, 2 / 3):
        canvas.draw.line([(x, y + height * fraction), (x + size, y + height * fraction)], fill=(150, 115, 40), width=2)
    canvas.draw.line([(x + size / 2, y), (x + size / 2, y + height)], fill=(150, 115, 40), width=2)
