"""Readers: UFO JSON, ICDAR/SROIE txt, labels CSV + meta.csv, ImageFolder, and collect_items over sources."""
import json

import numpy as np
import pytest

from doclab.config import SourceParams
from doclab.data.formats.icdar import annotation_file, read_icdar_txt
from doclab.data.formats.labels import read_image_folder, read_label_csv, read_meta
from doclab.data.formats.ufo import load_json, read_ufo, ufo_image_entry
from doclab.data.records import DataError, Word
from doclab.data.sources import collect_items


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# --- UFO JSON ---------------------------------------------------------------------------------

def test_read_ufo_sizes_words_and_dont_care(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"images": {
        "b.jpg": {"img_w": 100, "img_h": 50.0, "words": {
            "0001": {"points": [[1, 2], [30, 2], [30, 12], [1, 12]], "transcription": "TOTAL"},
            "0002": {"points": [[40, 2], [60, 2], [60, 12]], "transcription": "###"},
            "0003": {"points": [[1, 20], [9, 20], [9, 30], [1, 30]], "illegibility": True}}},
        "a.jpg": {"words": {}},
    }}))
    images = read_ufo(path)
    assert list(images) == ["b.jpg", "a.jpg"]  # file order kept
    size, words = images["b.jpg"]
    assert size == (100, 50)
    assert [w.text for w in words] == ["TOTAL", "###", None]
    assert [w.ignore for w in words] == [False, True, True]
    assert words[0].points.dtype == np.float64 and words[0].points.shape == (4, 2)
    assert words[1].points.shape == (3, 2)  # geometry is judged later, not by the reader
    assert images["a.jpg"] == (None, ())


@pytest.mark.parametrize("entry, expected", [
    ({"img_w": -5, "img_h": 10, "words": {}}, "'img_w' must be a positive number"),
    ({"img_w": 10, "img_h": True, "words": {}}, "'img_h' must be a positive number"),
    ({"words": []}, "'words' must be a mapping"),
    ({"words": {"w7": {"transcription": "x"}}}, "word 'w7': each word must be an object with 'points'"),
    ({"words": {"w7": {"points": [[1, 2, 3]]}}}, "word 'w7': 'points' must be a list of [x, y] pairs"),
    ({"words": {"w7": {"points": [["a", "b"]]}}}, "word 'w7': 'points' must be a list of numeric"),
    ({"words": {"w7": {"points": [[0, 0], [1, 0], [1, 1]], "transcription": 5}}}, "'transcription' must be a string"),
    ("nope", "expected an object with 'words'"),
])
def test_read_ufo_bad_structure_names_file_image_and_word(tmp_path, entry, expected):
    path = tmp_path / "ann.json"
    path.write_text(json.dumps({"images": {"r1.jpg": entry}}))
    with pytest.raises(DataError) as exc:
        read_ufo(path)
    message = one_line(exc)
    assert str(path) in message and "'r1.jpg'" in message and expected in message


def test_read_ufo_not_ufo(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected an object with an 'images' mapping"):
        read_ufo(path)


def test_malformed_json_names_file_and_line(tmp_path):
    path = tmp_path / "ann.json"
    path.write_text('{\n  "images": {\n    "a.jpg": {"words": {},}\n  }\n}\n')
    with pytest.raises(DataError) as exc:
        read_ufo(path)
    message = one_line(exc)
    assert message.startswith(f"{path}: line 3: malformed JSON")


def test_json_missing_and_not_utf8(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_json(tmp_path / "nope.json")
    path = tmp_path / "latin1.json"
    path.write_bytes('{"images": {"caf\xe9.jpg": {}}}'.encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load_json(path)


DUPLICATES = """{"images": {
  "a.jpg": {"words": {"0001": {"points": [[0, 0], [9, 0], [9, 9]]},
                      "0001": {"points": [[5, 5], [6, 5], [6, 6]]}}},
  "b.jpg": {"words": {}},
  "b.jpg": {"img_w": 3, "img_h": 3, "words": {}}
}}"""


def test_duplicate_ids_reported_with_their_location_first_kept(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(DUPLICATES)
    problems = []
    images = read_ufo(path, problems)
    assert images["a.jpg"][1][0].points[1].tolist() == [9, 0]  # the first word 0001 kept
    assert images["b.jpg"][0] is None  # the first b.jpg kept
    reasons = sorted(p.reason for p in problems)
    assert all(p.item == str(path) for p in problems)
    assert len(reasons) == 2
    assert "duplicate id '0001'" in reasons[0] and "'a.jpg'" in reasons[0]  # names the image
    assert "duplicate id 'b.jpg'" in reasons[1] and "'images'" in reasons[1]


def test_duplicate_ids_are_an_error_without_a_problem_list(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text(DUPLICATES)
    with pytest.raises(DataError) as exc:
        read_ufo(path)
    message = one_line(exc)
    assert str(path) in message and "duplicate key" in message


def test_ufo_image_entry_round_trips(tmp_path):
    words = [Word(np.array([[1.234, 2.0], [5.0, 2.0], [5.0, 7.556]]), text="hi"),
             Word(np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 3.0], [0.0, 3.0]]), ignore=True)]
    entry = ufo_image_entry(40, 30, words, extra={"source": "s"})
    assert list(entry["words"]) == ["0001", "0002"] and entry["source"] == "s"
    path = tmp_path / "rt.json"
    path.write_text(json.dumps({"images": {"x.jpg": entry}}))
    size, back = read_ufo(path)["x.jpg"]
    assert size == (40, 30)
    assert back[0].text == "hi" and not back[0].ignore
    np.testing.assert_allclose(back[0].points, [[1.23, 2.0], [5.0, 2.0], [5.0, 7.56]])
    assert back[1].ignore and back[1].text is None


# --- ICDAR / SROIE txt --------------------------------------------------------------------------

def test_icdar_annotation_file_lookup(tmp_path):
    (tmp_path / "a.txt").write_text("")
    (tmp_path / "gt_b.txt").write_text("")
    assert annotation_file(tmp_path, "a.jpg") == tmp_path / "a.txt"
    assert annotation_file(tmp_path, "b.png") == tmp_path / "gt_b.txt"
    assert annotation_file(tmp_path, "c.jpg") is None


def test_icdar_txt_text_with_commas_dont_care_bom_and_bad_lines(tmp_path):
    path = tmp_path / "gt_img.txt"
    lines = ["1,2,30,2,30,12,1,12,TOTAL: 1,234.00", "", "5,5,9,5,9,9,5,9,###",
             "0,0,4,0,4,4,0,4", "1,2,3,four,5,6,7,8,x", "1,2,3,4"]
    path.write_bytes(("\ufeff" + "\n".join(lines) + "\n").encode("utf-8"))
    words, problems = read_icdar_txt(path)
    assert [w.text for w in words] == ["TOTAL: 1,234.00", "###", None]
    assert [w.ignore for w in words] == [False, True, False]
    assert words[0].points.tolist() == [[1, 2], [30, 2], [30, 12], [1, 12]]
    assert [p.item for p in problems] == [f"{path}:5", f"{path}:6"]
    assert all("expected 'x1,y1,...,x4,y4[,text]'" in p.reason for p in problems)


def test_icdar_txt_not_utf8(tmp_path):
    path = tmp_path / "x.txt"
    path.write_bytes(b"1,2,3,4,5,6,7,8,\xff\xfe\xfa\n")
    with pytest.raises(DataError, match="not UTF-8"):
        read_icdar_txt(path)


# --- labels CSV + meta.csv ---------------------------------------------------------------------

def test_label_csv_with_meta_maps_targets_and_reports_bad_rows(tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text("target,class_name\n0,invoice\n1,receipt\n")
    labels = tmp_path / "labels.csv"
    labels.write_text("ID,target\na.jpg,0\n\nb.jpg,1\na.jpg,1\nc.jpg,7\nd.jpg\ne.jpg,1,extra\n,1\n")
    mapping, problems = read_label_csv(labels, read_meta(meta))
    assert mapping == {"a.jpg": "invoice", "b.jpg": "receipt"}
    by_line = {p.item: p.reason for p in problems}
    assert set(by_line) == {f"{labels}:{n}" for n in (5, 6, 7, 8, 9)}  # file:line, blank line 3 counted
    assert "duplicate ID 'a.jpg'" in by_line[f"{labels}:5"]
    assert "unknown label '7'" in by_line[f"{labels}:6"] and "0, 1" in by_line[f"{labels}:6"]
    assert all("expected 'ID,target'" in by_line[f"{labels}:{n}"] for n in (7, 8, 9))


def test_label_csv_without_meta_keeps_raw_targets(tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("\ufeffID,target\r\na.jpg,cat\r\nb.jpg, dog \r\n", encoding="utf-8")
    mapping, problems = read_label_csv(labels, None)
    assert mapping == {"a.jpg": "cat", "b.jpg": "dog"} and problems == []


@pytest.mark.parametrize("text, line, what", [
    ('ID,target\na.jpg,0\nb.jpg,"unclosed\nc.jpg,1\n', 3, "unexpected end of data"),
    ('ID,target\na.jpg,"0"x\n', 2, "expected after"),
    ("ID,target\na.jpg," + "x" * 200_000 + "\n", 2, "field larger than field limit"),
    ("id;target\na.jpg;0\n", 1, "expected the header 'ID,target'"),
    ("", 1, "expected the header 'ID,target'"),
])
def test_malformed_label_csv_names_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        read_label_csv(path, None)
    message = one_line(exc)
    assert message.startswith(f"{path}: line {line}:") and what in message


@pytest.mark.parametrize("text, expected", [
    ("target,class_name\n0,a\n0,b\n", "line 3: target '0' listed twice"),
    ("target,class_name\n0,a\n1\n", "line 3: expected 'target,class_name'"),
    ("target,class_name\n0,\n", "line 2: expected 'target,class_name'"),
])
def test_bad_meta_csv_is_an_error(tmp_path, text, expected):
    path = tmp_path / "meta.csv"
    path.write_text(text)
    with pytest.raises(DataError) as exc:
        read_meta(path)
    assert expected in one_line(exc) and str(path) in str(exc.value)


def test_label_csv_missing(tmp_path):
    with pytest.raises(DataError, match="labels.csv: file not found"):
        read_label_csv(tmp_path / "labels.csv", None)


# --- ImageFolder ---------------------------------------------------------------------------------

def test_image_folder(tmp_path):
    for rel in ("cat/a.jpg", "cat/sub/b.PNG", "dog/c.jpeg", "dog/notes.txt", "empty/readme.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    labels, problems = read_image_folder(tmp_path)
    assert labels == {"cat/a.jpg": "cat", "cat/sub/b.PNG": "cat", "dog/c.jpeg": "dog"}
    assert [p.item for p in problems] == [str(tmp_path / "empty")]
    assert "has no images" in problems[0].reason
    with pytest.raises(DataError, match="image folder not found"):
        read_image_folder(tmp_path / "missing")


# --- collect_items over data.sources ----------------------------------------------------------

def test_collect_items_over_every_format(make_dataset):
    ds = make_dataset(n_images=4)
    root = ds.root
    icdar_images, icdar_ann = root / "icdar" / "img", root / "icdar" / "gt"
    icdar_ann.mkdir(parents=True)
    icdar_images.mkdir(parents=True)
    for name in ("r1.jpg", "r2.jpg"):
        (icdar_images / name).write_bytes((ds.images / "doc_000.jpg").read_bytes())
    (icdar_ann / "gt_r1.txt").write_text("1,1,20,1,20,9,1,9,HELLO\n")
    folder = root / "folder"
    for rel in ("invoice/x.png", "receipt/y.png"):
        (folder / rel).parent.mkdir(parents=True)
        (folder / rel).write_bytes((ds.images / "doc_001.png").read_bytes())
    sources = (
        SourceParams(**ds.source()),
        SourceParams(name="sroie", format="icdar", images="icdar/img", annotations="icdar/gt"),
        SourceParams(name="csvdocs", format="csv", images=ds.rel(ds.images), labels=ds.rel(ds.labels)),
        SourceParams(name="folder", format="imagefolder", images="folder"),
    )
    items, problems = collect_items(sources, root)
    by_id = {item.id: item for item in items}
    assert list(by_id)[:4] == [f"docs/doc_00{i}.{'jpg' if i % 2 == 0 else 'png'}" for i in range(4)]
    first = by_id["docs/doc_000.jpg"]
    assert first.source == "docs" and first.label == "invoice" and first.size == ds.sizes["doc_000.jpg"]
    assert len(first.words) == 3 and first.path == ds.images / "doc_000.jpg"
    assert by_id["sroie/r1.jpg"].words[0].text == "HELLO" and by_id["sroie/r1.jpg"].size is None
    assert "sroie/r2.jpg" not in by_id
    assert by_id["csvdocs/doc_001.png"].label == "1" and by_id["csvdocs/doc_001.png"].words is None
    assert by_id["folder/invoice/x.png"].label == "invoice" and by_id["folder/receipt/y.png"].label == "receipt"
    assert [(p.item, p.reason) for p in problems] == [("sroie/r2.jpg", "image without annotation")]


def test_collect_items_missing_annotation_paths(make_dataset):
    ds = make_dataset(n_images=2)
    with pytest.raises(DataError, match="missing.json: file not found"):
        collect_items((SourceParams(**ds.source(annotations="raw/docs/missing.json")),), ds.root)
    with pytest.raises(DataError, match="meta.csv: file not found"):
        collect_items((SourceParams(**ds.source(meta="raw/docs/nope/meta.csv")),), ds.root)
    with pytest.raises(DataError, match="annotation folder not found"):
        collect_items((SourceParams(name="s", format="icdar", images=ds.rel(ds.images), annotations="nope"),), ds.root)
    with pytest.raises(DataError, match="image folder not found"):
        collect_items((SourceParams(**ds.source(images="nope")),), ds.root)
