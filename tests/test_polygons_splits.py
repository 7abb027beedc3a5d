"""Polygon validation/normalisation and seeded, stratified splits (with split files)."""
import json
from collections import Counter

import numpy as np
import pytest

from doclab.data.polygons import check_polygon, normalise_order, signed_area
from doclab.data.records import DataError
from doclab.data.splits import assign_splits, read_split_file

SQUARE = np.array([[10.0, 10.0], [30.0, 10.0], [30.0, 20.0], [10.0, 20.0]])  # clockwise on screen


# --- polygons --------------------------------------------------------------------------------------

def test_signed_area_positive_for_clockwise_on_screen():
    assert signed_area(SQUARE) == pytest.approx(200.0)
    assert signed_area(SQUARE[::-1]) == pytest.approx(-200.0)


@pytest.mark.parametrize("points", [SQUARE, SQUARE[::-1], np.roll(SQUARE, 2, axis=0), np.roll(SQUARE[::-1], 1, axis=0)])
def test_normalise_order_clockwise_from_top_left(points):
    np.testing.assert_array_equal(normalise_order(points), SQUARE)


def test_normalise_order_keeps_polygons_with_more_points_clockwise():
    pentagon = np.array([[0, 0], [4, 4], [10, 4], [10, 0], [5, -3]], dtype=float)  # counter-clockwise on screen
    out = normalise_order(pentagon)
    assert signed_area(out) > 0 and len(out) == 5
    assert {tuple(p) for p in out} == {tuple(p) for p in pentagon}


def test_valid_polygon_is_returned_normalised():
    clean, message = check_polygon(SQUARE[::-1], 100, 50, min_side=1.0)
    assert message == ""
    np.testing.assert_array_equal(clean, SQUARE)


@pytest.mark.parametrize("points, reason", [
    (np.array([[1.0, 1.0], [5.0, 5.0]]), "polygon has 2 point(s), needs at least 3"),
    (np.zeros((0, 2)), "polygon has 0 point(s)"),
    (np.array([[1.0, 1.0], [np.nan, 5.0], [5.0, 9.0]]), "NaN or infinite"),
    (np.array([[1.0, 1.0], [np.inf, 5.0], [5.0, 9.0]]), "NaN or infinite"),
    (np.array([[1.0, 1.0], [5.0, -np.inf], [5.0, 9.0]]), "NaN or infinite"),
    (np.array([[10.0, 10.0], [20.0, 10.0], [30.0, 10.0], [40.0, 10.0]]), "zero-area polygon"),
    (np.array([[10.0, 10.0], [10.0, 10.0], [10.0, 10.0]]), "zero-area polygon"),
    (np.array([[0.0, 0.0], [20.0, 20.0], [20.0, 0.0], [0.0, 20.0]]), "self-intersecting polygon"),  # symmetric bow-tie
    (np.array([[0.0, 0.0], [30.0, 20.0], [30.0, 0.0], [0.0, 10.0]]), "self-intersecting polygon"),
    (np.array([[10.0, 10.0], [40.0, 10.0], [40.0, 10.5], [10.0, 10.5]]), "degenerate polygon (0.50 px thin"),
    (np.array([[200.0, 10.0], [240.0, 10.0], [240.0, 20.0], [200.0, 20.0]]), "polygon lies outside the image"),
])
def test_unusable_polygons_are_rejected_with_a_reason(points, reason):
    clean, message = check_polygon(points, 100, 50, min_side=1.0)
    assert clean is None and reason in message


def test_out_of_bounds_points_are_clipped_and_noted():
    points = np.array([[-5.0, 10.0], [120.0, 10.0], [120.0, 60.0], [-5.0, 60.0]])
    clean, message = check_polygon(points, 100, 50, min_side=1.0)
    np.testing.assert_array_equal(clean, [[0, 10], [100, 10], [100, 50], [0, 50]])
    assert message == "points outside the 100x50 image clipped (by up to 20.0 px)"


def test_points_on_the_border_are_inside():
    points = np.array([[0.0, 0.0], [100.0, 0.0], [100.0, 50.0], [0.0, 50.0]])
    clean, message = check_polygon(points, 100, 50, min_side=1.0)
    assert message == "" and clean is not None


def test_min_side_zero_keeps_thin_words():
    thin = np.array([[10.0, 10.0], [40.0, 10.0], [40.0, 10.5], [10.0, 10.5]])
    assert check_polygon(thin, 100, 50, min_side=0.0)[0] is not None


# --- splits --------------------------------------------------------------------------------------

def make_groups(sizes: dict[str, int]) -> dict[str, str]:
    return {f"src/{group}_{i:03d}.jpg": group for group, n in sizes.items() for i in range(n)}


def test_splits_partition_every_id_and_are_stratified():
    groups = make_groups({"invoice": 40, "receipt": 20, "letter": 60})
    splits = assign_splits(groups, val=0.1, test=0.2, seed=3)
    all_ids = splits["train"] + splits["val"] + splits["test"]
    assert sorted(all_ids) == sorted(groups) and len(set(all_ids)) == len(all_ids)
    for split in splits.values():
        assert split == sorted(split)
    counts = {s: Counter(groups[i] for i in ids) for s, ids in splits.items()}
    assert counts["test"] == {"invoice": 8, "receipt": 4, "letter": 12}
    assert counts["val"] == {"invoice": 4, "receipt": 2, "letter": 6}


def test_splits_are_seeded():
    groups = make_groups({"a": 50, "b": 50})
    first = assign_splits(groups, 0.2, 0.2, seed=1)
    assert assign_splits(dict(reversed(list(groups.items()))), 0.2, 0.2, seed=1) == first  # order-independent
    assert assign_splits(groups, 0.2, 0.2, seed=2) != first


def test_zero_fractions_put_everything_in_train():
    groups = make_groups({"a": 5})
    assert assign_splits(groups, 0.0, 0.0, seed=0) == {"train": sorted(groups), "val": [], "test": []}


def write_split_file(tmp_path, doc) -> object:
    path = tmp_path / "splits.json"
    path.write_text(json.dumps(doc))
    return path


IDS = ["a/x.jpg", "a/y.jpg", "b/y.jpg", "b/z.jpg"]


def test_split_file_full_ids_bare_names_and_suffixes(tmp_path):
    path = write_split_file(tmp_path, {"train": ["a/x.jpg", "z.png"], "test": ["b/y"], "note": "ignored"})
    assert read_split_file(path, IDS) == {"a/x.jpg": "train", "b/z.jpg": "train", "b/y.jpg": "test"}


@pytest.mark.parametrize("doc, expected", [
    ({"train": ["y.jpg"]}, "'train' entry 'y.jpg' is ambiguous across sources"),
    ({"test": ["nope.jpg"]}, "'test' entry 'nope.jpg' is not among the preprocessed images"),
    ({"train": ["a/x.jpg"], "test": ["x.jpg"]}, "'x.jpg' is listed in both 'train' and 'test'"),
    ({"val": "a/x.jpg"}, "'val' must be a list"),
    (["a/x.jpg"], "expected an object with 'train'/'val'/'test' lists"),
])
def test_bad_split_files(tmp_path, doc, expected):
    path = write_split_file(tmp_path, doc)
    with pytest.raises(DataError) as exc:
        read_split_file(path, IDS)
    assert str(exc.value).startswith(str(path)) and expected in str(exc.value)


def test_split_file_duplicate_key_is_an_error(tmp_path):
    path = tmp_path / "splits.json"
    path.write_text('{"train": ["a/x.jpg"], "train": ["a/y.jpg"]}')
    with pytest.raises(DataError, match="duplicate key 'train'"):
        read_split_file(path, IDS)


def test_split_file_entries_for_dropped_images_are_skipped(tmp_path):
    path = write_split_file(tmp_path, {"train": ["a/x.jpg", "gone.jpg"], "test": ["b/z.jpg"]})
    assert read_split_file(path, IDS, dropped={"a/gone.jpg"}) == {"a/x.jpg": "train", "b/z.jpg": "test"}
    with pytest.raises(DataError, match="'gone.jpg' is not among"):
        read_split_file(path, IDS)


def test_explicit_split_wins_and_val_is_carved_from_train():
    groups = make_groups({"a": 20, "b": 20})
    ids = sorted(groups)
    explicit = {i: ("test" if n % 4 == 0 else "train") for n, i in enumerate(ids)}
    splits = assign_splits(groups, val=0.25, test=0.5, seed=0, explicit=explicit)
    assert splits["test"] == sorted(i for i, s in explicit.items() if s == "test")  # test fraction ignored
    train_listed = {i for i, s in explicit.items() if s == "train"}
    assert set(splits["val"]) | set(splits["train"]) == train_listed
    assert Counter(groups[i] for i in splits["val"]) == {"a": 4, "b": 4}  # 25% of each group's 15 train ids
    again = assign_splits(groups, val=0.25, test=0.5, seed=0, explicit=explicit)
    assert again == splits


def test_explicit_val_is_kept_and_unlisted_ids_are_split_randomly():
    groups = make_groups({"a": 30})
    ids = sorted(groups)
    explicit = {ids[0]: "val", ids[1]: "test", ids[2]: "train"}
    splits = assign_splits(groups, val=0.2, test=0.2, seed=0, explicit=explicit)
    assert ids[0] in splits["val"] and ids[1] in splits["test"] and ids[2] in splits["train"]
    assert len(splits["val"]) == 1 + round(27 * 0.2) and len(splits["test"]) == 1 + round(27 * 0.2)


def test_small_groups_still_fill_val_and_test():
    from doclab.data.splits import assign_splits

    groups = {f"s/{cls}_{i}.jpg": cls for cls in "abcdef" for i in range(2)}
    splits = assign_splits(groups, val=0.15, test=0.15, seed=0)
    assert len(splits["val"]) == 2 and len(splits["test"]) == 2 and len(splits["train"]) == 8
    assert len({groups[i] for i in splits["val"] + splits["test"]}) == 4, "quota not spread over groups"
    assert splits == assign_splits(groups, val=0.15, test=0.15, seed=0)
