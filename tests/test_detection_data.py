"""Detection data: augmentations keep polygons on the text, targets, dataset, loader determinism."""
from __future__ import annotations

import json
from dataclasses import replace

import albumentations as A
import cv2
import numpy as np
import pytest
import torch

from doclab.config import AugmentParams, ConfigError, InputParams, build
from doclab.data.records import DataError
from doclab.detection.augment import (
    TextSafeCrop,
    apply_transform,
    build_eval_transform,
    build_train_transform,
)
from doclab.detection.dataset import (
    DetectionDataset,
    collate_detection,
    load_ground_truth,
)
from doclab.engine.device import Runtime
from doclab.engine.loading import reseed
from doclab.engine.recipe import seeded_loader

TARGETS = {"shrink_ratio": 0.4, "thresh_min": 0.3, "thresh_max": 0.7, "min_text_size": 3.0}
INK = 20  # word pixels; the page is 255
# Geometry only: pixel noise would blur the "text is dark" checks.
NO_PIXEL = {"brightness_contrast_p": 0.0, "clahe_p": 0.0, "noise_p": 0.0, "blur_p": 0.0}
NOTHING = AugmentParams(rotate_p=0.0, perspective_p=0.0, affine_p=0.0, crop_p=0.0, **NO_PIXEL)


def _page(width: int, height: int, rows: int, cols: int, margin: int = 40) -> tuple[np.ndarray, list[np.ndarray]]:
    """White page with a grid of dark word rectangles; polygons are their exact outlines."""
    image = np.full((height, width, 3), 255, np.uint8)
    polygons = []
    cell_w, cell_h = (width - 2 * margin) / cols, (height - 2 * margin) / rows
    for r in range(rows):
        for c in range(cols):
            x0, y0 = int(margin + c * cell_w + 5), int(margin + r * cell_h + 5)
            x1, y1 = int(x0 + cell_w * 0.7), int(y0 + min(cell_h * 0.6, 24))
            image[y0:y1, x0:x1] = INK
            polygons.append(np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64))
    return image, polygons


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """A processed folder: two annotated pages (one with a don't-care word) and a classification-only image."""
    root = tmp_path_factory.mktemp("processed")
    (root / "images").mkdir()
    pages = {"a.jpg": _page(400, 300, 4, 3), "b.jpg": _page(300, 500, 6, 2)}
    entries = {}
    for key, (image, polygons) in pages.items():
        cv2.imwrite(str(root / "images" / key), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        words = {f"{i:04d}": {"points": p.tolist(), "transcription": "###" if key == "a.jpg" and i == 0 else "w"}
                 for i, p in enumerate(polygons)}
        entries[key] = {"img_w": image.shape[1], "img_h": image.shape[0], "words": words, "source": "test"}
    cv2.imwrite(str(root / "images" / "c.jpg"), np.full((64, 64, 3), 200, np.uint8))
    (root / "annotations.json").write_text(json.dumps({"images": entries}))
    splits = {"train": ["a.jpg", "b.jpg", "c.jpg"], "val": ["a.jpg", "c.jpg"], "test": ["c.jpg"]}
    (root / "splits.json").write_text(json.dumps(splits))
    return root, pages


def _mean_inside(image: np.ndarray, polygon: np.ndarray) -> float:
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(polygon - 0.5).astype(np.int32)], 1)
    return float(image[..., 0][mask.astype(bool)].mean())


def test_eval_transform_scales_exactly_and_aligns_top_left():
    image, polygons = _page(333, 257, 3, 3)
    scale = 160 / 333
    out, moved, ignore = apply_transform(build_eval_transform(160), image, polygons, [False] * len(polygons))
    assert out.shape == (160, 160, 3)
    assert len(moved) == len(polygons) and ignore == [False] * len(polygons)
    for before, after in zip(polygons, moved):
        np.testing.assert_allclose(after, before * scale, atol=1e-9)
    content_h = round(257 * scale)
    assert (out[content_h:] == 0).all() and out[:content_h].mean() > 150  # padding below, page at the top-left


def test_train_transform_keeps_polygons_inside_and_on_text():
    image, polygons = _page(400, 300, 4, 3, margin=0)
    transform = build_train_transform(AugmentParams(**NO_PIXEL), 256)
    ignored_some = False
    for seed in range(25):
        reseed(transform, seed)
        out, moved, ignore = apply_transform(transform, image, polygons, [False] * len(polygons))
        assert 0 < len(moved) <= len(polygons) and all(p.shape == (4, 2) for p in moved)
        assert all(((p >= 0) & (p <= 256)).all() for p in moved)
        assert all(_mean_inside(out, p) < 60 for p, skip in zip(moved, ignore) if not skip)
        ignored_some |= any(ignore)
    assert ignored_some  # zoom/rotation does cut border words sometimes; they must become don't-care

    gentle = build_train_transform(replace(NOTHING, rotate_p=1.0, affine_p=1.0, scale_max=1.0), 256)
    reseed(gentle, 0)
    image, polygons = _page(400, 300, 4, 3)
    _, moved, ignore = apply_transform(gentle, image, polygons, [False] * len(polygons))
    assert len(moved) == len(polygons) and not any(ignore)  # words far from the border all survive


def test_rotated_and_warped_polygons_cover_the_dark_text():
    image, polygons = _page(400, 300, 4, 3)
    warp = replace(NOTHING, rotate_limit=10.0, rotate_p=1.0, perspective_min=0.03, perspective_max=0.06,
                   perspective_p=1.0, affine_p=1.0, scale_min=0.8, scale_max=0.9)
    transform = build_train_transform(warp, 320)
    for seed in range(8):
        reseed(transform, seed)
        out, moved, ignore = apply_transform(transform, image, polygons, [False] * len(polygons))
        assert len(moved) == len(polygons)
        inside = [_mean_inside(out, p) for p in moved]
        shifted = [_mean_inside(out, p + [0.0, 6.0]) for p in moved]
        assert max(inside) < 50, inside
        assert min(shifted) > max(inside) + 40  # the check is sensitive to a few pixels of misalignment


def test_crop_never_cuts_a_word_it_keeps():
    image, polygons = _page(400, 300, 4, 3)
    ignore = [i == 4 for i in range(len(polygons))]
    params = A.KeypointParams(format="xy", label_fields=["poly_index"], remove_invisible=False)
    crop = A.Compose([TextSafeCrop(min_area=0.3, p=1.0)], keypoint_params=params)
    flat, index = np.concatenate(polygons), np.repeat(np.arange(len(polygons)), 4)
    cropped_any = False
    for seed in range(30):
        reseed(crop, seed)
        out = crop(image=image, keypoints=flat, poly_index=index)
        height, width = out["image"].shape[:2]
        assert width * height >= 0.3 * 400 * 300
        points = out["keypoints"].reshape(-1, 4, 2)
        within = ((points >= 0) & (points <= [width, height])).all(axis=(1, 2))
        touching = ((points.min(axis=1) < [width, height]) & (points.max(axis=1) > 0)).all(axis=1)
        assert within.any() and (within == touching).all()  # each word wholly in, or wholly out
        cropped_any |= not within.all()
        reseed(crop, seed)
        _, kept, kept_ignore = apply_transform(crop, image, polygons, ignore)
        assert kept_ignore == [flag for flag, w in zip(ignore, within) if w]
        np.testing.assert_allclose(np.array(kept), points[within])
    assert cropped_any


def test_reseed_draws_each_transform_independently():
    flips = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)], save_applied_params=True)
    together = 0
    for seed in range(100):
        reseed(flips, seed)
        applied = {name for name, _ in flips(image=np.zeros((4, 4), np.uint8))["applied_transforms"]}
        together += len(applied) != 1
    assert 25 < together < 75  # Compose.set_random_seed would give 100: both flips share one stream


def test_same_seed_gives_identical_samples(processed):
    root, _ = processed
    heavy = AugmentParams(rotate_p=1.0, affine_p=1.0, perspective_p=1.0, noise_p=1.0, crop_p=0.5)
    dataset = DetectionDataset(root, "train", 128, build_train_transform(heavy, 128), TARGETS)
    samples = []
    for seed in (3, 3, 4):
        samples.append(dataset[(1, seed)])
    for name in ("image", "prob_map", "prob_mask", "thresh_map", "thresh_mask"):
        assert torch.equal(samples[0][name], samples[1][name]), name
    assert not torch.equal(samples[0]["image"], samples[2]["image"])


def test_eval_sample_has_targets_and_metadata(processed):
    root, pages = processed
    dataset = DetectionDataset(root, "val", 160, build_eval_transform(160), TARGETS)
    assert dataset.keys == ["a.jpg"]  # c.jpg has no detection annotation
    sample = dataset[0]
    assert sample["image"].shape == (3, 160, 160) and sample["image"].dtype == torch.float32
    assert sample["scale"] == pytest.approx(0.4) and sample["original_size"] == (300, 400)
    assert sample["key"] == "a.jpg" and sample["index"] == 0
    prob, mask = sample["prob_map"], sample["prob_mask"]
    assert prob.shape == (160, 160) and prob.sum() > 100 and sample["thresh_mask"].sum() > prob.sum()
    assert prob[120:].sum() == 0  # nothing in the padding (content is 400x300 * 0.4 = 160x120)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(sample["image"][:, 120:].mean((1, 2)), -mean / std, atol=1e-5)  # padding is black
    assert torch.allclose(sample["image"][:, 2, 2], (1 - mean) / std, atol=0.05)  # white page
    word = pages["a.jpg"][1][0] * 0.4  # the don't-care word is masked, not a positive
    x0, y0, x1, y1 = np.round(word[[0, 2]].ravel()).astype(int)
    assert mask[y0:y1, x0:x1].max() == 0 and prob[y0:y1, x0:x1].max() == 0


SHORT = InputParams(resize="short_side", max_side=480)


def test_short_side_eval_samples_keep_their_aspect_and_batches_pad_to_the_largest(processed):
    root, pages = processed
    targets = {**TARGETS, "input": {"resize": "short_side", "max_side": 480}}
    dataset = DetectionDataset(root, "train", 160, build_eval_transform(160, SHORT), targets)
    # a.jpg 400x300: short side 300 -> 160 (scale 0.533, 213x160 -> 224x160 input);
    # b.jpg 300x500: 160 / 300 would make the long side 267, under the cap: 160x267 -> 160x288
    assert dataset.eval_shapes() == [(160, 224), (288, 160)]
    first, second = dataset[0], dataset[1]
    assert first["image"].shape == (3, 160, 224) and first["prob_map"].shape == (160, 224)
    assert first["scale"] == pytest.approx(160 / 300) and second["scale"] == pytest.approx(160 / 300)
    word = pages["b.jpg"][1][3] * second["scale"]  # a word's centre is text in the map
    x, y = np.round(word.mean(axis=0)).astype(int)
    assert second["prob_map"][y, x] == 1.0
    batch = collate_detection([first, second])
    assert batch["image"].shape == (2, 3, 288, 224) and batch["prob_map"].shape == (2, 288, 224)
    assert torch.equal(batch["image"][1, :, :288, :160], second["image"])
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(batch["image"][1, :, :, 160:].mean((1, 2)), -mean / std, atol=1e-5)  # a black pixel's value
    assert batch["prob_mask"][0, 160:].sum() == 0


def test_short_side_training_crops_are_square_and_on_text():
    image, polygons = _page(300, 900, 12, 2)
    transform = build_train_transform(replace(NOTHING, crop_p=1.0), 160, SHORT)
    scale = min(160 / 300, 480 / 900)  # the cap binds: 900 * 160 / 300 = 480
    for seed in range(6):
        reseed(transform, seed)
        out, moved, ignore = apply_transform(transform, image, polygons, [False] * len(polygons))
        assert out.shape == (160, 160, 3) and 0 < len(moved) < len(polygons)  # a crop of the scaled page
        kept = [p for p, skip in zip(moved, ignore) if not skip]
        assert kept and all(_mean_inside(out, p) < 60 for p in kept)
        sides = [np.ptp(p[:, 1]) for p in kept]
        assert np.allclose(sides, np.ptp(polygons[0][:, 1]) * scale, atol=1.0)  # words keep the rule's scale


def test_ground_truth_and_empty_split(processed):
    root, pages = processed
    truth = load_ground_truth(root, "train")
    assert list(truth) == ["a.jpg", "b.jpg"]
    polygons, ignore = truth["a.jpg"]
    np.testing.assert_array_equal(polygons[3], pages["a.jpg"][1][3])
    assert ignore[0] and not any(ignore[1:])
    with pytest.raises(DataError, match="test split has no detection images .*data.split.test"):
        DetectionDataset(root, "test", 128, build_eval_transform(128), TARGETS)
    with pytest.raises(ValueError, match="no split 'dev'"):
        load_ground_truth(root, "dev")


def test_loader_with_workers_is_deterministic(processed):
    root, _ = processed
    dataset = DetectionDataset(root, "train", 128, build_train_transform(AugmentParams(), 128), TARGETS)

    def run(seed: int) -> list[dict]:
        loader = seeded_loader(dataset, 1, 2, seed, Runtime(torch.device("cpu")), train=True,
                               collate=collate_detection)
        return list(loader)

    first, second, other = run(7), run(7), run(8)
    assert [b["key"] for b in first] == [b["key"] for b in second] and len(first) == 2
    assert isinstance(first[0]["scale"][0], float) and first[0]["image"].shape == (1, 3, 128, 128)
    for a, b in zip(first, second):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["prob_map"], b["prob_map"])
    by_key = {b["key"][0]: b["image"] for b in first}
    assert any(not torch.equal(by_key[b["key"][0]], b["image"]) for b in other)


def test_augment_params_validate():
    assert build(AugmentParams, {"rotate_limit": 3}, "detector.augment").rotate_limit == 3.0
    with pytest.raises(ConfigError, match="detector.augment.scale_min"):
        build(AugmentParams, {"scale_min": 1.5, "scale_max": 1.2}, "detector.augment")
    with pytest.raises(ConfigError, match="detector.augment.crop_p"):
        build(AugmentParams, {"crop_p": 1.5}, "detector.augment")
