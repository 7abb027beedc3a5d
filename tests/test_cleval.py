"""CLEval: agreement with the reference outputs in shared/data/cleval_reference, hand-built
cases whose scores follow from the CLEval definition (Baek et al. 2020), the competition
variant's facts (that folder's README), the geometry kernels, and `evaluate_ufo`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from doclab.data.formats.ufo import read_ufo
from doclab.data.records import DataError
from doclab.metrics.cleval.geometry import PolygonBatch, box_overlap_pairs, points_in_polygons
from doclab.metrics.cleval.hull import _scalar_ratio, variant_box_values
from doclab.metrics.cleval.metric import CLEvalMetric
from doclab.metrics.cleval.overlap import intersection_areas
from doclab.metrics.cleval.qhull import qhull_start, quad_hulls
from doclab.metrics.ufo_scores import evaluate_ufo

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "cleval_reference"
CASES = ["perfect", "shifted", "split", "merged", "noise", "polygon"]
EXPECTED = {"competition": "expected_competition.json", "cleval": "expected_cleval_pkg.json"}
EXACT_CASES = {"perfect", "polygon"}
# character totals that depend on float32 box sizing (facts file, last paragraph)
SIZE_DEPENDENT = {"num_char_gt", "num_char_det", "num_char_fp"}


def box(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """Axis-aligned quad, clockwise on screen from the top-left corner."""
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def score(gt: list, preds: list, mode: str = "competition", **kwargs) -> tuple[dict, dict]:
    """(per-image scores, character tallies) of one image."""
    metric = CLEvalMetric(mode=mode)
    per_image = metric.update(gt, preds, **kwargs)
    return per_image, metric.counts()


def run_case(case: str, mode: str) -> CLEvalMetric:
    """A metric fed every GT image of a reference case (missing predictions = none)."""
    gt, pred = read_ufo(REFERENCE / case / "gt.json"), read_ufo(REFERENCE / case / "pred.json")
    metric = CLEvalMetric(mode=mode)
    for name, (_, words) in gt.items():
        detections = [w.points for w in pred[name][1]] if name in pred else []
        metric.update([w.points for w in words], detections, [w.text for w in words], [w.ignore for w in words])
    return metric


@pytest.mark.parametrize("mode", sorted(EXPECTED))
@pytest.mark.parametrize("case", CASES)
def test_agrees_with_reference_outputs(case: str, mode: str) -> None:
    if not (REFERENCE / case / EXPECTED[mode]).exists():
        pytest.skip(f"reference data not found at {REFERENCE}")
    expected = json.loads((REFERENCE / case / EXPECTED[mode]).read_text())
    metric = run_case(case, mode)
    result, counts = metric.compute(), metric.counts()
    tolerance = 1e-9 if case in EXACT_CASES else 2e-3
    assert result["cleval/num_images"] == expected["n_images"]
    for key in ("recall", "precision", "hmean"):
        assert result[f"cleval/{key}"] == pytest.approx(expected[f"det_{key[0]}"], abs=tolerance)
        assert result[f"cleval_global/{key}"] == pytest.approx(expected["global"][f"det_{key[0]}"], abs=tolerance)
    expected_counts = dict(expected["global"], num_char_tp=expected["global"]["num_char_tp"])
    for key, value in counts.items():
        assert abs(value - expected_counts[key]) <= (2 if key in SIZE_DEPENDENT else 0), key
    assert result["cleval/num_split"] == expected["global"]["num_splitted"]
    assert result["cleval/num_merge"] == expected["global"]["num_merged"]


@pytest.mark.parametrize("mode", ["competition", "cleval"])
def test_perfect_one_to_one_match_scores_one(mode: str) -> None:
    gt = [box(10, 10, 120, 30), box(200, 10, 260, 35)]
    per_image, counts = score(gt, [g.copy() for g in gt], mode, gt_texts=["RECEIPT", "TOTAL"])
    assert per_image == {"recall": 1.0, "precision": 1.0, "hmean": 1.0}
    assert counts["num_char_fp"] == 0 and counts["num_char_overlapped"] == 0


def test_split_gt_costs_one_character_of_recall() -> None:
    # 200 x 20 box: ar 10 -> round(0.5 + 10) = 10 characters; two halves cover 5 each.
    per_image, counts = score([box(0, 0, 200, 20)], [box(0, 0, 100, 20), box(100, 0, 200, 20)])
    assert counts["num_char_gt"] == 10 and counts["num_char_tp"] == 10
    assert counts["num_splitted"] == 1 and counts["gran_score_recall"] == 1
    assert per_image["recall"] == pytest.approx(0.9)
    assert per_image["precision"] == 1.0
    assert per_image["hmean"] == pytest.approx(2 * 0.9 / 1.9)


def test_merged_gts_cost_one_character_of_precision() -> None:
    # two 110 x 20 words (6 characters each) under one detection: a many-to-one match.
    per_image, counts = score([box(0, 0, 110, 20), box(120, 0, 230, 20)], [box(0, 0, 230, 20)])
    assert counts["num_merged"] == 1 and counts["gran_score_precision"] == 1
    assert per_image["recall"] == 1.0
    assert per_image["precision"] == pytest.approx(11 / 12)


def test_cleval_mode_counts_transcription_characters() -> None:
    _, counts = score([box(0, 0, 200, 20)], [box(0, 0, 200, 20)], "cleval", gt_texts=["AB"])
    assert counts["num_char_gt"] == 2
    _, counts = score([box(0, 0, 200, 20)], [box(0, 0, 200, 20)], "competition", gt_texts=["AB"])
    assert counts["num_char_gt"] == 10  # fact 1: the competition ignores transcriptions


@pytest.mark.parametrize("how", ["text", "flag"])
def test_dont_care_region_is_not_scored_in_cleval_mode(how: str) -> None:
    gt = [box(0, 0, 100, 25), box(200, 0, 300, 25)]
    texts = ["ABCD", "###" if how == "text" else "WXYZ"]
    ignore = [False, how == "flag"]
    per_image, counts = score(gt, [g.copy() for g in gt], "cleval", gt_texts=texts, gt_ignore=ignore)
    assert per_image == {"recall": 1.0, "precision": 1.0, "hmean": 1.0}
    assert counts["num_char_gt"] == 4 and counts["num_char_fp"] == 0


def test_competition_mode_has_no_dont_care() -> None:
    _, counts = score([box(0, 0, 100, 25)], [], "competition", gt_texts=["###"], gt_ignore=[True])
    assert counts["num_char_gt"] > 0  # fact 6


def test_empty_gt_scores_zero_and_still_counts_in_the_mean() -> None:
    metric = CLEvalMetric()
    assert metric.update([box(0, 0, 100, 20)], [box(0, 0, 100, 20)])["hmean"] == 1.0
    assert metric.update([], [box(0, 0, 100, 20)]) == {"recall": 0.0, "precision": 0.0, "hmean": 0.0}
    assert metric.update([], []) == {"recall": 0.0, "precision": 0.0, "hmean": 0.0}
    result = metric.compute()
    assert result["cleval/num_images"] == 3
    assert result["cleval/hmean"] == pytest.approx(1 / 3)


def test_empty_prediction_has_zero_recall() -> None:
    per_image, counts = score([box(0, 0, 100, 20)], [])
    assert per_image == {"recall": 0.0, "precision": 0.0, "hmean": 0.0}
    assert counts["num_char_gt"] == 5


def test_only_the_first_500_detections_count() -> None:
    gt = [box(0, 0, 100, 20)]
    far = [box(2000 + 3 * i, 2000, 2002 + 3 * i, 2010) for i in range(500)]
    assert score(gt, far + [gt[0].copy()])[0]["recall"] == 0.0  # fact 5
    assert score(gt, [gt[0].copy()] + far)[0]["recall"] == 1.0
    metric = CLEvalMetric(max_detections=1)
    assert metric.update(gt, [gt[0].copy()] + far)["precision"] == 1.0


def test_unmatched_detection_cost_follows_point_order() -> None:
    # fact 8: 90 x 20 box, qhull starts clockwise input on a long side (cost 5), reversed on a short one (1)
    clockwise = box(0, 0, 90, 20)
    assert score([], [clockwise])[1]["num_char_fp"] == 5
    assert score([], [clockwise[[0, 3, 2, 1]]])[1]["num_char_fp"] == 1
    assert score([], [np.array([[0, 0], [10, 0], [20, 0], [30, 0.0]])])[1]["num_char_fp"] == 100  # collinear


def test_short_polygons_are_skipped() -> None:
    triangle = np.array([[0, 0], [100, 0], [100, 20.0]])
    per_image, counts = score([box(0, 0, 100, 20), triangle], [triangle])
    assert counts["num_char_det"] == 0 and counts["num_char_gt"] == 5  # fact 4
    assert per_image["recall"] == 0.0


def test_long_thin_box_is_capped_at_100_characters() -> None:
    assert score([box(0, 0, 3000, 10)], [])[1]["num_char_gt"] == 100


def test_compute_returns_plain_python_numbers() -> None:
    metric = CLEvalMetric()
    metric.update([box(0, 0, 100, 20)], [box(5, 0, 100, 20)])
    result = metric.compute()
    assert all(type(v) in (float, int) for v in result.values())
    metric.reset()
    assert metric.compute()["cleval/num_images"] == 0


def test_non_finite_coordinates_are_refused() -> None:
    with pytest.raises(ValueError, match="prediction polygon #1"):
        CLEvalMetric().update([box(0, 0, 10, 10)], [box(0, 0, np.nan, 10)])
    with pytest.raises(ValueError):
        CLEvalMetric(mode="other")


def test_point_inside_is_half_open() -> None:
    square = PolygonBatch.build([box(0, 0, 10, 10)])
    points = np.array([[0, 5], [10, 5], [5, 0], [5, 10], [5, 5], [-1, 5.0]])
    inside = points_in_polygons(points, square.points, np.arange(6), np.zeros(6, dtype=int))
    assert inside.tolist() == [True, False, True, False, True, False]  # fact 3


def test_intersection_areas_match_shapely() -> None:
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 150, (60, 2))
    polygons = [box(*xy, *(xy + rng.uniform(5, 60, 2))) + rng.uniform(-2, 2, (4, 2)) for xy in corners]
    polygons += [np.array([[0, 0], [60, 0], [60, 40], [30, 10], [0, 40.0]]) + rng.uniform(0, 100, 2) for _ in range(10)]
    polygons += [polygons[0].copy(), polygons[1][::-1].copy()]  # shared edges, either orientation
    batch = PolygonBatch.build(polygons)
    ia, ib = box_overlap_pairs(batch.boxes, batch.boxes)
    ours = intersection_areas(batch, batch, ia, ib)
    shapes = shapely.make_valid(np.array([shapely.Polygon(p) for p in polygons]))
    assert np.allclose(ours, shapely.area(shapely.intersection(shapes[ia], shapes[ib])), atol=1e-6)


def test_quad_hull_start_matches_scipy() -> None:
    spatial = pytest.importorskip("scipy.spatial")
    rng = np.random.default_rng(1)
    for _ in range(200):
        angle = rng.uniform(-0.5, 0.5)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        quad = (box(0, 0, rng.uniform(20, 300), rng.uniform(8, 40)) @ rotation.T + rng.uniform(0, 900, 2))
        quad = np.roll(quad[:: rng.choice([1, -1])], rng.integers(4), axis=0).astype(np.float32).astype(np.float64)
        first = quad[spatial.ConvexHull(quad).vertices[0]]
        assert np.array_equal(quad_hulls(quad[None])[0, 0], first)
        assert np.array_equal(quad[qhull_start(quad)], first)


def test_vectorised_box_sizes_match_scalar_arithmetic() -> None:
    rng = np.random.default_rng(2)
    quads = []
    for _ in range(300):
        angle = rng.uniform(-0.5, 0.5)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        quads.append(box(0, 0, rng.uniform(20, 300), rng.uniform(8, 40)) @ rotation.T + rng.uniform(0, 900, 2))
    quads = np.array(quads).astype(np.float32).astype(np.float64)

    def cost(ar: np.ndarray) -> np.ndarray:
        return np.rint(np.float32(0.5) + np.float32(1) / (ar + np.finfo(np.float32).eps)).astype(np.int64)

    ours = variant_box_values(quads, np.full(len(quads), 4), cost)
    scalar = [cost(np.array([_scalar_ratio(h)], dtype=np.float32))[0] for h in quad_hulls(quads)]
    assert ours.tolist() == scalar


def write_ufo(path: Path, images: dict) -> Path:
    """UFO JSON with one word per polygon in `images` ({file: [points, ...]})."""
    entries = {name: {"words": {f"{i + 1:04d}": {"points": pts} for i, pts in enumerate(words)}}
               for name, words in images.items()}
    path.write_text(json.dumps({"images": entries}))
    return path


def test_evaluate_ufo_merges_both_metrics(tmp_path: Path) -> None:
    word = box(0, 0, 100, 20).tolist()
    gt = write_ufo(tmp_path / "gt.json", {"a.jpg": [word], "b.jpg": [word]})
    pred = write_ufo(tmp_path / "pred.json", {"a.jpg": [word]})
    result = evaluate_ufo(gt, pred)
    assert result["cleval/num_images"] == 2
    assert result["cleval/hmean"] == pytest.approx(0.5)  # b.jpg, absent from the predictions, scores 0
    assert result["iou/recall"] == pytest.approx(0.5) and result["iou/precision"] == 1.0


def test_evaluate_ufo_rejects_bad_input(tmp_path: Path) -> None:
    word = box(0, 0, 100, 20).tolist()
    gt = write_ufo(tmp_path / "gt.json", {"a.jpg": [word]})
    with pytest.raises(DataError, match="'x.jpg'"):
        evaluate_ufo(gt, write_ufo(tmp_path / "extra.json", {"a.jpg": [word], "x.jpg": [word]}))
    nan_word = [[0, 0], [float("nan"), 0], [100, 20], [0, 20]]
    with pytest.raises(DataError, match=r"nan\.json: image 'a\.jpg'"):
        evaluate_ufo(gt, write_ufo(tmp_path / "nan.json", {"a.jpg": [nan_word]}))
    (tmp_path / "broken.json").write_text('{"images": {"a.jpg": {"words": {"1": {"points": "no"}}}}}')
    with pytest.raises(DataError, match=r"broken\.json: image 'a\.jpg'"):
        evaluate_ufo(gt, tmp_path / "broken.json")
