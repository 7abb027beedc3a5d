"""read_image: every mode to upright 8-bit RGB, EXIF orientation (pixels and annotations), huge scans, bad files."""
import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import params_dict, quad
from PIL import Image, ImageOps

from doclab.config import Params, build
from doclab.data.images import exif_point_transform, read_image
from doclab.data.records import DataError
from doclab.pipeline.preprocess import preprocess


def page(width=60, height=40, value=230) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def test_rgb_png_is_returned_as_is(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out, orientation, stored = read_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and orientation == 1 and stored == (50, 30)
    np.testing.assert_array_equal(out, pixels)


def test_grayscale_and_bilevel_become_rgb(tmp_path):
    gray = np.tile(np.arange(0, 250, 5, dtype=np.uint8), (10, 1))
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    out, _, _ = read_image(tmp_path / "g.png")
    assert out.shape == (10, 50, 3)
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(out[..., 2], gray)
    Image.fromarray(gray > 100).save(tmp_path / "b.png")  # mode "1"
    out, _, _ = read_image(tmp_path / "b.png")
    assert out.shape == (10, 50, 3) and set(np.unique(out)) == {0, 255}


def test_16bit_png_is_scaled_to_8bit(tmp_path):
    ramp = np.tile(np.linspace(1000, 64000, 64).astype(np.uint16), (8, 1))
    ramp[:, :4] = 1000
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    out, _, stored = read_image(tmp_path / "deep.png")
    assert out.dtype == np.uint8 and out.shape == (8, 64, 3) and stored == (64, 8)
    row = out[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255  # the full range is used
    assert np.all(np.diff(row) >= 0) and len(np.unique(row)) > 50  # order kept, not posterised


def test_rgba_and_palette_transparency_composite_on_white(tmp_path):
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :10] = (200, 0, 0, 255)  # opaque red left half, transparent black right half
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out, _, _ = read_image(tmp_path / "a.png")
    assert out[5, 2].tolist() == [200, 0, 0] and out[5, 15].tolist() == [255, 255, 255]

    pal = Image.new("P", (20, 10), 0)
    pal.putpalette([0, 0, 0, 0, 0, 180] + [0] * 762)  # index 0 black (transparent), 1 blue
    pal.paste(1, (0, 0, 10, 10))
    pal.save(tmp_path / "p.png", transparency=0)
    assert Image.open(tmp_path / "p.png").mode == "P"
    out, _, _ = read_image(tmp_path / "p.png")
    assert out[5, 2].tolist() == [0, 0, 180] and out[5, 15].tolist() == [255, 255, 255]

    opaque = Image.new("P", (4, 4), 1)
    opaque.putpalette([0, 0, 0, 10, 120, 30] + [0] * 762)
    opaque.save(tmp_path / "o.gif")
    out, _, _ = read_image(tmp_path / "o.gif")
    assert out[1, 1].tolist() == [10, 120, 30]


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    image = Image.new("CMYK", (30, 20), (0, 0, 0, 0))  # white
    image.paste((0, 255, 255, 0), (0, 0, 15, 20))  # red
    image.save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out, _, _ = read_image(tmp_path / "c.jpg", max_side=1024)
    assert out.shape == (20, 30, 3)
    assert np.abs(out[10, 3].astype(int) - [255, 0, 0]).max() < 20
    assert out[10, 25].min() > 235


def marked_jpeg(path, orientation, stored=(120, 80), box=(10, 5, 30, 20)):
    """JPEG of `stored` size, white with a black box at `box` in the stored frame, EXIF orientation tag."""
    width, height = stored
    pixels = np.full((height, width, 3), 255, np.uint8)
    x0, y0, x1, y1 = box
    pixels[y0:y1, x0:x1] = 0
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, quality=95, exif=exif)
    return pixels


UPRIGHT = {  # what a viewer shows, computed independently of PIL's exif_transpose
    1: lambda a: a, 2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_pixels_are_upright(tmp_path, orientation):
    stored = marked_jpeg(tmp_path / "r.jpg", orientation)
    out, got_orientation, stored_size = read_image(tmp_path / "r.jpg")
    expected = UPRIGHT[orientation](stored)
    assert got_orientation == orientation and stored_size == (120, 80)
    assert out.shape == expected.shape
    assert np.abs(out.astype(int) - expected).mean() < 3  # JPEG noise only


def test_corrupt_exif_tag_does_not_lose_a_good_photo(tmp_path):
    """A Make tag renumbered to MaxSampleValue (SHORT) but still holding text: PIL cannot re-encode it."""
    pixels = marked_jpeg(tmp_path / "ok.jpg", 6)
    exif = Image.Exif()
    exif[0x0112], exif[0x010F] = 6, "Cam"
    Image.fromarray(pixels).save(tmp_path / "ok.jpg", quality=95, exif=exif)
    data = (tmp_path / "ok.jpg").read_bytes()
    assert data.count(b"\x01\x0f\x00\x02") == 1  # big-endian IFD entry: tag 0x010F, type ASCII
    (tmp_path / "odd.jpg").write_bytes(data.replace(b"\x01\x0f\x00\x02", b"\x01\x4e\x00\x02"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PIL warns about the odd tag
        out, orientation, _ = read_image(tmp_path / "odd.jpg")
    assert orientation == 6
    assert np.abs(out.astype(int) - UPRIGHT[6](pixels)).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_point_transform_matches_the_pixels(orientation):
    width, height = 7, 5
    for x, y in [(0, 0), (6, 0), (2, 3), (6, 4)]:
        pixels = np.zeros((height, width), np.uint8)
        pixels[y, x] = 255
        image = Image.fromarray(pixels)
        exif = image.getexif()
        exif[0x0112] = orientation
        image.info["exif"] = exif.tobytes()
        upright = np.asarray(ImageOps.exif_transpose(image))
        (ey, ex), = np.argwhere(upright == 255)
        centre = exif_point_transform(orientation, width, height)(np.array([[x + 0.5, y + 0.5]]))
        assert np.floor(centre[0]).astype(int).tolist() == [ex, ey]


def test_exif_rotated_jpeg_through_preprocess_annotations_land_on_the_marker(tmp_path):
    """Orientation 6 (rotate 90 clockwise): one annotation in the stored frame, one in the upright frame."""
    root = tmp_path / "repo"
    images = root / "raw" / "images"
    images.mkdir(parents=True)
    box = (20, 8, 60, 40)  # in the stored 240x160 frame
    marked_jpeg(images / "stored.jpg", 6, stored=(240, 160), box=box)
    marked_jpeg(images / "upright.jpg", 6, stored=(240, 160), box=box)
    upright_box = (160 - 40, 20, 160 - 8, 60)  # the same marker after rotation (viewer frame 160x240)
    (root / "raw" / "ann.json").write_text(json.dumps({"images": {
        "stored.jpg": {"img_w": 240, "img_h": 160, "words": {"0001": {"points": quad(box)}}},
        "upright.jpg": {"img_w": 160, "img_h": 240, "words": {"0001": {"points": quad(upright_box)}}},
    }}))
    source = {"name": "rot", "format": "ufo", "images": "raw/images", "annotations": "raw/ann.json"}
    params = build(Params, params_dict([source], {"preprocess.max_side": 120, "data.split.val": 0.0,
                                                  "data.split.test": 0.0}))
    preprocess(params, root, root / "out", root / "metrics.json")
    annotations = json.loads((root / "out" / "annotations.json").read_text())["images"]
    for name in ("stored", "upright"):
        entry = annotations[f"rot/{name}.jpg"]
        assert (entry["img_w"], entry["img_h"]) == (80, 120)  # upright portrait, longest side 120
        pixels = np.asarray(Image.open(root / "out" / "images" / "rot" / f"{name}.jpg").convert("L"))
        assert pixels.shape == (120, 80)
        points = np.array(entry["words"]["0001"]["points"])
        np.testing.assert_allclose(points, np.array(quad(upright_box)) * 0.5, atol=0.01)
        x0, y0 = points.min(axis=0).round().astype(int)
        x1, y1 = points.max(axis=0).round().astype(int)
        assert pixels[y0 + 1:y1 - 1, x0 + 1:x1 - 1].mean() < 40  # the polygon covers the black marker
        dark = np.argwhere(pixels < 128)
        assert dark.min(axis=0).tolist() == [y0, x0] and (dark.max(axis=0) + 1).tolist() == [y1, x1]


def test_huge_jpeg_is_decoded_reduced_without_full_allocation(tmp_path):
    """A 4961x7016 (A4 at 600 dpi) scan: DCT-reduced decode, peak memory far below the 104 MB of full RGB."""
    path = tmp_path / "scan.jpg"
    script = textwrap.dedent(f"""
        import resource, sys
        from PIL import Image
        Image.new("RGB", (4961, 7016), (250, 250, 250)).save({str(path)!r}, quality=60)
    """)
    subprocess.run([sys.executable, "-c", script], check=True)
    script = textwrap.dedent(f"""
        import resource
        from doclab.data.images import read_image
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        pixels, orientation, stored = read_image({str(path)!r}, max_side=1024)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(pixels.shape[1], pixels.shape[0], stored[0], stored[1], (peak - base) // 1024)
    """)
    result = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True)
    width, height, stored_w, stored_h, grown_mb = map(int, result.stdout.split())
    assert (stored_w, stored_h) == (4961, 7016)
    assert (width, height) == (1241, 1754)  # 1/4 scale: longest side still >= 1024
    assert grown_mb < 50, f"decoding grew the process by {grown_mb} MB"


def test_tall_receipt_jpeg_is_reduced_by_its_longest_side(tmp_path):
    Image.new("RGB", (1800, 9000), (255, 255, 255)).save(tmp_path / "receipt.jpg", quality=50)
    pixels, _, stored = read_image(tmp_path / "receipt.jpg", max_side=1024)
    assert stored == (1800, 9000)
    assert 1024 <= max(pixels.shape) < 2048 and pixels.shape[:2] == (1125, 225)


def test_output_size_does_not_depend_on_the_jpeg_reduction(tmp_path):
    """363x1280 decodes at 1/2 as 182x640; the stored size must still be round(363 * 0.4) = 145."""
    root = tmp_path / "repo"
    pixels = np.full((1280, 363, 3), 240, np.uint8)
    pixels[600:680, 300:363] = 0  # a dark word touching the right edge
    (root / "img").mkdir(parents=True)
    Image.fromarray(pixels).save(root / "img" / "a.jpg", quality=95)
    Image.fromarray(pixels).save(root / "img" / "b.png")
    words = {"0001": {"points": quad((300, 600, 363, 680))}}
    (root / "ann.json").write_text(json.dumps({"images": {
        name: {"img_w": 363, "img_h": 1280, "words": words} for name in ("a.jpg", "b.png")}}))
    source = {"name": "s", "format": "ufo", "images": "img", "annotations": "ann.json"}
    params = build(Params, params_dict([source], {"preprocess.max_side": 512, "data.split.val": 0.0,
                                                  "data.split.test": 0.0}))
    preprocess(params, root, root / "out", root / "metrics.json")
    annotations = json.loads((root / "out" / "annotations.json").read_text())["images"]
    for key in ("s/a.jpg", "s/b.jpg"):
        entry = annotations[key]
        assert (entry["img_w"], entry["img_h"]) == (145, 512)
        out = np.asarray(Image.open(root / "out" / "images" / key).convert("L"))
        assert out.shape == (512, 145)
        np.testing.assert_allclose(entry["words"]["0001"]["points"],
                                   np.array(quad((300, 600, 363, 680))) * [145 / 363, 0.4], atol=0.006)
        assert out[244:268, 122:144].mean() < 40 and out[230:238].mean() > 200


def test_png_is_not_reduced_and_small_jpeg_untouched(tmp_path):
    Image.fromarray(page(300, 200)).save(tmp_path / "a.png")
    Image.fromarray(page(300, 200)).save(tmp_path / "a.jpg")
    assert read_image(tmp_path / "a.png", max_side=64)[0].shape == (200, 300, 3)
    assert read_image(tmp_path / "a.jpg", max_side=1024)[0].shape == (200, 300, 3)


def jpeg_bytes() -> bytes:
    import io
    buffer = io.BytesIO()
    Image.fromarray(page(80, 60)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


@pytest.mark.parametrize("content, expected", [
    (lambda b: b[:2] + bytes(range(256)) + b[258:], "not a readable image"),  # corrupt header
    (lambda b: b"\x00garbage" * 10, "not a readable image"),
    (lambda b: b[: len(b) // 2], "corrupt or truncated image"),
    (lambda b: b"", "empty (0-byte) image file"),
])
def test_bad_image_files_raise_one_line_data_error(tmp_path, content, expected):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content(jpeg_bytes()))
    with pytest.raises(DataError) as exc:
        read_image(path, max_side=1024)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{path}: ") and expected in message


def test_missing_or_unreadable_path(tmp_path):
    with pytest.raises(DataError, match="image file not found"):
        read_image(tmp_path / "nope.jpg")
    (tmp_path / "dir.jpg").mkdir()
    with pytest.raises(DataError, match="dir.jpg: image file not found"):
        read_image(tmp_path / "dir.jpg")


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.jpg"
    path.write_bytes(jpeg_bytes())
    path.chmod(0)
    with pytest.raises(DataError) as exc:
        read_image(path)
    assert str(exc.value) == f"{path}: not readable (permission denied)"
