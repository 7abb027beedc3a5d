"""DBNet targets: shrink kernels, ignore masks, threshold map against a brute-force distance."""
from __future__ import annotations

import numpy as np
import pytest
import shapely

from doclab.detection.targets import make_db_targets, shrink_distances


def rectangle(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)


def rotated_rectangle(cx, cy, w, h, degrees):
    a = np.deg2rad(degrees)
    rotation = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    return np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2 @ rotation + [cx, cy]


def brute_force_values(polygons, height, width, shrink_ratio=0.4):
    """1 - min(dist / D, 1), max over polygons, from every pixel to every edge."""
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    best = np.zeros((height, width))
    for polygon, distance in zip(polygons, shrink_distances(polygons, shrink_ratio, 0.0)):
        nearest = np.full((height, width), np.inf)
        for start, end in zip(polygon, np.roll(polygon, -1, axis=0)):
            d = end - start
            t = np.clip(((xs - start[0]) * d[0] + (ys - start[1]) * d[1]) / (d @ d), 0, 1)
            nearest = np.minimum(nearest, np.hypot(xs - start[0] - t * d[0], ys - start[1] - t * d[1]))
        best = np.maximum(best, 1 - np.minimum(nearest / distance, 1))
    return best


def test_shrink_distance_is_area_times_one_minus_r_squared_over_perimeter():
    distances = shrink_distances([rectangle(0, 0, 40, 10)], 0.4, 3.0)
    assert distances[0] == pytest.approx(400 * (1 - 0.16) / 100)


def test_shrink_distance_nan_for_small_or_flat_polygons():
    flat = np.array([[0, 0], [10, 0], [20, 0]], np.float64)
    thin = rectangle(0, 0, 40, 2)
    assert np.isnan(shrink_distances([flat, thin], 0.4, 3.0)).all()


def test_prob_map_is_the_shrunk_rectangle():
    maps = make_db_targets([rectangle(10, 10, 70, 40)], [False], 64, 96)
    distance = 60 * 30 * 0.84 / 180  # 8.4 px
    ys, xs = np.nonzero(maps["prob_map"])
    assert xs.min() == pytest.approx(10 + distance, abs=1) and xs.max() == pytest.approx(70 - distance, abs=1)
    assert ys.min() == pytest.approx(10 + distance, abs=1) and ys.max() == pytest.approx(40 - distance, abs=1)
    assert maps["prob_mask"].min() == 1.0
    assert all(m.dtype == np.float32 and m.shape == (64, 96) for m in maps.values())


@pytest.mark.parametrize(
    "polygon",
    [
        rotated_rectangle(40, 30, 50, 20, 17),  # the rectangle path
        np.array([[10, 10], [60, 14], [66, 44], [30, 50], [8, 36]], np.float64),  # the edge-by-edge path
        np.array([[10, 10], [70, 10], [70, 50], [40, 25], [10, 50]], np.float64),  # concave
    ],
)
def test_threshold_map_matches_brute_force_distance(polygon):
    maps = make_db_targets([polygon], [False], 64, 80, thresh_min=0.3, thresh_max=0.7)
    expected = 0.3 + 0.4 * brute_force_values([polygon], 64, 80)
    np.testing.assert_allclose(maps["thresh_map"], expected, atol=1e-4)


def test_threshold_range_and_shrink_ratio_are_configurable():
    polygon = rotated_rectangle(40, 30, 50, 20, 17)
    maps = make_db_targets([polygon], [False], 64, 80, shrink_ratio=0.6, thresh_min=0.1, thresh_max=0.9)
    expected = 0.1 + 0.8 * brute_force_values([polygon], 64, 80, shrink_ratio=0.6)
    np.testing.assert_allclose(maps["thresh_map"], expected, atol=1e-4)
    assert maps["thresh_mask"][0, 0] == 0.0 and maps["thresh_mask"][30, 40] == 1.0


def test_thresh_mask_is_polygon_plus_distance_d():
    polygon = rotated_rectangle(40, 30, 50, 20, 17)
    maps = make_db_targets([polygon], [False], 64, 80)
    near = brute_force_values([polygon], 64, 80) > 0
    ys, xs = np.mgrid[0:64, 0:80]
    inside = shapely.contains_xy(shapely.Polygon(polygon), xs, ys)
    disagree = maps["thresh_mask"] != (near | inside)
    assert maps["thresh_mask"][32, 40] == 1.0 and maps["thresh_mask"][0, 0] == 0.0
    assert not disagree.any()


def test_overlapping_polygons_take_the_max():
    polygons = [rectangle(10, 10, 50, 30), rotated_rectangle(45, 28, 40, 16, 30)]
    maps = make_db_targets(polygons, [False, False], 64, 80)
    np.testing.assert_allclose(maps["thresh_map"], 0.3 + 0.4 * brute_force_values(polygons, 64, 80), atol=1e-4)


def test_rectangle_and_general_paths_agree():
    square = rectangle(12, 8, 52, 40)
    with_midpoint = np.insert(square, 1, [32, 8], axis=0)  # five points: edge-by-edge path
    a = make_db_targets([square], [False], 48, 64)
    b = make_db_targets([with_midpoint], [False], 48, 64)
    np.testing.assert_allclose(a["thresh_map"], b["thresh_map"], atol=1e-5)
    np.testing.assert_array_equal(a["prob_map"], b["prob_map"])


def test_ignored_and_too_small_polygons_only_blank_the_mask():
    polygons = [rectangle(5, 5, 40, 20), rectangle(50, 5, 90, 6.5), rectangle(10, 30, 60, 50)]
    maps = make_db_targets(polygons, [True, False, False], 64, 96, min_text_size=3.0)
    assert maps["prob_mask"][12, 20] == 0.0 and maps["prob_mask"][5, 70] == 0.0
    assert maps["prob_map"][:25].max() == 0.0 and maps["thresh_mask"][:25].max() == 0.0
    assert maps["thresh_map"][:25].max() == pytest.approx(0.3)
    assert maps["prob_map"][40, 35] == 1.0 and maps["prob_mask"][40, 35] == 1.0


def test_polygons_partly_or_wholly_outside_are_clipped():
    polygons = [rectangle(-20, -10, 30, 20), rectangle(200, 200, 260, 240)]
    maps = make_db_targets(polygons, [False, False], 32, 48)
    assert maps["prob_map"][5, 5] == 1.0
    assert 0.3 <= maps["thresh_map"].min() and maps["thresh_map"].max() <= 0.7 + 1e-6
    expected = 0.3 + 0.4 * brute_force_values(polygons[:1], 32, 48)
    np.testing.assert_allclose(maps["thresh_map"], expected, atol=1e-4)


def test_no_polygons_gives_empty_targets():
    maps = make_db_targets([], [], 16, 24)
    assert maps["prob_map"].max() == 0 and maps["prob_mask"].min() == 1 and maps["thresh_mask"].max() == 0
    np.testing.assert_allclose(maps["thresh_map"], 0.3)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="ignore flags"):
        make_db_targets([rectangle(0, 0, 5, 5)], [], 8, 8)
    with pytest.raises(ValueError, match="polygon 0 has 2 points"):
        make_db_targets([np.zeros((2, 2))], [False], 8, 8)
