"""Turn a flat synthetic page into a camera/scanner image.

Paper texture, placement of the page on a background with a rotation and
perspective homography, lighting, blur, sensor noise and JPEG artifacts. The
same homography is applied to the word boxes so they stay on the glyphs.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

# Gap in pixels kept between the warped page and the image border so that
# warped word corners can never fall outside the image.
PAGE_MARGIN_PX = 2.0
BACKGROUND_COLORS = ((120, 86, 58), (62, 62, 64), (140, 138, 132), (222, 222, 216), (48, 66, 98), (160, 150, 128))


def smooth_field(rng: np.random.Generator, height: int, width: int, cells: int, channels: int = 1) -> np.ndarray:
    """Low-frequency random field of roughly unit amplitude, made by upsampling a coarse grid.

    Args:
        rng: the document's random generator.
        height: output height in pixels.
        width: output width in pixels.
        cells: number of random grid cells along the long side.
        channels: 1 gives an (H, W) field, more gives (H, W, channels).

    Returns:
        float32 field of the requested shape.
    """
    scale = cells / max(height, width)
    grid = rng.standard_normal((max(2, round(height * scale)), max(2, round(width * scale)), channels), dtype=np.float32)
    # Cubic to 1/8 size keeps the field smooth; the final linear step is cheap at full size.
    coarse = cv2.resize(grid, (max(2, width // 8), max(2, height // 8)), interpolation=cv2.INTER_CUBIC)
    field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)
    return field.reshape(height, width, channels) if channels > 1 else field.reshape(height, width)


def paper_texture(rng: np.random.Generator, height: int, width: int, color: tuple[int, int, int]) -> np.ndarray:
    """Paper of the given colour with a blotchy low-frequency tint and fine grain.

    Args:
        rng: the document's random generator.
        height: page height in pixels.
        width: page width in pixels.
        color: mean RGB paper colour.

    Returns:
        (H, W, 3) uint8 RGB paper.
    """
    field = smooth_field(rng, height, width, int(rng.integers(3, 9))) * rng.uniform(1.5, 5.0)
    # Uniform integer grain is several times cheaper to draw than Gaussian and looks the same on paper.
    grain = int(rng.integers(1, 5))
    field += rng.integers(-grain, grain + 1, size=(height, width), dtype=np.int8)
    paper = np.empty((height, width, 3), np.uint8)
    for channel, level in enumerate(color):
        paper[..., channel] = np.clip(field + level, 0, 255)
    return paper


def background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Surface the page lies on: a table, cloth or scanner lid with uneven colour.

    Args:
        rng: the document's random generator.
        height: background height in pixels.
        width: background width in pixels.

    Returns:
        (H, W, 3) float32 RGB background.
    """
    base = np.asarray(BACKGROUND_COLORS[int(rng.integers(len(BACKGROUND_COLORS)))], dtype=np.float32)
    base = base + rng.uniform(-15, 15, size=3).astype(np.float32)
    variation = smooth_field(rng, height, width, 6, channels=3) * 10 + smooth_field(rng, height, width, 40)[..., None] * 4
    return np.clip(base + variation, 0, 255)


def page_homography(
    rng: np.random.Generator, page_size: tuple[int, int], image_size: tuple[int, int], max_rotation_deg: float, max_skew: float
) -> np.ndarray:
    """Random rotation + perspective mapping the page into the image, fully inside it.

    Args:
        rng: the document's random generator.
        page_size: (width, height) of the flat page in pixels.
        image_size: (width, height) of the output image in pixels.
        max_rotation_deg: largest in-plane rotation in degrees.
        max_skew: largest corner displacement as a fraction of the page's long side.

    Returns:
        3x3 float64 homography from page pixel coordinates to image pixel coordinates.
    """
    page_w, page_h = page_size
    corners = np.array([[0, 0], [page_w, 0], [page_w, page_h], [0, page_h]], dtype=np.float64)
    angle = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    target = (corners - corners.mean(axis=0)) @ rotation.T
    target += rng.uniform(-1, 1, size=(4, 2)) * max_skew * max(page_w, page_h)
    # Shrink (never enlarge) so the rotated page fits, then place it anywhere that keeps it inside.
    limit = np.asarray(image_size, dtype=np.float64) - 2 * PAGE_MARGIN_PX
    target *= min(1.0, *(limit / (target.max(axis=0) - target.min(axis=0))))
    low = PAGE_MARGIN_PX - target.min(axis=0)
    high = np.asarray(image_size) - PAGE_MARGIN_PX - target.max(axis=0)
    target += rng.uniform(low, np.maximum(low, high))
    return cv2.getPerspectiveTransform(corners.astype(np.float32), target.astype(np.float32))


def place_page(
    rng: np.random.Generator, page: Image.Image, outline: Image.Image | None, homography: np.ndarray, image_size: tuple[int, int]
) -> np.ndarray:
    """Warp the page onto a background, with a soft drop shadow around it.

    Args:
        rng: the document's random generator.
        page: the flat RGB page.
        outline: "L" mask of the page's outline, or None for a full rectangle.
        homography: page-to-image homography from ``page_homography``.
        image_size: (width, height) of the output image.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    width, height = image_size
    page_mask = np.full((page.height, page.width), 255, np.uint8) if outline is None else np.asarray(outline)
    warped = cv2.warpPerspective(np.asarray(page), homography, image_size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(page_mask, homography, image_size, flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    # The background and its shadow only carry coarse detail, so they are made at 1/4 size.
    small_size = (max(2, width // 4), max(2, height // 4))
    to_small = np.diag([small_size[0] / width, small_size[1] / height, 1.0])
    small_alpha = cv2.warpPerspective(page_mask, to_small @ homography, small_size, flags=cv2.INTER_LINEAR).astype(np.float32) / 255
    shadow = cv2.GaussianBlur(small_alpha, (0, 0), rng.uniform(2.0, 6.0))
    surface = background(rng, small_size[1], small_size[0]) * (1 - rng.uniform(0.2, 0.5) * shadow)[..., None]
    surface = cv2.resize(surface.astype(np.uint8), image_size, interpolation=cv2.INTER_LINEAR)
    return cv2.blendLinear(warped, surface, alpha, 1 - alpha)


def shadow_gradient(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Multiplicative shade that darkens one side of the image, like a hand or phone shadow.

    Args:
        rng: the document's random generator.
        height: image height in pixels.
        width: image width in pixels.

    Returns:
        (H, W) float32 factors in (0, 1].
    """
    # The shade is piecewise linear, so computing it at 1/8 size and upsampling linearly is near exact.
    small_w, small_h = max(2, width // 8), max(2, height // 8)
    direction = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(0, 1, small_w, dtype=np.float32)[None, :] * np.cos(direction) * width
    ramp = ramp + np.linspace(0, 1, small_h, dtype=np.float32)[:, None] * np.sin(direction) * height
    ramp = (ramp - ramp.min()) / max(1e-6, float(ramp.max() - ramp.min()))
    edge, softness = rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.4)
    shade = 1 - rng.uniform(0.15, 0.45) * np.clip((ramp - edge) / softness, 0, 1)
    return cv2.resize(shade.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def photograph_effects(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Lighting colour cast and shadow, then random blur, sensor noise and JPEG compression.

    Args:
        rng: the document's random generator.
        image: (H, W, 3) uint8 RGB image.

    Returns:
        (H, W, 3) uint8 RGB image.
    """
    height, width = image.shape[:2]
    gains = rng.uniform(0.86, 1.04) * rng.uniform(0.95, 1.03, size=3)
    # Everything stays uint8 (lookup table, saturating OpenCV arithmetic) to avoid full-size float passes.
    table = np.clip(np.arange(256)[:, None] * gains[None, :], 0, 255).astype(np.uint8).reshape(256, 1, 3)
    result = cv2.LUT(image, table)
    if rng.random() < 0.5:
        shade = np.round(shadow_gradient(rng, height, width) * 255).astype(np.uint8)
        result = cv2.multiply(result, cv2.cvtColor(shade, cv2.COLOR_GRAY2RGB), scale=1 / 255)
    if rng.random() < 0.35:
        result = cv2.GaussianBlur(result, (0, 0), rng.uniform(0.4, 1.1))
    if rng.random() < 0.5:
        noise = rng.standard_normal((height, width), dtype=np.float32) * np.float32(rng.uniform(2.0, 7.0))
        result = cv2.add(result, cv2.cvtColor(noise, cv2.COLOR_GRAY2RGB), dtype=cv2.CV_8U)
    if rng.random() < 0.5:
        quality = int(rng.integers(30, 92))
        encoded = cv2.imencode(".jpg", result[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        result = np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])
    return result


def warp_boxes(boxes: list[tuple[int, int, int, int]], homography: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Map axis-aligned page boxes to image quadrilaterals with the page homography.

    Args:
        boxes: (left, top, right, bottom) ink boxes in page pixels.
        homography: the homography the page image was warped with.
        image_size: (width, height) of the output image, used to clip.

    Returns:
        (N, 4, 2) float32 corners, clockwise from the top-left (in image coordinates, y down).
    """
    if not boxes:
        return np.zeros((0, 4, 2), np.float32)
    left, top, right, bottom = np.asarray(boxes, dtype=np.float32).T
    corners = np.stack([left, top, right, top, right, bottom, left, bottom], axis=1).reshape(-1, 1, 2)
    warped = cv2.perspectiveTransform(corners, homography).reshape(-1, 4, 2)
    limit = np.asarray(image_size, dtype=np.float32) - 1
    return np.clip(warped, 0, limit).astype(np.float32)
