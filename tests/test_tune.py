"""tune_postprocess: candidates, scoring on hand-made maps, spilled cache, workers, outputs, end to end."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from doclab.config import ConfigError, PostprocessParams, TuneParams, TuneSpace, load_params, to_dict
from doclab.data.records import DataError
from doclab.detection.maps import map_storage
from doclab.detection.model import build_detector
from doclab.detection.model_file import load_postprocess
from doclab.detection.search import (
    TUNED_KEYS,
    MapCache,
    grid_candidates,
    make_candidates,
    random_candidates,
    score_all,
    score_postprocess,
    search_postprocess,
)
from doclab.engine.checkpoint import MODEL_FORMAT, save_checkpoint
from doclab.io import atomic_write_json
from doclab.pipeline.preprocess import preprocess
from doclab.pipeline.tune_postprocess import tune_postprocess

REPO = Path(__file__).resolve().parents[1]
MAP_SIZE = 64
SCALE = 0.5  # original (processed) image pixels -> map pixels
CONFIDENT, UNSURE = 0.9, 0.5  # word probabilities of the hand-made maps


def render_maps(count: int = 3, seed: int = 0) -> tuple[np.ndarray, dict, list[tuple[int, int]]]:
    """Letterboxed maps drawn from ground-truth boxes: even words at CONFIDENT, odd ones at UNSURE.

    Returns:
        ((count, S, S) float16 maps, ground truth {key: (polygons, ignore)} in original pixels,
        original (height, width) per image).
    """
    rng = np.random.default_rng(seed)
    maps = np.full((count, MAP_SIZE, MAP_SIZE), 0.02, np.float32)
    ground_truth, sizes = {}, []
    for index in range(count):
        height, width = 128, 96 + 16 * index  # the map's padding starts at width * SCALE
        polygons = []
        for word, top in enumerate(range(8, height - 16, 24)):
            left = int(rng.integers(4, 20))
            right = int(rng.integers(width // 2, width - 8))
            box = np.array([[left, top], [right, top], [right, top + 16], [left, top + 16]], np.float64)
            polygons.append(box)
            x0, y0, x1, y1 = (np.array([left, top, right, top + 16]) * SCALE).astype(int)
            maps[index, y0:y1, x0:x1] = CONFIDENT if word % 2 == 0 else UNSURE
        ground_truth[f"img_{index}.png"] = (polygons, [False] * len(polygons))
        sizes.append((height, width))
    return maps.astype(np.float16), ground_truth, sizes


@pytest.fixture(scope="module")
def rendered() -> tuple[MapCache, dict]:
    maps, ground_truth, sizes = render_maps()
    return MapCache(maps, tuple(ground_truth), (SCALE,) * len(maps), tuple(sizes)), ground_truth


def tune_params(**changes) -> TuneParams:
    space = TuneSpace(thresh=(0.3, 0.7), box_thresh=(0.3, 0.4, 0.6, 0.95), box_unclip_ratio=(0.2, 3.0),
                      polygon_unclip_ratio=(2.0,), polygon=(False,))
    return dataclasses.replace(TuneParams(space=space, workers=1), **changes)


def test_grid_enumerates_every_combination_last_key_fastest():
    space = TuneSpace(thresh=(0.2, 0.3), box_thresh=(0.5,), box_unclip_ratio=(1.5, 2.0),
                      polygon_unclip_ratio=(2.0,), polygon=(False, True))
    candidates = grid_candidates(space)
    assert len(candidates) == 8
    assert candidates[0] == {"thresh": 0.2, "box_thresh": 0.5, "box_unclip_ratio": 1.5,
                             "polygon_unclip_ratio": 2.0, "polygon": False}
    assert candidates[1]["polygon"] is True and candidates[2]["box_unclip_ratio"] == 2.0
    assert candidates[4]["thresh"] == 0.3 and candidates[-1] == {**candidates[3], "thresh": 0.3}
    assert len({tuple(c.values()) for c in candidates}) == 8


def test_random_draws_are_seeded_within_ranges_and_fixed_when_min_equals_max():
    space = TuneSpace(thresh=(0.4, 0.2, 0.3), box_thresh=(0.5, 0.5), box_unclip_ratio=(1.3, 2.0),
                      polygon_unclip_ratio=(2.0,), polygon=(False, True))
    drawn = random_candidates(space, 40, seed=3)
    assert drawn == random_candidates(space, 40, seed=3) and drawn != random_candidates(space, 40, seed=4)
    assert len(drawn) == 40 and all(list(c) == list(TUNED_KEYS) for c in drawn)
    assert all(0.2 <= c["thresh"] <= 0.4 and 1.3 <= c["box_unclip_ratio"] <= 2.0 for c in drawn)
    assert len({c["thresh"] for c in drawn}) == 40  # continuous draws, not the listed values
    assert {c["box_thresh"] for c in drawn} == {0.5} and {c["polygon_unclip_ratio"] for c in drawn} == {2.0}
    assert {c["polygon"] for c in drawn} == {False, True}
    tune = TuneParams(search="random", trials=7, space=space)
    assert make_candidates(tune, 3) == random_candidates(space, 7, 3)
    assert make_candidates(dataclasses.replace(tune, search="grid"), 3) == grid_candidates(space)


def test_search_picks_the_known_best_on_rendered_maps(rendered):
    cache, ground_truth = rendered
    untuned = PostprocessParams(thresh=0.7, box_thresh=0.3, box_unclip_ratio=3.0)
    result = search_postprocess(cache, ground_truth, untuned, tune_params(), seed=0)
    # thresh 0.7 loses the UNSURE words, unclip 3.0 blows boxes far past their words, box_thresh
    # 0.6 drops the UNSURE words; 0.3 and 0.4 tie, and the earlier candidate wins.
    assert result.candidates[result.best_index] == {"thresh": 0.3, "box_thresh": 0.3, "box_unclip_ratio": 0.2,
                                                     "polygon_unclip_ratio": 2.0, "polygon": False}
    assert result.best == dataclasses.replace(untuned, thresh=0.3, box_unclip_ratio=0.2)
    best = result.scores[result.best_index]
    assert best["iou/hmean"] == 1.0 and best["cleval/recall"] > 0.9
    by_values = {tuple(c.values())[:3]: s for c, s in zip(result.candidates, result.scores)}
    assert by_values[(0.3, 0.4, 0.2)] == best
    assert by_values[(0.7, 0.3, 0.2)]["iou/recall"] == pytest.approx(0.5, abs=0.1)
    assert by_values[(0.3, 0.6, 0.2)]["iou/recall"] == by_values[(0.7, 0.3, 0.2)]["iou/recall"]
    assert by_values[(0.3, 0.95, 0.2)]["iou/hmean"] == 0.0
    assert result.untuned == score_postprocess(cache, ground_truth, untuned)
    assert result.untuned["cleval/hmean"] < best["cleval/hmean"]


def test_shared_box_thresh_pass_scores_like_each_setting_alone(rendered):
    cache, ground_truth = rendered
    result = search_postprocess(cache, ground_truth, PostprocessParams(), tune_params(), seed=0)
    for candidate, scores in zip(result.candidates, result.scores):
        assert scores == score_postprocess(cache, ground_truth, dataclasses.replace(PostprocessParams(), **candidate))


@pytest.mark.parametrize("score_mode", ["fast", "slow"], ids=["box-score", "contour-score"])
def test_one_scorer_over_many_groups_scores_like_each_setting_alone(rendered, score_mode):
    # One process scores every group: kernels shared by thresh, GT prepared once, images whose
    # kept detections repeat across box_thresh scored once; polygons go through db_postprocess.
    cache, ground_truth = rendered
    space = dataclasses.replace(tune_params().space, polygon=(False, True), polygon_unclip_ratio=(1.5, 2.5))
    untuned = PostprocessParams(score_mode=score_mode)
    settings = [dataclasses.replace(untuned, **c) for c in grid_candidates(space)]
    scores = score_all(cache, ground_truth, settings, workers=1)
    assert len({tuple(s.values()) for s in scores}) > 4  # the settings really differ
    for setting, found in zip(settings, scores):
        assert found == score_postprocess(cache, ground_truth, setting)


def spilled_copy(cache: MapCache, storage) -> MapCache:
    maps, path = storage
    maps[:] = cache.maps
    maps.flush()
    return MapCache(maps, cache.keys, cache.scales, cache.original_sizes, path)


def test_spilled_cache_gives_the_in_memory_results_and_is_removed(rendered):
    cache, ground_truth = rendered
    with map_storage(len(cache.maps), (MAP_SIZE, MAP_SIZE), cache_mb=1) as (in_ram, path):
        assert path is None and not isinstance(in_ram, np.memmap)
    with map_storage(len(cache.maps), (MAP_SIZE, MAP_SIZE), cache_mb=0) as storage:
        spilled = spilled_copy(cache, storage)
        assert isinstance(spilled.maps, np.memmap) and spilled.path.is_file()
        tune = tune_params()
        assert (search_postprocess(spilled, ground_truth, PostprocessParams(), tune, 0)
                == search_postprocess(cache, ground_truth, PostprocessParams(), tune, 0))
    assert not spilled.path.parent.exists()


@pytest.mark.parametrize("spill", [False, True])
def test_two_workers_give_the_one_worker_results(rendered, spill):
    cache, ground_truth = rendered
    settings = [dataclasses.replace(PostprocessParams(), **c) for c in grid_candidates(tune_params().space)]
    expected = score_all(cache, ground_truth, settings, workers=1)
    with map_storage(len(cache.maps), (MAP_SIZE, MAP_SIZE), cache_mb=0 if spill else 1) as storage:
        source = spilled_copy(cache, storage) if spill else cache
        assert score_all(source, ground_truth, settings, workers=2) == expected


def test_written_postprocess_is_a_candidate_and_wins_ties(rendered):
    cache, ground_truth = rendered
    # Better than every grid candidate: the grid's unclip ratios are 0.2 and 3.0, the words want ~1.
    written = PostprocessParams(thresh=0.3, box_thresh=0.3, box_unclip_ratio=1.0)
    result = search_postprocess(cache, ground_truth, written, tune_params(), seed=0)
    assert result.candidates[0] == {key: getattr(written, key) for key in TUNED_KEYS}
    assert len(result.candidates) == 1 + 2 * 4 * 2  # written + the grid
    assert result.scores[0] == result.untuned == score_postprocess(cache, ground_truth, written)
    assert result.scores[result.best_index]["cleval/hmean"] >= max(s["cleval/hmean"] for s in result.scores[1:])
    assert result.best_index == 0 and result.best == written


def test_disabled_tuning_keeps_the_written_postprocess(rendered):
    cache, ground_truth = rendered
    written = PostprocessParams(thresh=0.7, box_thresh=0.42, box_unclip_ratio=3.0)
    result = search_postprocess(cache, ground_truth, written, tune_params(enabled=False), seed=0)
    assert result.best == written and len(result.candidates) == 1 and result.best_index == 0
    assert result.untuned == score_postprocess(cache, ground_truth, written)


def test_load_postprocess_round_trip_and_one_line_errors(tmp_path):
    tuned = PostprocessParams(thresh=0.25, box_thresh=0.6, box_unclip_ratio=1.7, polygon=True)
    path = tmp_path / "postprocess.json"
    atomic_write_json(path, {**to_dict(tuned), "metric": "cleval/hmean", "score": 0.9})
    assert load_postprocess(path) == tuned
    bad = {"not json": "{thresh: 0.3", "list": "[1, 2]",
           "unknown": json.dumps({**to_dict(tuned), "threshold": 0.3}),
           "type": json.dumps({**to_dict(tuned), "thresh": "high"}),
           "range": json.dumps({**to_dict(tuned), "box_thresh": 1.5}),
           "missing": json.dumps({k: v for k, v in to_dict(tuned).items() if k != "min_size"})}
    for name, text in bad.items():
        path.write_text(text, encoding="utf-8")
        with pytest.raises(DataError if name == "not json" else ConfigError, match=str(path)) as error:
            load_postprocess(path)
        assert "\n" not in str(error.value), name
    with pytest.raises(FileNotFoundError, match="nowhere.json"):
        load_postprocess(tmp_path / "nowhere.json")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> tuple[Path, Path]:
    """A processed folder of 8 drawn documents (2 val) and a random-weight DBNet at 64 px."""
    from conftest import build_dataset, params_dict

    root = tmp_path_factory.mktemp("tune")
    ds = build_dataset(root)
    overrides = {"model": "mobilenetv3_small_100", "image_size": 64, "batch_size": 2, "device": "cpu",
                 "detector.decoder_channels": 16, "detector.train.workers": 0, "tune.workers": 1,
                 "tune.space.thresh": [0.3, 0.5], "tune.space.box_thresh": [0.3, 0.5],
                 "tune.space.box_unclip_ratio": [1.5, 2.0]}
    (root / "params.yaml").write_text(json.dumps(params_dict([ds.source()], overrides)), encoding="utf-8")
    params = load_params(root / "params.yaml")
    preprocess(params, root, root / "processed", root / "data.json")
    torch.manual_seed(0)
    model = build_detector(params.model, params.detector, pretrained=False)
    save_checkpoint(root / "detector.pt", {"format": MODEL_FORMAT, "kind": "detector", "backbone": params.model,
                                           "state_dict": model.state_dict(), "params": to_dict(params),
                                           "epoch": 1, "metrics": {}})
    return root, root / "params.yaml"


def run_tune(root: Path, out: Path, **tune_changes):
    params = load_params(root / "params.yaml")
    params = dataclasses.replace(params, tune=dataclasses.replace(params.tune, **tune_changes))
    return tune_postprocess(params, root / "processed", root / "detector.pt", out / "models/postprocess.json",
                            out / "metrics/tune.json", out / "plots/tune", out / "results/val/detection.json")


def test_end_to_end_outputs_are_valid_and_reproducible(tiny_run, tmp_path):
    root, _ = tiny_run
    result = run_tune(root, tmp_path / "a")
    metrics = json.loads((tmp_path / "a/metrics/tune.json").read_text())
    assert metrics["metric"] == "cleval/hmean" and metrics["candidates"] == result.candidates == 8
    assert metrics["best"] == result.best and metrics["untuned"] == result.untuned
    assert metrics["best_params"] == result.best_params and list(metrics["best_params"]) == sorted(TUNED_KEYS)
    assert metrics["best"]["cleval/hmean"] >= max(r["score"] for r in
                                                  json.loads((tmp_path / "a/plots/tune/scores.json").read_text()))
    tuned = load_postprocess(tmp_path / "a/models/postprocess.json")
    assert {name: getattr(tuned, name) for name in TUNED_KEYS} == result.best_params
    saved = json.loads((tmp_path / "a/models/postprocess.json").read_text())
    assert saved["score"] == result.best["cleval/hmean"] and saved["metric"] == "cleval/hmean"
    rows = json.loads((tmp_path / "a/plots/tune/scores.json").read_text())
    assert len(rows) == 8 and set(rows[0]) == {*TUNED_KEYS, "score"}
    image = cv2.imread(str(tmp_path / "a/plots/tune/scores.png"))
    assert image is not None and image.shape[0] > 100
    run_tune(root, tmp_path / "b")
    run_tune(root, tmp_path / "spilled", cache_mb=0)
    expected = (tmp_path / "a/metrics/tune.json").read_bytes()
    assert (tmp_path / "b/metrics/tune.json").read_bytes() == expected
    assert (tmp_path / "spilled/metrics/tune.json").read_bytes() == expected
    assert (tmp_path / "b/plots/tune/scores.json").read_bytes() == (tmp_path / "a/plots/tune/scores.json").read_bytes()
    per_image = json.loads((tmp_path / "a/results/val/detection.json").read_text())
    assert len(per_image) == metrics["best"]["cleval/num_images"]  # the winner's rows: their mean is its score
    assert sum(row["hmean"] for row in per_image) / len(per_image) == pytest.approx(metrics["best"]["cleval/hmean"])
    assert (tmp_path / "b/results/val/detection.json").read_bytes() == (tmp_path / "a/results/val/detection.json").read_bytes()


def test_random_search_end_to_end_draws_trials(tiny_run, tmp_path):
    root, _ = tiny_run
    result = run_tune(root, tmp_path, search="random", trials=3)
    assert result.candidates == 1 + 3 and (tmp_path / "plots/tune/scores.png").is_file()  # written + 3 draws
    assert 0.3 <= result.best_params["thresh"] <= 0.5


def test_missing_model_is_named(tiny_run, tmp_path):
    root, _ = tiny_run
    params = load_params(root / "params.yaml")
    with pytest.raises(FileNotFoundError, match="absent.pt"):
        tune_postprocess(params, root / "processed", tmp_path / "absent.pt", tmp_path / "p.json",
                         tmp_path / "m.json", tmp_path / "plots", tmp_path / "r.json")
    assert not (tmp_path / "p.json").exists() and not (tmp_path / "m.json").exists()
    assert not (tmp_path / "r.json").exists()


@pytest.mark.slow
def test_stage_script_runs_and_reports_a_missing_model(tiny_run, tmp_path):
    root, params_file = tiny_run
    script = REPO / "stages/tune_postprocess.py"
    args = ["--params", str(params_file), "--data", str(root / "processed"), "--out", str(tmp_path / "p.json"),
            "--metrics", str(tmp_path / "m.json"), "--plots", str(tmp_path / "plots"),
            "--results", str(tmp_path / "results.json")]
    missing = subprocess.run([sys.executable, str(script), *args, "--model", str(tmp_path / "absent.pt")],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and missing.stderr.strip().startswith("error: ")
    assert "absent.pt" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1
    done = subprocess.run([sys.executable, str(script), *args, "--model", str(root / "detector.pt")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "tune_postprocess: cleval/hmean" in done.stdout and json.loads((tmp_path / "m.json").read_text())
