"""The preprocess stage end to end: outputs, determinism, workers, and every kind of bad input.

Bad inputs run through the real stage script (in-process via runpy for speed, plus real subprocesses
for the exit code): with `data.on_bad: error` it must fail with one `error:` line naming the item and
the problem, leave a previous output folder untouched and write no metrics; with `skip` it must
succeed and list the item in rejected.json.
"""
import csv
import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import quad, write_image
from PIL import Image

from doclab.config import load_params
from doclab.data.records import DataError, Item
from doclab.data.worker import WorkerSettings, process_item
from doclab.errors import DoclabError
from doclab.pipeline.preprocess import _run_workers, preprocess

STAGE = Path(__file__).resolve().parents[1] / "stages" / "preprocess.py"
OUT, METRICS = "data/processed", "metrics/data.json"


def run_function(params_file: Path) -> dict:
    root = params_file.parent
    return preprocess(load_params(params_file), root, root / OUT, root / METRICS)


def run_stage(root: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """The stage script exactly as DVC calls it (cwd = repo root), in this process."""
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "argv", [str(STAGE), "--params", "params.yaml", "--out", OUT, "--metrics", METRICS])
    capsys.readouterr()
    try:
        runpy.run_path(str(STAGE), run_name="__main__")
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(stderr: str) -> str:
    """The single `error:` line; progress bars may precede it, nothing may follow it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert lines and lines[-1].startswith("error: "), stderr
    assert sum(line.startswith("error") for line in lines) == 1, stderr
    return lines[-1]


def outputs(root: Path) -> dict:
    out = root / OUT
    return {
        "annotations": json.loads((out / "annotations.json").read_text())["images"],
        "splits": json.loads((out / "splits.json").read_text()),
        "rejected": json.loads((out / "rejected.json").read_text()),
        "labels": list(csv.reader((out / "labels.csv").read_text().splitlines()))[1:],
        "classes": json.loads((out / "classes.json").read_text()),
        "images": sorted(p.relative_to(out / "images").as_posix() for p in (out / "images").rglob("*.jpg")),
        "metrics": json.loads((root / METRICS).read_text()),
    }


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def previous_output(root: Path) -> dict[str, bytes]:
    """A stand-in for the last successful run's folder."""
    out = root / OUT
    (out / "images" / "docs").mkdir(parents=True)
    (out / "images" / "docs" / "old.jpg").write_bytes(b"old pixels")
    (out / "annotations.json").write_text('{"images": {"docs/old.jpg": {}}}\n')
    return snapshot(out)


# --- the happy path ------------------------------------------------------------------------------

def test_outputs_scale_words_labels_splits_and_metrics(make_dataset, write_params):
    ds = make_dataset()
    stats = run_function(write_params(ds))
    got = outputs(ds.root)
    keys = [f"docs/doc_{i:03d}.jpg" for i in range(8)]  # PNG inputs are stored as JPEG too
    assert got["images"] == keys and sorted(got["annotations"]) == keys
    for i, key in enumerate(keys):
        file = f"doc_{i:03d}.{'jpg' if i % 2 == 0 else 'png'}"
        entry = got["annotations"][key]
        width, height = ds.sizes[file]
        assert max(entry["img_w"], entry["img_h"]) == 128 and entry["source"] == "docs"
        scale = np.array([entry["img_w"] / width, entry["img_h"] / height])
        assert scale == pytest.approx([0.8, 0.8])
        words = list(entry["words"].values())
        assert [w["transcription"] for w in words] == ["WORD0", "WORD1", "WORD2"]
        for word, box in zip(words, ds.boxes[file]):
            np.testing.assert_allclose(word["points"], np.array(quad(box)) * scale, atol=0.006)
        pixels = np.asarray(Image.open(ds.root / OUT / "images" / key).convert("L"), dtype=float)
        assert pixels.shape == (entry["img_h"], entry["img_w"])
        x0, y0 = np.ceil(np.min(words[0]["points"], axis=0)).astype(int)
        x1, y1 = np.floor(np.max(words[0]["points"], axis=0)).astype(int)
        assert pixels[y0:y1, x0:x1].mean() < 100 < pixels[:y0 - 2].mean()  # the word box is on the dark text
    assert got["labels"] == [[k, ds.classes[f"doc_{i:03d}.{'jpg' if i % 2 == 0 else 'png'}"]] for i, k in enumerate(keys)]
    assert got["classes"] == ["invoice", "receipt"]
    labels = dict(got["labels"])
    assert {s: len(v) for s, v in got["splits"].items()} == {"train": 4, "val": 2, "test": 2}
    for split in ("val", "test"):
        assert sorted(labels[k] for k in got["splits"][split]) == ["invoice", "receipt"]  # stratified
    assert got["rejected"] == {"rejected": [], "clipped": []}
    assert got["metrics"] == stats
    assert stats["rejected"] == 0 and stats["clipped"] == 0
    assert stats["train"]["classes"] == {"invoice": 2, "receipt": 2} and stats["val"]["detection_images"] == 2
    assert stats["words_per_image"] == {"mean": 3.0, "min": 3, "max": 3}
    assert not [p for p in (ds.root / "data").iterdir() if p.name.startswith(".")]  # no temp folders left


def test_rerun_is_byte_identical_and_replaces_the_folder(make_dataset, write_params):
    ds = make_dataset()
    params = write_params(ds)
    run_function(params)
    first = snapshot(ds.root / OUT)
    metrics = (ds.root / METRICS).read_bytes()
    (ds.root / OUT / "stale.txt").write_text("from an older run")
    run_function(params)
    assert snapshot(ds.root / OUT) == first  # stale file gone, everything else identical
    assert (ds.root / METRICS).read_bytes() == metrics


def test_two_workers_match_one(make_dataset, write_params):
    """A process pool gives byte-identical outputs, failures included."""
    ds = make_dataset()
    (ds.images / "doc_004.jpg").write_bytes(b"")
    run_function(write_params(ds, {"data.on_bad": "skip"}))
    single = snapshot(ds.root / OUT)
    run_function(write_params(ds, {"preprocess.workers": 2, "data.on_bad": "skip"}))
    assert snapshot(ds.root / OUT) == single
    got = outputs(ds.root)
    assert got["rejected"]["rejected"] == [{"item": "docs/doc_004.jpg", "reason": "empty (0-byte) image file"}]
    assert "docs/doc_004.jpg" not in got["images"] and len(got["images"]) == 7


class _EndsItsWorker:
    """A task whose unpickling ends the worker process at once, as the OS's out-of-memory killer would."""

    def __reduce__(self):
        return os._exit, (9,)


def test_a_worker_that_dies_is_one_line_naming_the_key_instead_of_a_hang(tmp_path):
    settings = WorkerSettings(tmp_path, max_side=64, jpeg_quality=90, min_word_side=1.0, seed=0,
                              synthetic_long_side=128)
    with pytest.raises(DoclabError, match=r"^preprocess\.workers: a worker process stopped .* preprocess\.workers: 1$"):
        _run_workers([_EndsItsWorker()] * 8, settings, workers=2)


def test_stage_script_in_a_subprocess(make_dataset, write_params):
    ds = make_dataset()
    write_params(ds)
    cmd = [sys.executable, str(STAGE), "--params", "params.yaml", "--out", OUT, "--metrics", METRICS]
    ok = subprocess.run(cmd, cwd=ds.root, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"preprocess: train=4, val=2, test=2 images, 0 rejected -> {OUT}"
    assert (ds.root / METRICS).is_file()

    before = snapshot(ds.root / OUT)
    (ds.root / METRICS).unlink()
    ds.write_ufo(ds.annotations.read_text().replace('"img_w"', '"img_w" 160', 1))
    bad = subprocess.run(cmd, cwd=ds.root, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr == f"error: {ds.annotations}: line 4: malformed JSON (Expecting ':' delimiter)\n"
    assert snapshot(ds.root / OUT) == before and not (ds.root / METRICS).exists()


def test_stage_script_reports_bad_params_in_one_line(make_dataset, write_params, capsys, monkeypatch):
    ds = make_dataset(n_images=2)
    write_params(ds, {"preprocess.max_sde": 100})
    code, _, err = run_stage(ds.root, capsys, monkeypatch)
    assert code == 2 and "preprocess.max_sde: unknown key, did you mean 'preprocess.max_side'?" in error_line(err)


# --- bad inputs: each case breaks the dataset and says which item and reason must be reported -------

def corrupt_jpeg(ds):
    data = (ds.images / "doc_000.jpg").read_bytes()
    (ds.images / "doc_000.jpg").write_bytes(data[:2] + bytes(range(256)) + data[258:])
    return "docs/doc_000.jpg", "not a readable image (unknown format or corrupt header)"


def truncated_jpeg(ds):
    data = (ds.images / "doc_002.jpg").read_bytes()
    (ds.images / "doc_002.jpg").write_bytes(data[: len(data) // 2])
    return "docs/doc_002.jpg", "corrupt or truncated image"


def zero_byte(ds):
    (ds.images / "doc_001.png").write_bytes(b"")
    return "docs/doc_001.png", "empty (0-byte) image file"


def unreadable(ds):
    (ds.images / "doc_003.png").chmod(0)
    return "docs/doc_003.png", "not readable (permission denied)"


def annotation_for_missing_image(ds):
    doc = ds.ufo()
    doc["images"]["ghost.jpg"] = doc["images"]["doc_000.jpg"]
    ds.write_ufo(doc)
    return "docs/ghost.jpg", "annotation for a missing image"


def missing_image_dangling_link(ds):
    (ds.images / "doc_004.jpg").unlink()
    (ds.images / "doc_004.jpg").symlink_to(ds.images / "gone.jpg")
    return "docs/doc_004.jpg", "annotation for a missing image"


def image_without_annotation(ds):
    shutil.copy(ds.images / "doc_001.png", ds.images / "extra.png")
    return "docs/extra.png", "image without annotation"


def set_points(ds, image, word, points):
    doc = ds.ufo()
    doc["images"][image]["words"][word]["points"] = points
    ds.write_ufo(doc)


def too_few_points(ds):
    set_points(ds, "doc_000.jpg", "0002", [[10, 10], [40, 20]])
    return "docs/doc_000.jpg word 2", "polygon has 2 point(s), needs at least 3"


def nan_points(ds):
    set_points(ds, "doc_001.png", "0001", [[10, 10], [float("nan"), 10], [40, 20], [10, 20]])
    return "docs/doc_001.png word 1", "polygon has NaN or infinite coordinates"


def inf_points(ds):
    set_points(ds, "doc_002.jpg", "0003", [[10, 10], [float("inf"), 10], [40, 20], [10, 20]])
    return "docs/doc_002.jpg word 3", "polygon has NaN or infinite coordinates"


def zero_area(ds):
    set_points(ds, "doc_003.png", "0001", [[10, 10], [20, 10], [30, 10], [40, 10]])
    return "docs/doc_003.png word 1", "zero-area polygon"


def self_intersecting(ds):
    set_points(ds, "doc_004.jpg", "0002", [[10, 10], [50, 40], [50, 10], [10, 40]])
    return "docs/doc_004.jpg word 2", "self-intersecting polygon"


def degenerate(ds):
    set_points(ds, "doc_005.png", "0001", [[10, 10], [50, 10], [50, 10.5], [10, 10.5]])
    return "docs/doc_005.png word 1", "degenerate polygon"


def size_mismatch(ds):
    doc = ds.ufo()
    doc["images"]["doc_006.jpg"]["img_w"] = 500
    ds.write_ufo(doc)
    return "docs/doc_006.jpg", "annotation size 500x160 does not match the image (120x160 upright)"


def duplicate_word_id(ds):
    text = ds.annotations.read_text()
    ds.write_ufo(text.replace('"0002"', '"0001"', 1))  # the first image's second word
    return str(ds.annotations), "duplicate id '0001' in 'images'/'doc_000.jpg'/'words'"


def duplicate_image_key(ds):
    ds.write_ufo(ds.annotations.read_text().replace('"doc_003.png"', '"doc_002.jpg"'))
    return str(ds.annotations), "duplicate id 'doc_002.jpg' in 'images'"


def duplicate_processed_key(ds):
    shutil.copy(ds.images / "doc_001.png", ds.images / "doc_000.png")
    doc = ds.ufo()
    doc["images"]["doc_000.png"] = doc["images"]["doc_001.png"]
    ds.write_ufo(doc)
    return "docs/doc_000.png", "duplicate image id 'docs/doc_000.jpg'"


def duplicate_csv_id(ds):
    ds.write_labels(ds.label_rows() + ["doc_000.jpg,1"])
    return f"{ds.labels}:10", "duplicate ID 'doc_000.jpg'"


def unknown_label(ds):
    rows = ds.label_rows()
    rows[3] = "doc_003.png,5"
    ds.write_labels(rows)
    return f"{ds.labels}:5", "unknown label '5' for 'doc_003.png'"


def bad_csv_row(ds):
    ds.write_labels(ds.label_rows() + ["doc_009.jpg"])
    return f"{ds.labels}:10", "expected 'ID,target', got 'doc_009.jpg'"


CASES = [corrupt_jpeg, truncated_jpeg, zero_byte, unreadable, annotation_for_missing_image,
         missing_image_dangling_link, image_without_annotation, too_few_points, nan_points, inf_points,
         zero_area, self_intersecting, degenerate, size_mismatch, duplicate_word_id, duplicate_image_key,
         duplicate_processed_key, duplicate_csv_id, unknown_label, bad_csv_row]
AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def skip_if_root(case):
    if case is unreadable and AS_ROOT:
        pytest.skip("root reads files whatever their permissions")


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_bad_input_fails_the_stage_in_one_line_and_keeps_old_outputs(case, make_dataset, write_params,
                                                                     capsys, monkeypatch):
    skip_if_root(case)
    ds = make_dataset()
    item, reason = case(ds)
    write_params(ds)
    before = previous_output(ds.root)
    code, out, err = run_stage(ds.root, capsys, monkeypatch)
    line = error_line(err)
    assert code == 2 and out == ""
    assert f"{item}: {reason}" in line and "data.on_bad: skip" in line
    assert snapshot(ds.root / OUT) == before
    assert not (ds.root / METRICS).exists()
    assert sorted(p.name for p in (ds.root / "data").iterdir()) == ["processed"]  # no temp folder left


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.__name__)
def test_bad_input_is_skipped_and_listed(case, make_dataset, write_params):
    skip_if_root(case)
    ds = make_dataset()
    item, reason = case(ds)
    stats = run_function(write_params(ds, {"data.on_bad": "skip"}))
    got = outputs(ds.root)
    listed = got["rejected"]["rejected"]
    assert any(r["item"] == item and reason in r["reason"] for r in listed), listed
    assert stats["rejected"] == len(listed) and got["metrics"] == stats
    kept = set(got["images"])
    assert kept == set(got["annotations"]) == {k for split in got["splits"].values() for k in split}
    original = {f"docs/doc_{i:03d}.jpg" for i in range(8)}
    if " word " in item:  # the word is dropped, its image kept
        image = Path(item.split(" word ")[0]).with_suffix(".jpg").as_posix()
        assert len(got["annotations"][image]["words"]) == 2 and kept == original
    elif item.startswith("docs/") and case is not duplicate_processed_key:  # the image is dropped
        dropped = Path(item).with_suffix(".jpg").as_posix()
        assert kept == original - {dropped}
    else:  # a bad row or duplicate: the first occurrence is kept
        assert len(kept) >= 7


def test_duplicates_keep_the_first_occurrence(make_dataset, write_params):
    ds = make_dataset()
    duplicate_csv_id(ds)
    duplicate_processed_key(ds)
    run_function(write_params(ds, {"data.on_bad": "skip"}))
    got = outputs(ds.root)
    assert dict(got["labels"])["docs/doc_000.jpg"] == "invoice"  # first CSV row wins
    first = got["annotations"]["docs/doc_000.jpg"]["words"]["0001"]["points"]
    np.testing.assert_allclose(first, np.array(quad(ds.boxes["doc_000.jpg"][0])) * 0.8, atol=0.006)


def test_unknown_label_leaves_the_image_unlabelled(make_dataset, write_params):
    ds = make_dataset()
    unknown_label(ds)
    run_function(write_params(ds, {"data.on_bad": "skip"}))
    got = outputs(ds.root)
    assert "docs/doc_003.jpg" in got["annotations"] and "docs/doc_003.jpg" not in dict(got["labels"])


def test_out_of_bounds_points_are_clipped_not_an_error(make_dataset, write_params):
    ds = make_dataset()
    set_points(ds, "doc_000.jpg", "0001", [[-10, 10], [170, 10], [170, 30], [-10, 30]])
    stats = run_function(write_params(ds))  # on_bad: error still succeeds
    got = outputs(ds.root)
    assert got["rejected"]["rejected"] == []
    assert got["rejected"]["clipped"] == [{
        "item": "docs/doc_000.jpg word 1",
        "reason": "points outside the 160x120 image clipped (by up to 10.0 px)"}]
    assert stats["clipped"] == 1 and stats["rejected"] == 0
    assert got["annotations"]["docs/doc_000.jpg"]["words"]["0001"]["points"] == [[0, 8], [128, 8], [128, 24], [0, 24]]


# --- failures that no skipping can fix --------------------------------------------------------------

def malformed_json(ds):
    ds.write_ufo('{"images": {\n "doc_000.jpg": {"img_w": 160,\n  "img_h": 120 "words": {}}\n}}')
    return f"{ds.annotations}: line 3: malformed JSON (Expecting ',' delimiter)"


def malformed_csv(ds):
    ds.write_labels(ds.label_rows()[:2] + ['doc_002.jpg,"0', "doc_003.png,1"])
    return f"{ds.labels}: line 4: malformed CSV (unexpected end of data)"


def empty_dataset(ds):
    ds.write_ufo({"images": {}})
    for image in ds.images.iterdir():
        image.unlink()
    return "no usable images: the configured data sources are empty or every image was rejected"


def empty_split(ds):
    for i in range(2, 8):
        file = f"doc_{i:03d}.{'jpg' if i % 2 == 0 else 'png'}"
        (ds.images / file).unlink()
    doc = ds.ufo()
    doc["images"] = {k: v for k, v in doc["images"].items() if k in ("doc_000.jpg", "doc_001.png")}
    ds.write_ufo(doc)
    return "split 'val' is empty after validation: add images or change data.split.val"


FATAL = [malformed_json, malformed_csv, empty_dataset, empty_split]


@pytest.mark.parametrize("on_bad", ["error", "skip"])
@pytest.mark.parametrize("case", FATAL, ids=lambda c: c.__name__)
def test_fatal_inputs_fail_in_both_modes(case, on_bad, make_dataset, write_params, capsys, monkeypatch):
    ds = make_dataset()
    expected = case(ds)
    write_params(ds, {"data.on_bad": on_bad})
    before = previous_output(ds.root)
    code, _, err = run_stage(ds.root, capsys, monkeypatch)
    line = error_line(err)
    assert code == 2 and expected in line
    assert snapshot(ds.root / OUT) == before and not (ds.root / METRICS).exists()


def test_every_image_rejected(make_dataset, write_params):
    ds = make_dataset(n_images=10)
    for image in ds.images.iterdir():
        image.write_bytes(b"")
    with pytest.raises(DataError, match="^no usable images"):
        run_function(write_params(ds, {"data.on_bad": "skip"}))
    with pytest.raises(DataError) as exc:
        run_function(write_params(ds))
    message = str(exc.value)  # long lists stay one bounded line
    assert "\n" not in message and message.startswith("10 bad input(s): docs/doc_000.jpg: empty (0-byte) image file;")
    assert "; and 2 more (fix them, or set data.on_bad: skip" in message and "doc_008" not in message


def test_fatal_error_raised_by_the_function_is_one_line(make_dataset, write_params):
    ds = make_dataset()
    expected = malformed_csv(ds)
    with pytest.raises(DataError) as exc:
        run_function(write_params(ds))
    assert str(exc.value) == expected


# --- other sources and split files ----------------------------------------------------------------

def test_split_file_is_honoured_and_val_carved_from_train(make_dataset, write_params):
    ds = make_dataset()
    (ds.root / "splits.json").write_text(json.dumps({
        "train": [f"doc_{i:03d}.jpg" for i in range(6)], "val": [], "test": ["doc_006.jpg", "docs/doc_007.png"]}))
    run_function(write_params(ds, {"data.split.file": "splits.json", "data.split.val": 0.34}))
    splits = outputs(ds.root)["splits"]
    assert splits["test"] == ["docs/doc_006.jpg", "docs/doc_007.jpg"]
    assert len(splits["val"]) == 2 and len(splits["train"]) == 4  # a third of each class's 3 train images
    assert set(splits["train"] + splits["val"]) == {f"docs/doc_{i:03d}.jpg" for i in range(6)}


def test_split_file_naming_a_skipped_image_still_works(make_dataset, write_params):
    ds = make_dataset()
    (ds.root / "splits.json").write_text(json.dumps({
        "train": [f"doc_{i:03d}.jpg" for i in range(6)], "val": [], "test": ["doc_006.jpg", "doc_007.jpg"]}))
    zero_byte(ds)  # doc_001.png, listed in train
    params = write_params(ds, {"data.split.file": "splits.json", "data.on_bad": "skip"})
    run_function(params)
    got = outputs(ds.root)
    assert "docs/doc_001.jpg" not in got["images"] and len(got["images"]) == 7
    assert got["splits"]["test"] == ["docs/doc_006.jpg", "docs/doc_007.jpg"]
    # An entry naming no image at all is still a mistake in the split file, skip or not.
    ds.write_ufo({"images": {k: v for k, v in ds.ufo()["images"].items() if k != "doc_001.png"}})
    (ds.images / "doc_001.png").unlink()
    with pytest.raises(DataError, match="'train' entry 'doc_001.jpg' is not among the preprocessed images"):
        run_function(params)


def test_annotations_made_at_another_resolution_are_rescaled(make_dataset, write_params):
    ds = make_dataset(n_images=4)
    doc = ds.ufo()
    entry = doc["images"]["doc_000.jpg"]
    entry["img_w"], entry["img_h"] = 320, 240
    for word in entry["words"].values():
        word["points"] = [[2 * x, 2 * y] for x, y in word["points"]]
    ds.write_ufo(doc)
    run_function(write_params(ds, {"data.split.val": 0.0, "data.split.test": 0.0}))
    points = outputs(ds.root)["annotations"]["docs/doc_000.jpg"]["words"]["0001"]["points"]
    np.testing.assert_allclose(points, np.array(quad(ds.boxes["doc_000.jpg"][0])) * 0.8, atol=0.006)


def test_icdar_csv_and_imagefolder_sources_together(make_dataset, write_params):
    ds = make_dataset(n_images=8)
    root = ds.root
    (root / "icdar" / "gt").mkdir(parents=True)
    for i in range(4):
        write_image(root / "icdar" / "img" / f"r{i}.jpg", np.full((100, 200, 3), 240, np.uint8))
        (root / "icdar" / "gt" / f"r{i}.txt").write_text("10,10,90,10,90,30,10,30,TOTAL 1,00\n20,40,60,40,60,50,20,50,###\n")
    for i in range(8):
        cls = ("letter", "memo")[i % 2]
        write_image(root / "folder" / cls / f"f{i}.png", np.full((80, 60, 3), 200, np.uint8))
    sources = [
        {"name": "sroie", "format": "icdar", "images": "icdar/img", "annotations": "icdar/gt"},
        {"name": "cls", "format": "csv", "images": ds.rel(ds.images), "labels": ds.rel(ds.labels),
         "meta": ds.rel(ds.meta)},
        {"name": "folder", "format": "imagefolder", "images": "folder"},
    ]
    stats = run_function(write_params(ds, {"data.split.val": 0.25, "data.split.test": 0.25}, sources=sources))
    got = outputs(root)
    assert sorted(got["annotations"]) == [f"sroie/r{i}.jpg" for i in range(4)]
    words = got["annotations"]["sroie/r0.jpg"]["words"]
    assert words["0001"]["transcription"] == "TOTAL 1,00" and words["0001"]["points"][0] == [6.4, 6.4]
    assert words["0002"]["illegibility"] is True
    assert len(got["images"]) == 20 and got["classes"] == ["invoice", "letter", "memo", "receipt"]
    labels = dict(got["labels"])
    assert labels["folder/letter/f0.jpg"] == "letter" and labels["cls/doc_001.jpg"] == "receipt"
    assert "sroie/r0.jpg" not in labels
    assert stats["test"]["images"] == 5 and stats["test"]["detection_images"] == 1  # one per group
    assert stats["test"]["classes"] == {"invoice": 1, "letter": 1, "memo": 1, "receipt": 1}


def test_worker_reports_an_image_that_vanished_after_listing(make_dataset, tmp_path):
    ds = make_dataset(n_images=2)
    item = Item(id="docs/doc_000.jpg", source="docs", path=ds.images / "doc_000.jpg", words=())
    (ds.images / "doc_000.jpg").unlink()
    settings = WorkerSettings(tmp_path / "out", max_side=128, jpeg_quality=95, min_word_side=1.0, seed=0,
                              synthetic_long_side=512)
    result = process_item(item, settings)
    assert not result.ok and [(p.item, p.reason) for p in result.problems] == [("docs/doc_000.jpg", "image file not found")]
    assert not (tmp_path / "out").exists()
