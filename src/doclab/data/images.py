"""Robust image reading: any mode to RGB, EXIF orientation applied, huge scans decoded small."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from doclab.data.records import DataError

# A 600 dpi A3 scan is ~70 Mpx; beyond this a file is more likely a decompression bomb.
Image.MAX_IMAGE_PIXELS = 200_000_000

EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transpose that makes the image upright (as PIL.ImageOps.exif_transpose does).
TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _to_rgb(image: Image.Image) -> Image.Image:
    """Normalise grayscale, 16-bit/float, palette, alpha and CMYK images to 8-bit RGB."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        low, high = float(pixels.min()), float(pixels.max())
        scaled = (pixels - low) * (255.0 / (high - low)) if high > low else np.zeros_like(pixels)
        image = Image.fromarray(scaled.round().astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA"):
        # Transparent areas of scans/exports are paper, so composite on white rather than black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def exif_point_transform(orientation: int, width: int, height: int):
    """Map points from the stored pixel frame to the EXIF-upright frame.

    Args:
        orientation: EXIF orientation tag (1-8).
        width, height: stored (pre-rotation) image size.
    Returns:
        f(points (N, 2)) -> (N, 2), matching what `PIL.ImageOps.exif_transpose` does to pixels.
    """
    w, h = float(width), float(height)
    maps = {
        2: lambda x, y: (w - x, y),
        3: lambda x, y: (w - x, h - y),
        4: lambda x, y: (x, h - y),
        5: lambda x, y: (y, x),
        6: lambda x, y: (h - y, x),
        7: lambda x, y: (h - y, w - x),
        8: lambda x, y: (y, w - x),
    }
    fn = maps.get(orientation, lambda x, y: (x, y))

    def transform(points: np.ndarray) -> np.ndarray:
        x, y = fn(points[:, 0], points[:, 1])
        return np.stack([x, y], axis=1)

    return transform


def read_image(path: str | Path, max_side: int | None = None) -> tuple[np.ndarray, int, tuple[int, int]]:
    """Read an image file as upright RGB, decoding large JPEGs at reduced size.

    Args:
        path: image file.
        max_side: if given, JPEGs are DCT-decoded at the smallest power-of-two reduction whose
            longest side still is >= max_side, so a 4961x7016 scan never occupies full memory.
    Returns:
        (pixels (H, W, 3) uint8 in the upright frame, EXIF orientation (1 = none),
         stored size (width, height) before any reduction or rotation).
    Raises:
        DataError: missing, empty, unreadable, truncated or corrupt file (one line naming it).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: image file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty (0-byte) image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                stored_size = image.size
                tag = image.getexif().get(EXIF_ORIENTATION, 1)
                orientation = tag if isinstance(tag, int) and 1 <= tag <= 8 else 1
                if max_side and image.format == "JPEG":
                    # draft() keeps both sides >= the box it is given: ask for the image's own aspect
                    # ratio, so the longest side decides and a tall receipt is reduced like a page.
                    longest = max(stored_size)
                    image.draft("RGB", tuple(max(1, -(-max_side * side // longest)) for side in stored_size))
                image.load()
                if orientation in TRANSPOSE:
                    # Not ImageOps.exif_transpose: it re-encodes the EXIF block and raises struct.error
                    # on a corrupt tag of an otherwise good photo; only the pixels are kept here.
                    image = image.transpose(TRANSPOSE[orientation])
                rgb = _to_rgb(image)
    except UnidentifiedImageError:
        raise DataError(f"{path}: not a readable image (unknown format or corrupt header)") from None
    except PermissionError:
        raise DataError(f"{path}: not readable (permission denied)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{path}: corrupt or truncated image ({exc})") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image larger than {Image.MAX_IMAGE_PIXELS} pixels") from None
    pixels = np.asarray(rgb, dtype=np.uint8)
    return pixels, orientation, stored_size
