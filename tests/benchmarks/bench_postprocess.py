"""Benchmark: `db_postprocess` against a straightforward reference, same maps, same run.

    uv run python tests/benchmarks/bench_postprocess.py [--size 1024] [--regions 100] [--repeats 15] [--quick]

The reference follows the original DB code (MhLiao/DB `SegDetectorRepresenter.boxes_from_bitmap`):
per contour `get_mini_boxes`, a score from a mask as large as the whole map, shapely for the
unclip offset, `get_mini_boxes` again and the `min_size` check, then scaling and clipping. It uses the same fixed-point
pyclipper offset as ours, so the outputs must agree: same count, vertices within 1 px.
The candidates alternate within each repeat, so background load hits both alike; the table
gives median wall-clock ms (process-CPU ms, steadier on a busy machine, in the notes).
Target: >= 2x the reference at equal polygons, in both score modes.
"""
from __future__ import annotations

import argparse
import dataclasses

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon
from timing import measure, print_result, profile_top, row

from doclab.config import PostprocessParams
from doclab.detection.postprocess import db_postprocess

ONE = 8  # the fixed point of our unclip
TARGET_SPEEDUP = 2.0
VERTEX_TOLERANCE = 1.0  # px


def random_probability_map(rng: np.random.Generator, regions: int, size: int) -> np.ndarray:
    """(size, size) float32 map: non-overlapping text-like rotated boxes, 90 % confident
    (0.75-0.95) and 10 % unsure (0.35-0.5, below the default box_thresh), soft edges, noise."""
    prob = np.zeros((size, size), np.float32)
    taken = np.zeros((size, size), np.uint8)
    while regions:
        w, h = rng.uniform(20, 300), rng.uniform(8, 30)
        angle = np.deg2rad(rng.uniform(-8, 8))
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2 @ rotation + rng.uniform(0, size, 2)
        x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 4, 0, size)
        x1, y1 = np.clip(np.ceil(corners.max(0)).astype(int) + 4, 0, size)
        if taken[y0:y1, x0:x1].any():
            continue
        taken[y0:y1, x0:x1] = 1
        value = rng.uniform(0.75, 0.95) if rng.random() < 0.9 else rng.uniform(0.35, 0.5)
        cv2.fillPoly(prob, [np.round(corners).astype(np.int32)], float(value))
        regions -= 1
    prob = cv2.GaussianBlur(prob, (0, 0), 1.5)
    return prob + rng.uniform(0, 0.05, prob.shape).astype(np.float32)


def reference_get_mini_boxes(contour: np.ndarray) -> tuple[np.ndarray, float]:
    """SegDetectorRepresenter.get_mini_boxes: min-area box, corners sorted by x then y."""
    bounding_box = cv2.minAreaRect(contour)
    points = sorted(list(cv2.boxPoints(bounding_box)), key=lambda x: x[0])
    index_1, index_4 = (0, 1) if points[1][1] > points[0][1] else (1, 0)
    index_2, index_3 = (2, 3) if points[3][1] > points[2][1] else (3, 2)
    box = np.array([points[index_1], points[index_2], points[index_3], points[index_4]])
    return box, min(bounding_box[1])


def reference_box_score(pred: np.ndarray, polygon: np.ndarray) -> float:
    """Mean of pred inside polygon, from a mask as large as the whole map."""
    mask = np.zeros(pred.shape, dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon.reshape(-1, 2)).astype(np.int32)], 1)
    return cv2.mean(pred, mask)[0]


def reference_unclip(box: np.ndarray, unclip_ratio: float) -> np.ndarray:
    """SegDetectorRepresenter.unclip with shapely area / length."""
    poly = Polygon(box)
    distance = poly.area * unclip_ratio / poly.length
    offset = pyclipper.PyclipperOffset(arc_tolerance=0.25 * ONE)
    offset.AddPath(np.round(box * ONE).astype(np.int64).tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
    return np.array(offset.Execute(distance * ONE)[0]) / ONE


def reference_postprocess(pred: np.ndarray, params: PostprocessParams, scale: float,
                          original_size: tuple[int, int]) -> list[tuple[np.ndarray, float]]:
    """boxes_from_bitmap for one map: (4, 2) quads in original pixels and their scores."""
    height, width = original_size
    bitmap = (pred > params.thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    results = []
    for contour in contours[: params.max_candidates]:
        points, _ = reference_get_mini_boxes(contour)
        score = reference_box_score(pred, contour if params.score_mode == "slow" else points)
        if params.box_thresh > score:
            continue
        box, sside = reference_get_mini_boxes(reference_unclip(points, params.box_unclip_ratio).astype(np.float32))
        if sside < params.min_size:
            continue
        box = box / scale
        box[:, 0] = np.clip(box[:, 0], 0, width)
        box[:, 1] = np.clip(box[:, 1], 0, height)
        results.append((box.astype(np.float32), score))
    return results


def quad_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest vertex distance between two quads, over the cyclic orders of b's vertices."""
    return min(float(np.abs(a - np.roll(b, k, axis=0)).max()) for k in range(4))


def compare(ours: list, reference: list) -> tuple[bool, str, float]:
    """Whether both found the same boxes: same count, vertices within VERTEX_TOLERANCE.

    Returns:
        (equal, the check in words, largest vertex distance in px).
    """
    if len(ours) != len(reference):
        return False, f"{len(ours)} detections vs reference {len(reference)}", float("inf")
    gap = max((quad_distance(d.points, box) for d, (box, _) in zip(ours, reference)), default=0.0)
    score_gap = max((abs(d.score - score) for d, (_, score) in zip(ours, reference)), default=0.0)
    equal = gap <= VERTEX_TOLERANCE
    return equal, (f"{len(ours)} detections each, max vertex distance {gap:.1e} px, max |dscore| {score_gap:.1e} "
                   f"({'equal' if equal else 'NOT equal'})"), gap


def run(repeats: int = 15, quick: bool = False, size: int = 1024, regions: int = 100) -> dict:
    """Time `db_postprocess` and the reference side by side, in both score modes.

    Args:
        repeats: calls of each candidate (median); `quick` caps it at 3.
        quick: fewer repeats only.
        size: the square map side.
        regions: text regions on the map.
    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    repeats = min(repeats, 3) if quick else repeats
    prob = random_probability_map(np.random.default_rng(0), regions, size)[None]
    sizes = [(size, size)]
    rows, metrics, notes, profile = [], {}, [], []
    for mode in ("fast", "slow"):
        params = dataclasses.replace(PostprocessParams(), score_mode=mode)
        call = {"ours": lambda: db_postprocess(prob, params, scales=[1.0], original_sizes=sizes),
                "reference": lambda: reference_postprocess(prob[0], params, 1.0, sizes[0])}
        wall, cpu = measure(call, repeats)
        equal, check, gap = compare(call["ours"]()[0], call["reference"]())
        speedup = wall["reference"] / wall["ours"]
        met = speedup >= TARGET_SPEEDUP and equal
        rows.append(row(f"postprocess {size}px, {mode} score", wall["ours"], wall["reference"], "ms/image",
                        f">= {TARGET_SPEEDUP:.0f}x, equal", met, check))
        suffix = "" if mode == "fast" else "_slow"
        metrics.update({f"postprocess.ms_per_image{suffix}": wall["ours"],
                        f"postprocess.reference_ms_per_image{suffix}": wall["reference"],
                        f"postprocess.speedup{suffix}": speedup,
                        f"postprocess.cpu_speedup{suffix}": cpu["reference"] / cpu["ours"],
                        f"postprocess.max_vertex_diff{suffix}": gap})
        notes.append(f"{mode}: median of {repeats} repeats, CPU-time speed-up {cpu['reference'] / cpu['ours']:.1f}x")
        if not met:
            profile += [f"score_mode {mode}:"] + profile_top(call["ours"])
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": profile}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--regions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.size, args.regions))


if __name__ == "__main__":
    main()
