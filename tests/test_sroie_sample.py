"""The real SROIE sample (../shared/data/sroie_small, read in place, never copied) through preprocess."""
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import params_dict

from doclab.config import Params, build
from doclab.pipeline.preprocess import preprocess

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "sroie_small"
MAX_SIDE = 512
VAL = 0.15


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    if not (SAMPLE / "ufo" / "annotation.json").is_file():
        pytest.skip(f"SROIE sample not found at {SAMPLE}")
    root = tmp_path_factory.mktemp("sroie")
    source = {"name": "sroie", "format": "ufo", "images": str(SAMPLE / "images"),
              "annotations": str(SAMPLE / "ufo" / "annotation.json")}
    params = build(Params, params_dict([source], {
        "data.split.file": str(SAMPLE / "ufo" / "splits.json"), "data.split.val": VAL,
        "preprocess.max_side": MAX_SIDE}))
    stats = preprocess(params, root, root / "processed", root / "metrics" / "data.json")
    out = root / "processed"
    return {
        "stats": stats,
        "annotations": json.loads((out / "annotations.json").read_text())["images"],
        "splits": json.loads((out / "splits.json").read_text()),
        "rejected": json.loads((out / "rejected.json").read_text()),
        "original": json.loads((SAMPLE / "ufo" / "annotation.json").read_text())["images"],
        "split_file": json.loads((SAMPLE / "ufo" / "splits.json").read_text()),
        "out": out,
    }


def test_all_40_images_ingested_none_rejected(processed):
    assert len(processed["annotations"]) == 40 == len(processed["original"])
    assert processed["rejected"]["rejected"] == [] and processed["stats"]["rejected"] == 0
    assert len(list((processed["out"] / "images" / "sroie").glob("*.jpg"))) == 40
    assert sum(len(e["words"]) for e in processed["annotations"].values()) == \
        sum(len(e["words"]) for e in processed["original"].values())


def test_splits_honour_the_split_file_and_carve_val_from_train(processed):
    splits, listed = processed["splits"], processed["split_file"]
    assert listed["val"] == []
    assert splits["test"] == sorted(f"sroie/{name}" for name in listed["test"])
    train_listed = {f"sroie/{name}" for name in listed["train"]}
    assert set(splits["train"]) | set(splits["val"]) == train_listed
    assert not set(splits["train"]) & set(splits["val"])
    assert len(splits["val"]) == round(len(train_listed) * VAL) > 0
    assert {k: processed["stats"][k]["images"] for k in ("train", "val", "test")} == {
        "train": len(train_listed) - len(splits["val"]), "val": len(splits["val"]), "test": len(listed["test"])}


def test_word_polygons_lie_inside_their_images(processed):
    for key, entry in processed["annotations"].items():
        assert max(entry["img_w"], entry["img_h"]) == MAX_SIDE, key
        for word in entry["words"].values():
            points = np.array(word["points"])
            assert points.shape[1] == 2 and len(points) >= 4
            assert (points >= 0).all() and (points[:, 0] <= entry["img_w"]).all() and (points[:, 1] <= entry["img_h"]).all()


def test_coordinates_are_scaled_with_the_image(processed):
    clipped = {c["item"] for c in processed["rejected"]["clipped"]}
    for name, original in processed["original"].items():
        entry = processed["annotations"][f"sroie/{name}"]
        ratio = MAX_SIDE / max(original["img_w"], original["img_h"])
        assert entry["img_w"] == round(original["img_w"] * ratio) and entry["img_h"] == round(original["img_h"] * ratio)
        scale = np.array([entry["img_w"] / original["img_w"], entry["img_h"] / original["img_h"]])
        for index, (word, before) in enumerate(zip(entry["words"].values(), original["words"].values())):
            if f"sroie/{name} word {index + 1}" in clipped:
                continue
            assert word["transcription"] == before["transcription"]
            np.testing.assert_allclose(word["points"], np.array(before["points"]) * scale, atol=0.006)
            # and by the nominal factor (0.4 for 1280 px receipts) within the half pixel of size rounding
            np.testing.assert_allclose(word["points"], np.array(before["points"]) * ratio, atol=0.5)
