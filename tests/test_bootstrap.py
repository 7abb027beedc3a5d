"""The paired bootstrap (`doclab.metrics.bootstrap`) and `doclab eval-det --vs`.

References: scipy.stats.bootstrap (paired, percentile) for per-image means, and a plain Python loop
that sums real `CharCounts` / IoU counts for the global ratios; both agree within Monte Carlo error.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from doclab.cli import main
from doclab.metrics.bootstrap import (
    DETECTION_STATISTICS,
    classification_statistics,
    classification_table,
    compare_tables,
    detection_table,
    mean_table,
    point_values,
    resample_weights,
)
from doclab.metrics.classification import ClassificationMetric
from doclab.metrics.cleval.metric import CharCounts
from doclab.metrics.detection import DetectionScores


def _box(x: float, y: float, w: float = 40, h: float = 12) -> np.ndarray:
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)


def _image(rng: np.random.Generator, words: int) -> list[np.ndarray]:
    return [_box(10 + 60 * (k % 5), 20 + 25 * (k // 5), w=float(rng.integers(20, 55))) for k in range(words)]


def _scores(gt: list[list[np.ndarray]], detections: list[list[np.ndarray]]) -> DetectionScores:
    scores = DetectionScores()
    for i, (polygons, found) in enumerate(zip(gt, detections)):
        scores.update(f"img{i:03d}.jpg", polygons, found)
    return scores


@pytest.fixture(scope="module")
def split():
    """60 images of 5-20 words; A finds every word but jitters some, B drops or jitters others."""
    rng = np.random.default_rng(7)
    gt = [_image(rng, int(rng.integers(5, 21))) for _ in range(60)]

    def detect(drop: float, shift: float) -> list[list[np.ndarray]]:
        return [[p + rng.normal(0, shift, 2) for p in polygons if rng.random() >= drop] for polygons in gt]
    return gt, detect(0.0, 3.0), detect(0.1, 2.0)


def test_point_values_equal_the_metrics_compute(split):
    gt, found_a, _ = split
    scores = _scores(gt, found_a)
    expected = scores.compute()
    got = point_values(detection_table(scores.per_image()), DETECTION_STATISTICS)
    for name in DETECTION_STATISTICS:
        assert got[name] == pytest.approx(expected[name], abs=1e-12), name


def test_per_image_mean_interval_agrees_with_scipy(split):
    gt, found_a, found_b = split
    a, b = (detection_table(_scores(gt, found).per_image()) for found in (found_a, found_b))
    ours = compare_tables(a, b, {"cleval/hmean": DETECTION_STATISTICS["cleval/hmean"]}, 20_000, seed=1)
    reference = stats.bootstrap((a["hmean"], b["hmean"]), lambda x, y: np.mean(y) - np.mean(x), paired=True,
                                n_resamples=20_000, method="percentile", random_state=2).confidence_interval
    width = reference.high - reference.low
    assert ours["cleval/hmean"]["ci95"] == pytest.approx([reference.low, reference.high], abs=0.05 * width)


def test_global_ratio_interval_agrees_with_a_python_loop(split):
    gt, found_a, found_b = split
    rows_a, rows_b = (_scores(gt, found).per_image() for found in (found_a, found_b))
    counts = [name for name in CharCounts.__dataclass_fields__]
    rng, diffs = np.random.default_rng(3), []
    for _ in range(4000):  # the textbook loop: resample images, sum real CharCounts, score
        picked = rng.integers(0, len(rows_a), len(rows_a))
        totals = []
        for rows in (rows_a, rows_b):
            total = CharCounts()
            for i in picked:
                total.add(CharCounts(**{name: rows[i][name] for name in counts}))
            totals.append(total.scores()[2])
        diffs.append(totals[1] - totals[0])
    low, high = np.percentile(diffs, [2.5, 97.5])
    ours = compare_tables(detection_table(rows_a), detection_table(rows_b), DETECTION_STATISTICS, 20_000, seed=4)
    assert ours["cleval_global/hmean"]["ci95"] == pytest.approx([low, high], abs=0.08 * (high - low))


def test_planted_degradation_is_worse_and_identical_scores_are_within_noise(split):
    gt, found_a, _ = split
    rng = np.random.default_rng(5)
    lost = set(rng.choice(len(gt), size=int(0.3 * len(gt)), replace=False).tolist())
    degraded = [[] if i in lost else found for i, found in enumerate(found_a)]
    a = detection_table(_scores(gt, found_a).per_image())
    worse = compare_tables(a, detection_table(_scores(gt, degraded).per_image()), DETECTION_STATISTICS, seed=0)
    for name in ("cleval/hmean", "cleval/recall", "cleval_global/hmean", "iou/hmean", "iou/recall"):
        assert worse[name]["verdict"] == "worse" and worse[name]["ci95"][1] < 0, name
    # a different detection file with the same per-image scores: every polygon nudged by 1e-4 px
    moved = [[p + 1e-4 for p in found] for found in found_a]
    b = detection_table(_scores(gt, moved).per_image())
    assert not np.array_equal(moved[0][0], found_a[0][0]) and all(np.array_equal(a[c], b[c]) for c in a)
    same = compare_tables(a, b, DETECTION_STATISTICS, seed=0)
    for name, row in same.items():
        assert row["verdict"] == "within noise" and row["ci95"][0] <= 0 <= row["ci95"][1], name
        assert row["diff"] == 0


def test_same_seed_same_output_other_seed_other_interval(split):
    gt, found_a, found_b = split
    a, b = (detection_table(_scores(gt, found).per_image()) for found in (found_a, found_b))
    first = compare_tables(a, b, DETECTION_STATISTICS, 2000, seed=11)
    assert compare_tables(a, b, DETECTION_STATISTICS, 2000, seed=11) == first
    other = compare_tables(a, b, DETECTION_STATISTICS, 2000, seed=12)
    assert other["cleval/hmean"]["ci95"] != first["cleval/hmean"]["ci95"]
    assert other["cleval/hmean"]["diff"] == first["cleval/hmean"]["diff"]


def test_resample_weights_are_multinomial_counts():
    chunks = list(resample_weights(7, 2500, seed=0))
    weights = np.concatenate(chunks)
    assert [len(c) for c in chunks] == [1000, 1000, 500] and weights.shape == (2500, 7)
    assert (weights.sum(axis=1) == 7).all() and weights.min() >= 0
    assert weights.mean(axis=0) == pytest.approx(np.ones(7), abs=0.05)  # each image drawn once on average


def test_classification_statistics_match_sklearn_including_unseen_classes():
    classes = ["form", "invoice", "letter", "receipt"]  # "receipt" is never true nor predicted
    labels = ["form", "form", "invoice", "letter", "letter", "letter", "invoice"]
    predicted = ["form", "invoice", "invoice", "letter", "form", "letter", "invoice"]
    rows = [{"image": f"{i}", "label": t, "predicted": p} for i, (t, p) in enumerate(zip(labels, predicted))]
    metric = ClassificationMetric(classes)
    metric.update(np.array([classes.index(p) for p in predicted]), np.array([classes.index(t) for t in labels]))
    expected = metric.compute()
    got = point_values(classification_table(rows, classes), classification_statistics(classes))
    assert got["accuracy"] == pytest.approx(expected["accuracy"]) and got["macro_f1"] == pytest.approx(expected["macro_f1"])


def test_mean_table_averages_runs():
    a, b = {"hmean": np.array([0.2, 0.4])}, {"hmean": np.array([0.6, 0.8])}
    assert mean_table([a, b])["hmean"].tolist() == pytest.approx([0.4, 0.6])


def _write_ufo(path, images: dict[str, list[np.ndarray]], sizes: bool = False) -> None:
    doc = {"images": {name: {"words": {str(k): {"points": p.tolist(), "transcription": "word"}
                                      for k, p in enumerate(polygons)}, **({"img_w": 400, "img_h": 300} if sizes else {})}
                      for name, polygons in images.items()}}
    path.write_text(json.dumps(doc))


def test_eval_det_vs_prints_the_comparison(tmp_path, split, capsys):
    gt, found_a, _ = split
    keys = [f"img{i:03d}.jpg" for i in range(len(gt))]
    _write_ufo(tmp_path / "gt.json", dict(zip(keys, gt)), sizes=True)
    _write_ufo(tmp_path / "a.json", dict(zip(keys, found_a)))
    _write_ufo(tmp_path / "b.json", {k: (f if i % 3 else []) for i, (k, f) in enumerate(zip(keys, found_a))})
    assert main(["eval-det", str(tmp_path / "gt.json"), str(tmp_path / "a.json"), "--vs", str(tmp_path / "b.json"),
                 "--json", "--resamples", "2000", "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["cleval/num_images"] == len(gt)  # A's usual keys stay
    for name in ("cleval/hmean", "cleval/precision", "cleval/recall", "cleval_global/hmean", "iou/hmean"):
        row = printed["compare"][name]
        assert set(row) >= {"a", "b", "diff", "ci95", "verdict"} and row["diff"] == pytest.approx(row["b"] - row["a"])
    assert printed["compare"]["cleval/hmean"]["verdict"] == "worse"
    assert main(["eval-det", str(tmp_path / "gt.json"), str(tmp_path / "a.json"), "--vs", str(tmp_path / "b.json"),
                 "--resamples", "500"]) == 0
    text = capsys.readouterr().out
    assert "95% interval" in text and "worse" in text
