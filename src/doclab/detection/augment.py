"""Albumentations pipelines for DBNet that keep word polygons in sync with the image.

All polygons of an image travel as ONE flat keypoint list plus a per-point polygon
index (`poly_index`), so every spatial transform moves them exactly as it moves the
pixels; `apply_transform` regroups them afterwards. The input rule (`detector.input`) decides
the size: under `long_side` both pipelines end with LongestMaxSize + top-left PadIfNeeded to
S x S; under `short_side` the image is scaled by `data.pixels.input_scale`, training takes a
random S x S crop and evaluation pads the whole image to multiples of 32. Either way content
coordinates are simply `original * scale` with `scale = input_scale(...)` (eval transform).

A valid-pixel mask rides along as well: it marks where real image pixels ended up
(not rotation corners, not padding), which is how polygons pushed partly off the
image are recognised and marked don't-care.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.augmentations.geometric.resize import MaxSizeTransform

from doclab.config import AugmentParams, InputParams
from doclab.data.pixels import STRIDE, input_scale

# A polygon that keeps less than this fraction of its area on real pixels was cut by
# the crop window, a rotation corner or a zoom; its remaining part is unreliable text.
KEEP_AREA_FRACTION = 0.95
_SHIFT_BITS = 3  # sub-pixel precision of cv2.fillPoly when measuring cut polygons


class TextSafeCrop(A.DualTransform):
    """Random crop whose edges lie in the gaps between words (DBNet's EastRandomCropData idea).

    Each word's bounding box forbids cut positions strictly inside its x and y range, so
    every word ends up fully inside or fully outside the window. The window covers at
    least `min_area` of the image and contains at least one word; if no such window is
    found in `max_tries` draws the image is left whole. Needs the Compose built with
    `KeypointParams(label_fields=["poly_index"])`: the polygon index is the keypoints'
    last column.

    Args:
        min_area: min window area as a fraction of the image area.
        max_tries: window draws before giving up.
        p: probability of cropping.
    """

    def __init__(self, min_area: float = 0.5, max_tries: int = 20, p: float = 0.3):
        super().__init__(p=p)
        self.min_area = min_area
        self.max_tries = max_tries

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("min_area", "max_tries")

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        boxes = _word_boxes(data.get("keypoints"))
        free_x = _free_cuts(boxes[:, 0], boxes[:, 2], width)
        free_y = _free_cuts(boxes[:, 1], boxes[:, 3], height)
        rng = self.random_generator
        for _ in range(self.max_tries):
            frac_w = rng.uniform(self.min_area, 1.0)
            frac_h = rng.uniform(self.min_area / frac_w, 1.0)
            x0, x1 = _pick_span(free_x, frac_w * width, rng)
            y0, y1 = _pick_span(free_y, frac_h * height, rng)
            inside = (boxes[:, 0] >= x0) & (boxes[:, 2] <= x1) & (boxes[:, 1] >= y0) & (boxes[:, 3] <= y1)
            if inside.any() or not len(boxes):
                return {"window": (x0, y0, x1, y1)}
        return {"window": (0, 0, width, height)}

    def apply(self, img: np.ndarray, window: tuple[int, int, int, int], **params: Any) -> np.ndarray:
        x0, y0, x1, y1 = window
        return np.ascontiguousarray(img[y0:y1, x0:x1])

    def apply_to_keypoints(self, keypoints: np.ndarray, window: tuple[int, int, int, int],
                           **params: Any) -> np.ndarray:
        shifted = keypoints.copy()
        shifted[:, :2] -= np.array(window[:2], dtype=shifted.dtype)
        return shifted


def _word_boxes(keypoints: np.ndarray | None) -> np.ndarray:
    """(M, 4) x_min, y_min, x_max, y_max per polygon from internal keypoints (last column = index)."""
    if keypoints is None or not len(keypoints):
        return np.zeros((0, 4))
    order = np.argsort(keypoints[:, -1], kind="stable")
    points, index = keypoints[order, :2], keypoints[order, -1]
    starts = np.flatnonzero(np.r_[True, np.diff(index) != 0])
    return np.c_[np.minimum.reduceat(points, starts), np.maximum.reduceat(points, starts)]


def _free_cuts(lows: np.ndarray, highs: np.ndarray, size: int) -> np.ndarray:
    """(size + 1,) bool: True at integer cut positions c with c <= low or c >= high for every word."""
    delta = np.zeros(size + 2, np.int64)
    first = np.clip(np.floor(lows).astype(np.int64) + 1, 0, size + 1)
    stop = np.clip(np.ceil(highs).astype(np.int64), 0, size + 1)
    valid = first < stop
    np.add.at(delta, first[valid], 1)
    np.add.at(delta, stop[valid], -1)
    return np.cumsum(delta)[: size + 1] == 0


def _pick_span(free: np.ndarray, min_length: float, rng: np.random.Generator) -> tuple[int, int]:
    """Random start and end among free cuts, at least `min_length` apart (0 and size always qualify)."""
    cuts = np.flatnonzero(free)
    size = len(free) - 1
    start = int(rng.choice(cuts[cuts <= size - min_length]))
    end = int(rng.choice(cuts[cuts >= start + min_length]))
    return start, end


class RuleResize(MaxSizeTransform):
    """Resize by `data.pixels.input_scale` (aspect kept, sizes rounded as LongestMaxSize rounds them).

    Args:
        size: S, the side the rule scales to.
        rule: the input rule (resize, max_side).
    """

    def __init__(self, size: int, rule: InputParams):
        super().__init__(max_size=size, interpolation=cv2.INTER_LINEAR, p=1.0)
        self.rule = rule

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("max_size", "rule")

    def get_params_dependent_on_data(self, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        height, width = params["shape"][:2]
        return {"scale": input_scale(height, width, self.max_size, self.rule.resize, self.rule.max_side)}


def _keypoint_params() -> A.KeypointParams:
    # remove_invisible=False: dropping points would break polygons; cut ones are judged later.
    return A.KeypointParams(format="xy", label_fields=["poly_index"], remove_invisible=False)


def _resize_and_pad(image_size: int, pixel: Sequence[A.BasicTransform] = ()) -> list[A.BasicTransform]:
    # Bilinear, not INTER_AREA (5x slower at non-integer ratios): preprocess stores images at
    # about the training size, and down to a factor 0.5 bilinear averages like INTER_AREA.
    # Pixel augments run before the padding so the padded area stays exactly 0, as at inference.
    return [
        A.LongestMaxSize(max_size=image_size, interpolation=cv2.INTER_LINEAR),
        *pixel,
        A.PadIfNeeded(image_size, image_size, position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=0,
                      fill_mask=0),
    ]


def _pixel_transforms(aug: AugmentParams) -> list[A.BasicTransform]:
    return [
        A.RandomBrightnessContrast(brightness_limit=aug.brightness, contrast_limit=aug.contrast,
                                   p=aug.brightness_contrast_p),
        A.CLAHE(p=aug.clahe_p),
        # Grey noise (same on every channel), like scanner noise; half the cost of per-channel.
        A.GaussNoise(std_range=(0.0, aug.noise_std), per_channel=False, p=aug.noise_p),
        A.OneOf([A.Blur(blur_limit=(3, aug.blur_limit)), A.MotionBlur(blur_limit=(3, aug.blur_limit))],
                p=aug.blur_p),
    ]


def _warps(aug: AugmentParams) -> list[A.BasicTransform]:
    border = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0, "fill_mask": 0}
    return [
        A.Rotate(limit=aug.rotate_limit, p=aug.rotate_p, **border),
        A.Affine(scale=(aug.scale_min, aug.scale_max), shear=(-aug.shear_limit, aug.shear_limit), keep_ratio=True,
                 p=aug.affine_p, **border),
        A.Perspective(scale=(aug.perspective_min, aug.perspective_max), keep_size=True, p=aug.perspective_p,
                      **border),
    ]


def build_train_transform(aug: AugmentParams, image_size: int, rule: InputParams = InputParams()) -> A.Compose:
    """Training pipeline: the input rule's resize, warps, pixel noise, and an S x S output.

    `long_side`: text-safe crop, warps, LongestMaxSize(S), pixel noise, pad to S x S.
    `short_side`: resize by the rule, warps, pixel noise, pad to at least S, random S x S crop
    (words the crop cuts become don't-care, see `apply_transform`); `crop_p` is not used.

    Args:
        aug: augmentation knobs.
        image_size: output side S; the image is (S, S, 3) uint8, content at the top-left.
        rule: `detector.input`.
    Returns:
        A Compose taking `image`, `mask`, `keypoints` (K, 2) and `poly_index` (K,); call it
        through `apply_transform`.
    """
    if rule.resize == "long_side":
        steps = [TextSafeCrop(min_area=aug.crop_min_area, p=aug.crop_p), *_warps(aug),
                 *_resize_and_pad(image_size, _pixel_transforms(aug))]
    else:
        steps = [RuleResize(image_size, rule), *_warps(aug), *_pixel_transforms(aug),
                 A.PadIfNeeded(image_size, image_size, position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=0,
                               fill_mask=0),
                 A.RandomCrop(image_size, image_size)]
    return A.Compose(steps, keypoint_params=_keypoint_params())


def build_eval_transform(image_size: int, rule: InputParams = InputParams()) -> A.Compose:
    """Deterministic pipeline; points scale by `data.pixels.input_scale(h, w, S, rule...)`.

    `long_side`: LongestMaxSize(S) + top-left pad to (S, S). `short_side`: the rule's resize +
    top-left pad to multiples of 32 (`data.pixels.input_shape`).
    """
    if rule.resize == "long_side":
        return A.Compose(_resize_and_pad(image_size), keypoint_params=_keypoint_params())
    pad = A.PadIfNeeded(min_height=None, min_width=None, pad_height_divisor=STRIDE, pad_width_divisor=STRIDE,
                        position="top_left", border_mode=cv2.BORDER_CONSTANT, fill=0, fill_mask=0)
    return A.Compose([RuleResize(image_size, rule), pad], keypoint_params=_keypoint_params())


def apply_transform(transform: A.Compose, image: np.ndarray, polygons: Sequence[np.ndarray],
                    ignore: Sequence[bool]) -> tuple[np.ndarray, list[np.ndarray], list[bool]]:
    """Run a pipeline on an image and its polygons.

    Args:
        transform: from `build_train_transform` / `build_eval_transform`.
        image: (H, W, 3) uint8 RGB.
        polygons: (N_i, 2) float x, y per polygon, in image pixels.
        ignore: don't-care flag per polygon.
    Returns:
        (image (S, S, 3) uint8, polygons, ignore): polygons with no area left on real
        pixels are dropped; the others keep their order and point count, are clipped to
        the output, and become don't-care when less than KEEP_AREA_FRACTION survived.
    """
    counts = [len(p) for p in polygons]
    keypoints = np.concatenate(polygons).astype(np.float64) if polygons else np.zeros((0, 2))
    poly_index = np.repeat(np.arange(len(polygons)), counts)
    out = transform(image=image, mask=np.ones(image.shape[:2], np.uint8), keypoints=keypoints, poly_index=poly_index)
    moved = _regroup(np.asarray(out["keypoints"])[:, :2], np.asarray(out["poly_index"]), counts)
    valid = out["mask"]
    height, width = valid.shape
    kept_polygons, kept_ignore = [], []
    for polygon, dont_care in zip(moved, ignore):
        fraction = _valid_fraction(polygon, valid)
        if fraction <= 0.0:
            continue
        clipped = np.clip(polygon, 0.0, [float(width), float(height)])
        kept_polygons.append(clipped)
        kept_ignore.append(bool(dont_care) or fraction < KEEP_AREA_FRACTION)
    return out["image"], kept_polygons, kept_ignore


def _regroup(points: np.ndarray, poly_index: np.ndarray, counts: Sequence[int]) -> list[np.ndarray]:
    """Flat (K, 2) keypoints back to one (N_i, 2) array per polygon, in polygon order."""
    order = np.argsort(poly_index, kind="stable")
    return np.split(points[order], np.cumsum(counts)[:-1]) if counts else []


def _valid_fraction(polygon: np.ndarray, valid: np.ndarray) -> float:
    """Fraction of the polygon's pixels that lie on real image pixels (`valid` == 1, outside = 0)."""
    height, width = valid.shape
    low = np.floor(polygon.min(axis=0)).astype(int)
    high = np.ceil(polygon.max(axis=0)).astype(int)
    inner_low, inner_high = np.maximum(low, 0), np.minimum(high, [width, height])
    if (inner_high <= inner_low).any():
        return 0.0
    if (low == inner_low).all() and (high == inner_high).all() and valid[low[1]:high[1], low[0]:high[0]].all():
        return 1.0  # the common case: well inside the picture
    # Pixel i spans [i, i + 1): fill with centres at i + 0.5 to count the pixels it covers.
    raster = np.zeros((high[1] - low[1] + 1, high[0] - low[0] + 1), np.uint8)
    local = np.round((polygon - low - 0.5) * (1 << _SHIFT_BITS)).astype(np.int32)
    cv2.fillPoly(raster, [local], 1, shift=_SHIFT_BITS)
    total = int(raster.sum())
    if total == 0:  # thinner than a pixel: judge by its centre
        x, y = polygon.mean(axis=0).astype(int)
        return float(0 <= x < width and 0 <= y < height and valid[y, x])
    (x0, y0), (x1, y1) = inner_low - low, inner_high - low
    kept = raster[y0:y1, x0:x1] & valid[inner_low[1]:inner_high[1], inner_low[0]:inner_high[0]]
    return int(kept.sum()) / total
