"""Per-source-size detection scores (doclab.detection.breakdown): groups, and group metrics equal to
the split metrics computed on the group's images alone."""
import json

import numpy as np
import pytest

from doclab.detection.breakdown import OTHER, size_breakdown, size_groups, source_sizes
from doclab.metrics.detection import DetectionScores


def _square(x, y, w=40, h=10):
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def _score(images):
    scores = DetectionScores()
    for key, (gt, found) in images.items():
        scores.update(key, gt, found)
    return scores


def test_groups_keep_common_sizes_and_pool_the_rest():
    sizes = {**{f"scan{i}": (905, 1280) for i in range(4)}, "a": (463, 1013), "b": (500, 900), "c": (463, 1013)}
    groups = size_groups(sizes, list(sizes))
    assert {groups[f"scan{i}"] for i in range(4)} == {"905x1280"}
    assert groups["a"] == groups["b"] == groups["c"] == OTHER  # 2 images: below MIN_IMAGES


def test_group_metrics_equal_the_metrics_of_the_group_alone():
    rng = np.random.default_rng(0)
    images = {}
    for index in range(9):
        gt = [_square(10, 20 * k) for k in range(4)]
        found = [p + rng.normal(0, 3, p.shape) for p in gt[: 2 + index % 3]]
        if index % 4 == 0:  # the first line found as two halves: a split
            found[0:1] = [_square(10, 0, 18), _square(31, 0, 18)]
        images[f"img{index}.jpg"] = (gt, found)
    groups = {key: "big" if int(key[3]) < 3 else "small" for key in images}
    breakdown = size_breakdown(_score(images).per_image(), groups)
    assert list(breakdown) == ["small", "big"]  # largest group first
    assert breakdown["big"]["num_split"] > 0
    for name in ("big", "small"):
        alone = _score({k: v for k, v in images.items() if groups[k] == name})
        expected = alone.compute()
        for metric in ("cleval/hmean", "cleval/precision", "cleval/recall", "iou/hmean"):
            assert breakdown[name][metric] == pytest.approx(expected[metric], abs=1e-6), (name, metric)
        assert breakdown[name]["num_split"] == expected["cleval/num_split"]
        assert breakdown[name]["num_merge"] == expected["cleval/num_merge"]
        assert breakdown[name]["images"] == len(alone.per_image())


def test_source_sizes_fall_back_to_the_processed_size(tmp_path):
    (tmp_path / "annotations.json").write_text(json.dumps({"images": {
        "a.jpg": {"img_w": 905, "img_h": 1280, "source_size": [4961, 7016], "words": {}},
        "b.jpg": {"img_w": 400, "img_h": 900, "words": {}}}}))
    assert source_sizes(tmp_path) == {"a.jpg": (4961, 7016), "b.jpg": (400, 900)}
