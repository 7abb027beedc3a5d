"""Importers of the public sets (SROIE, ICDAR 2015, CORD v2, FUNSD, labelme, PPOCRLabel).

Each format gets a tiny fixture in its real layout, written here: `doclab import` must turn it
into UFO (+ the set's own split), the same reader must serve `data.sources` in preprocess, and a
malformed file must fail in one line naming the file and line (or JSON location) and write nothing.
"""
import json
from pathlib import Path
from typing import get_args, get_type_hints

import numpy as np
import pytest
from PIL import Image

from doclab.cli import main
from doclab.config import ConfigError, SourceParams, load_params
from doclab.data.formats.registry import DETECTION_FORMATS, IMPORT_FORMATS
from doclab.data.formats.ufo import read_ufo
from doclab.pipeline.preprocess import preprocess

SIZE = (64, 48)
BOXES = {"TOTAL": (4, 4, 30, 12), "12,50": (34, 4, 60, 12), "###": (4, 20, 30, 30)}  # text -> x0, y0, x1, y1


def image(path: Path, size: tuple[int, int] = SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, "white").save(path)


def corners(box) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def txt_lines(texts, bom: bool = False) -> str:
    rows = [",".join(str(v) for point in corners(BOXES[t]) for v in point) + f",{t}" for t in texts]
    return ("\ufeff" if bom else "") + "\n".join(rows) + "\n"


def write_sroie(root: Path) -> dict:
    """img/ + box/ (.csv and .txt), text with commas: no split."""
    for stem, suffix in (("X001", ".csv"), ("X002", ".txt")):
        image(root / "img" / f"{stem}.jpg")
        (root / "box").mkdir(exist_ok=True)
        (root / "box" / f"{stem}{suffix}").write_text(txt_lines(["TOTAL", "12,50"]), encoding="utf-8")
    return {"images": {"img/X001.jpg": ["TOTAL", "12,50"], "img/X002.jpg": ["TOTAL", "12,50"]}, "splits": None}


def write_icdar2015(root: Path) -> dict:
    """The official folders, BOM-prefixed gt_img_N.txt, `###`; the same file name in train and test."""
    for images, gts in (("ch4_training_images", "ch4_training_localization_transcription_gt"),
                        ("ch4_test_images", "Challenge4_Test_Task1_GT")):
        image(root / images / "img_1.jpg")
        (root / gts).mkdir()
        (root / gts / "gt_img_1.txt").write_text(txt_lines(["TOTAL", "###"], bom=True), encoding="utf-8")
    expected = {"ch4_training_images/img_1.jpg": ["TOTAL", "###"], "ch4_test_images/img_1.jpg": ["TOTAL", "###"]}
    return {"images": expected, "splits": {"train": ["ch4_training_images/img_1.jpg"], "val": [],
                                            "test": ["ch4_test_images/img_1.jpg"]}}


def write_cord(root: Path) -> dict:
    """{train,dev,test}/json + image, valid_line[].words[].quad, meta.image_size; dev is the val split."""
    for folder in ("train", "dev", "test"):
        image(root / folder / "image" / "receipt_00000.png")
        words = [{"quad": dict(zip(("x1", "y1", "x2", "y2", "x3", "y3", "x4", "y4"),
                                   [v for p in corners(BOXES[t]) for v in p])), "text": t, "is_key": 0}
                 for t in ("TOTAL", "12,50")]
        doc = {"valid_line": [{"words": words[:1], "category": "total.total_price"},
                              {"words": words[1:], "category": "total.total_price"}],
               "meta": {"version": "v2.0", "image_size": {"width": SIZE[0], "height": SIZE[1]}}}
        (root / folder / "json").mkdir()
        (root / folder / "json" / "receipt_00000.json").write_text(json.dumps(doc, indent=1))
    names = {f: f"{f}/image/receipt_00000.png" for f in ("train", "dev", "test")}
    return {"images": dict.fromkeys(names.values(), ["TOTAL", "12,50"]),
            "splits": {"train": [names["train"]], "val": [names["dev"]], "test": [names["test"]]}}


def write_funsd(root: Path) -> dict:
    """{training_data,testing_data}/{annotations,images}, form[].words[].box."""
    for folder in ("training_data", "testing_data"):
        image(root / folder / "images" / "0001.png")
        form = [{"box": [4, 4, 60, 12], "text": "TOTAL 12,50", "label": "answer", "id": 0,
                 "words": [{"box": list(BOXES[t]), "text": t} for t in ("TOTAL", "12,50")]}]
        (root / folder / "annotations").mkdir()
        (root / folder / "annotations" / "0001.json").write_text(json.dumps({"form": form}))
    train, test = "training_data/images/0001.png", "testing_data/images/0001.png"
    return {"images": {train: ["TOTAL", "12,50"], test: ["TOTAL", "12,50"]},
            "splits": {"train": [train], "val": [], "test": [test]}}


def write_labelme(root: Path) -> dict:
    """JSON beside each image; a polygon, a rectangle given by its bottom-right corner first, `###`."""
    for stem in ("a", "b"):
        image(root / f"{stem}.png")
        x0, y0, x1, y1 = BOXES["12,50"]
        shapes = [{"label": "TOTAL", "points": corners(BOXES["TOTAL"]), "shape_type": "polygon"},
                  {"label": "12,50", "points": [[x1, y1], [x0, y0]], "shape_type": "rectangle"},
                  {"label": "###", "points": corners(BOXES["###"]), "shape_type": "polygon"}]
        doc = {"version": "5.4.1", "shapes": shapes, "imagePath": f"{stem}.png", "imageData": None,
               "imageWidth": SIZE[0], "imageHeight": SIZE[1]}
        (root / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    return {"images": dict.fromkeys(["a.png", "b.png"], ["TOTAL", "12,50", "###"]), "splits": None}


def write_ppocrlabel(root: Path) -> dict:
    """Label.txt in the image folder, paths written as `<folder name>/<file>`."""
    lines = []
    for stem in ("a", "b"):
        image(root / f"{stem}.jpg")
        words = [{"transcription": t, "points": corners(BOXES[t]), "difficult": False} for t in ("TOTAL", "###")]
        lines.append(f"{root.name}/{stem}.jpg\t{json.dumps(words, ensure_ascii=False)}")
    (root / "Label.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"images": dict.fromkeys(["a.jpg", "b.jpg"], ["TOTAL", "###"]), "splits": None}


WRITERS = {"sroie": write_sroie, "icdar2015": write_icdar2015, "cord": write_cord, "funsd": write_funsd,
           "labelme": write_labelme, "ppocrlabel": write_ppocrlabel}

# format -> (file to corrupt, relative to the set root; old text; new text; what the error line must say)
MALFORMED = {
    "sroie": ("box/X001.csv", "4,4,30,4,30,12,4,12,TOTAL", "4,4,30,4,30,x,4,12,TOTAL",
              "box/X001.csv:1: expected 'x1,y1,...,x4,y4[,text]'"),
    "icdar2015": ("Challenge4_Test_Task1_GT/gt_img_1.txt", "4,20,30,20,30,30,4,30,###", "4,20,30,20,30,30,###",
                  "Challenge4_Test_Task1_GT/gt_img_1.txt:2: expected 'x1,y1,...,x4,y4[,text]'"),
    "cord": ("dev/json/receipt_00000.json", '"x3": 60', '"x3": "60"',
             "dev/json/receipt_00000.json: valid_line[1].words[0]: 'quad' needs numeric x3"),
    "funsd": ("testing_data/annotations/0001.json", "[34, 4, 60, 12]", "[34, 4, 60]",
              "testing_data/annotations/0001.json: form[0].words[1]: 'box' must be [x0, y0, x1, y1] numbers"),
    "labelme": ("b.json", '"shape_type": "rectangle"', '"shape_type": "circle"',
                "b.json: shapes[1]: shape_type 'circle' is not a text region"),
    "ppocrlabel": ("Label.txt", "b.jpg\t[{", "b.jpg\t{{", "Label.txt:2: malformed JSON after the tab"),
}


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_every_reader_is_a_data_sources_format():
    formats = set(get_args(get_type_hints(SourceParams)["format"]))
    assert formats - {"csv", "imagefolder"} == set(DETECTION_FORMATS)
    assert set(IMPORT_FORMATS) == set(DETECTION_FORMATS) - {"ufo"}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_import_writes_ufo_and_the_sets_own_split(fmt, tmp_path, capsys):
    src, dst = tmp_path / "set", tmp_path / "out"
    expected = WRITERS[fmt](src)
    code, out, err = run_cli(["import", fmt, src, dst], capsys)
    assert code == 0 and err == "", err
    images = read_ufo(dst / "annotations.json")
    assert set(images) == set(expected["images"])
    for name, texts in expected["images"].items():
        size, words = images[name]
        assert size == SIZE
        assert [w.text for w in words] == texts
        assert [w.ignore for w in words] == [t == "###" for t in texts]
        for word, text in zip(words, texts):
            np.testing.assert_allclose(word.points, corners(BOXES[text]))
        assert (dst / "images" / name).read_bytes() == (src / name).read_bytes()
    if expected["splits"] is None:
        assert not (dst / "splits.json").exists()
    else:
        splits = json.loads((dst / "splits.json").read_text())
        assert {k: splits[k] for k in ("train", "val", "test")} == expected["splits"]
    counts = f" ({', '.join(f'{k}={len(v)}' for k, v in expected['splits'].items())})" if expected["splits"] else ""
    words = sum(len(t) for t in expected["images"].values())
    dont_care = sum(t.count("###") for t in expected["images"].values())
    assert out.splitlines()[0] == (f"{dst}: {len(images)} images{counts}, {words} words ({dont_care} don't care), "
                                   f"0 skipped -> annotations.json{', splits.json' if counts else ''}, "
                                   "images/ (hard links)")


@pytest.mark.parametrize("fmt", sorted(MALFORMED))
def test_malformed_input_is_one_line_naming_file_and_line(fmt, tmp_path, capsys):
    src, dst = tmp_path / "set", tmp_path / "out"
    WRITERS[fmt](src)
    relative, old, new, message = MALFORMED[fmt]
    path = src / relative
    assert old in path.read_text(encoding="utf-8-sig")
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    code, out, err = run_cli(["import", fmt, src, dst], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: 1 bad input(s): ") and f"{src}/{message}" in err, err
    assert not dst.exists()  # nothing half-written
    code, out, err = run_cli(["import", fmt, src, dst, "--on-bad", "skip"], capsys)
    assert code == 0 and err.startswith("skipped: ") and f"{src}/{message}" in err
    rejected = json.loads((dst / "rejected.json").read_text())["rejected"]
    assert len(rejected) == 1 and message in f"{rejected[0]['item']}: {rejected[0]['reason']}"


def test_malformed_json_file_names_its_line(tmp_path, capsys):
    src, dst = tmp_path / "set", tmp_path / "out"
    write_cord(src)
    path = src / "test" / "json" / "receipt_00000.json"
    path.write_text(path.read_text().replace('"is_key": 0', '"is_key": 0,', 1))
    code, _, err = run_cli(["import", "cord", src, dst], capsys)
    assert code == 2 and err.startswith(f"error: {path}: line ") and "malformed JSON" in err and err.count("\n") == 1
    assert not dst.exists()


def test_missing_image_and_unannotated_image_are_named(tmp_path, capsys):
    src, dst = tmp_path / "set", tmp_path / "out"
    write_ppocrlabel(src)
    (src / "b.jpg").unlink()
    image(src / "c.jpg")
    image(src / "crop_img" / "a_crop_0.jpg", (26, 8))  # PPOCRLabel's exported word crops: not part of the set
    code, _, err = run_cli(["import", "ppocrlabel", src, dst], capsys)
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("error: 2 bad input(s): ")
    assert f"{src}/b.jpg: annotation for a missing image" in err and f"{src}/c.jpg: image without annotation" in err


def test_formats_that_find_their_own_annotations_refuse_an_annotations_key(tmp_path, write_params):
    params = write_params(tmp_path, sources=[{"name": "c", "format": "cord", "images": "raw/cord", "annotations": "x"}])
    with pytest.raises(ConfigError, match=r"data.sources\[0\].annotations: not used by format 'cord'"):
        load_params(params)


def test_size_is_the_upright_frame_when_the_set_declares_none(tmp_path, capsys):
    src, dst = tmp_path / "set", tmp_path / "out"
    write_sroie(src)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees: annotations are in the shown frame
    Image.new("RGB", (80, 50), "white").save(src / "img" / "X001.jpg", exif=exif)
    assert run_cli(["import", "sroie", src, dst], capsys)[0] == 0
    assert read_ufo(dst / "annotations.json")["img/X001.jpg"][0] == (50, 80)


def test_output_folder_must_not_hold_the_source_or_something_else(tmp_path, capsys):
    src = tmp_path / "set"
    write_labelme(src)
    code, _, err = run_cli(["import", "labelme", src, src / "ufo"], capsys)
    assert code == 2 and "must lie outside the source" in err
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    code, _, err = run_cli(["import", "labelme", src, other], capsys)
    assert code == 2 and "is not an earlier import" in err and (other / "keep.txt").read_text() == "mine"
    assert run_cli(["import", "labelme", src, tmp_path / "ufo"], capsys)[0] == 0
    assert run_cli(["import", "labelme", src, tmp_path / "ufo"], capsys)[0] == 0  # an earlier import is replaced


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_preprocess_reads_each_format_as_a_data_source(fmt, tmp_path, write_params):
    root = tmp_path / "repo"
    expected = WRITERS[fmt](root / "raw" / fmt)
    overrides = {"data.split.val": 0.0, "data.split.test": 0.0}
    params = write_params(root, overrides, sources=[{"name": fmt, "format": fmt, "images": f"raw/{fmt}"}])
    stats = preprocess(load_params(params), root, root / "processed", root / "data.json")
    images = read_ufo(root / "processed" / "annotations.json")
    keys = {f"{fmt}/{Path(name).with_suffix('.jpg').as_posix()}" for name in expected["images"]}
    assert set(images) == keys and stats["rejected"] == 0
    for key, name in zip(sorted(keys), sorted(expected["images"])):
        assert len(images[key][1]) == len(expected["images"][name])


def test_a_source_read_directly_takes_the_split_file_an_import_wrote(tmp_path, write_params, capsys):
    root = tmp_path / "repo"
    write_cord(root / "raw" / "cord")
    assert run_cli(["import", "cord", root / "raw" / "cord", tmp_path / "cord_ufo"], capsys)[0] == 0
    params = write_params(root, {"data.split.file": str(tmp_path / "cord_ufo" / "splits.json")},
                          sources=[{"name": "cord", "format": "cord", "images": "raw/cord"}])
    preprocess(load_params(params), root, root / "processed", root / "data.json")
    splits = json.loads((root / "processed" / "splits.json").read_text())
    assert splits == {"train": ["cord/train/image/receipt_00000.jpg"], "val": ["cord/dev/image/receipt_00000.jpg"],
                      "test": ["cord/test/image/receipt_00000.jpg"]}


def test_a_folder_without_the_sets_files_is_one_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(["import", "labelme", tmp_path / "empty", tmp_path / "out"], capsys)
    assert code == 2 and err == f"error: {tmp_path / 'empty'}: no annotated images found (is it the labelme layout? " \
                                "README: Public sets)\n"
    code, _, err = run_cli(["import", "cord", tmp_path / "empty", tmp_path / "out"], capsys)
    assert code == 2 and err == f"error: {tmp_path / 'empty' / 'json'}: annotation folder not found\n"
    assert not (tmp_path / "out").exists()


def test_annotations_outside_the_image_folder(tmp_path, capsys, monkeypatch):
    src = tmp_path / "set"
    write_sroie(src)
    monkeypatch.chdir(tmp_path)  # a relative SRC with an absolute --annotations
    assert run_cli(["import", "icdar", "set/img", tmp_path / "out", "--annotations", src / "box"], capsys)[0] == 0
    assert sorted(read_ufo(tmp_path / "out" / "annotations.json")) == ["X001.jpg", "X002.jpg"]
    labelme = tmp_path / "lm"
    write_labelme(labelme)
    (labelme / "json").mkdir()
    for name in ("a.json", "b.json"):
        doc = json.loads((labelme / name).read_text())
        (labelme / "json" / name).write_text(json.dumps({**doc, "imagePath": f"../{doc['imagePath']}"}))
        (labelme / name).unlink()
    code, _, err = run_cli(["import", "labelme", "lm", "lm_ufo", "--annotations", labelme / "json"], capsys)
    assert code == 0, err
    assert sorted(read_ufo(tmp_path / "lm_ufo" / "annotations.json")) == ["a.png", "b.png"]
