"""Benchmark: `make_db_targets` against a straightforward reference, same inputs, same run.

    uv run python tests/benchmarks/bench_targets.py [--size 1024] [--quads 100] [--repeats 15] [--quick]

The reference follows the original DB code (MhLiao/DB `MakeShrinkMap` + `MakeBorderMap`):
shapely for area and perimeter, one pyclipper offset per polygon, and for the threshold
map, per polygon, the distance from every pixel of the polygon's box (grown by D) to each
edge in turn, then the min over edges. Its distance is MakeBorderMap's law-of-cosines
formula with the end-point test corrected (the original's mislabels pixels beyond the
ends); "reference (projection)" swaps in the leaner project-clamp-measure distance. Both
rasterise in the same fixed point as ours, so prob_map / prob_mask must match bit for bit.
The candidates alternate within each repeat, so background load hits all alike; the
table gives median wall-clock ms (process-CPU ms, steadier on a busy machine, in the notes).
Target: >= 10x the reference, prob_map identical, thresh_map within a small tolerance.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import pyclipper
from shapely.geometry import Polygon
from timing import measure, print_result, profile_top, row

from doclab.detection.targets import FRACTION_BITS, make_db_targets

ONE = 1 << FRACTION_BITS
TARGET_SPEEDUP = 10.0
THRESH_TOLERANCE = 1e-3  # threshold-map values are in [0.3, 0.7]: well below one grey level


def random_text_quads(rng: np.random.Generator, count: int, size: int) -> list[np.ndarray]:
    """Rotated rectangles of text-like sizes: 20-300 px wide, 10-60 px high, +-8 degrees."""
    quads = []
    for _ in range(count):
        w, h = rng.uniform(20, 300), rng.uniform(10, 60)
        angle = np.deg2rad(rng.uniform(-8, 8))
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2 @ rotation
        quads.append((corners + rng.uniform(0, size, 2)).astype(np.float32))
    return quads


def reference_point_to_segment(xs: np.ndarray, ys: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """MakeBorderMap.distance: law of cosines for the distance to the line, the nearer end
    where the foot of the perpendicular falls outside the segment (the original tests the
    angle at the pixel, `cosin < 0`, which picks the ends for the wrong pixels; fixed here)."""
    square_distance_1 = np.square(xs - start[0]) + np.square(ys - start[1])
    square_distance_2 = np.square(xs - end[0]) + np.square(ys - end[1])
    square_distance = np.square(start[0] - end[0]) + np.square(start[1] - end[1])
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 on the ends, as in the original
        cosin = (square_distance - square_distance_1 - square_distance_2) / (
            2 * np.sqrt(square_distance_1 * square_distance_2))
    square_sin = np.nan_to_num(1 - np.square(cosin))
    result = np.sqrt(np.maximum(square_distance_1 * square_distance_2 * square_sin / square_distance, 0))
    outside = ((square_distance_1 + square_distance < square_distance_2)
               | (square_distance_2 + square_distance < square_distance_1))
    result[outside] = np.sqrt(np.fmin(square_distance_1, square_distance_2))[outside]
    return result


def reference_point_to_segment_projection(xs: np.ndarray, ys: np.ndarray, start: np.ndarray,
                                          end: np.ndarray) -> np.ndarray:
    """The leaner textbook form: project onto the segment, clamp, measure."""
    dx, dy = end - start
    t = np.clip(((xs - start[0]) * dx + (ys - start[1]) * dy) / (dx * dx + dy * dy), 0, 1)
    return np.sqrt(np.square(xs - (start[0] + t * dx)) + np.square(ys - (start[1] + t * dy)))


def reference_threshold_map(polygon: np.ndarray, distance: float, canvas: np.ndarray,
                            point_to_segment=reference_point_to_segment) -> None:
    """MakeBorderMap.draw_border_map: canvas = max(canvas, 1 - min(dist / D, 1)) on the box."""
    height, width = canvas.shape
    xmin, ymin = np.floor(polygon.min(0) - distance).astype(int)
    xmax, ymax = np.ceil(polygon.max(0) + distance).astype(int)
    box_w, box_h = xmax - xmin + 1, ymax - ymin + 1
    xs = np.broadcast_to(np.linspace(xmin, xmax, num=box_w).reshape(1, box_w), (box_h, box_w))
    ys = np.broadcast_to(np.linspace(ymin, ymax, num=box_h).reshape(box_h, 1), (box_h, box_w))
    distance_map = np.zeros((len(polygon), box_h, box_w), dtype=np.float32)
    for i in range(len(polygon)):
        j = (i + 1) % len(polygon)
        distance_map[i] = np.clip(point_to_segment(xs, ys, polygon[i], polygon[j]) / distance, 0, 1)
    distance_map = distance_map.min(axis=0)
    x0, x1 = max(xmin, 0), min(xmax, width - 1)
    y0, y1 = max(ymin, 0), min(ymax, height - 1)
    if x0 > x1 or y0 > y1:
        return
    inside = distance_map[y0 - ymin : y1 - ymin + 1, x0 - xmin : x1 - xmin + 1]
    canvas[y0 : y1 + 1, x0 : x1 + 1] = np.fmax(1 - inside, canvas[y0 : y1 + 1, x0 : x1 + 1])


def reference_make_targets(polygons, ignore, height, width, shrink_ratio=0.4, thresh_min=0.3, thresh_max=0.7,
                           min_text_size=3.0, point_to_segment=reference_point_to_segment) -> dict[str, np.ndarray]:
    """MakeShrinkMap + MakeBorderMap, one polygon at a time."""
    prob_map = np.zeros((height, width), np.float32)
    prob_mask = np.ones((height, width), np.float32)
    canvas = np.zeros((height, width), np.float32)
    thresh_mask = np.zeros((height, width), np.float32)
    for polygon, dont_care in zip(polygons, ignore):
        polygon = np.asarray(polygon, np.float64)
        fixed = np.round(polygon * ONE).astype(np.int32)
        shape = Polygon(polygon)
        too_small = shape.area <= 0 or min(cv2.minAreaRect(polygon.astype(np.float32))[1]) < min_text_size
        shrunk = []
        if not (dont_care or too_small):
            distance = shape.area * (1 - shrink_ratio**2) / shape.length
            padding = pyclipper.PyclipperOffset(arc_tolerance=0.25 * ONE)
            padding.AddPath(fixed.tolist(), pyclipper.JT_ROUND, pyclipper.ET_CLOSEDPOLYGON)
            shrunk = padding.Execute(-distance * ONE)
        if not shrunk:
            cv2.fillPoly(prob_mask, [fixed], 0.0, shift=FRACTION_BITS)
            continue
        cv2.fillPoly(prob_map, [np.array(ring, np.int32) for ring in shrunk], 1.0, shift=FRACTION_BITS)
        dilated = padding.Execute(distance * ONE)
        cv2.fillPoly(thresh_mask, [np.array(ring, np.int32) for ring in dilated], 1.0, shift=FRACTION_BITS)
        reference_threshold_map(polygon, distance, canvas, point_to_segment)
    thresh_map = canvas * (thresh_max - thresh_min) + thresh_min
    return {"prob_map": prob_map, "prob_mask": prob_mask, "thresh_map": thresh_map, "thresh_mask": thresh_mask}


def compare(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, float]:
    """Max |diff| and differing pixels of each map, and where the threshold masks disagree.

    Returns:
        {"<map>.max_diff", "<map>.pixels"} per map, plus "thresh_mask.ratio_min/max": the range
        of dist / D where the masks differ (ours is the exact D-neighbourhood, the reference
        fills pyclipper's polygonal dilation: they may differ only where dist / D is about 1).
    """
    figures = {}
    for key in ours:
        diff = np.abs(ours[key] - reference[key])
        figures[f"{key}.max_diff"], figures[f"{key}.pixels"] = float(diff.max()), int((diff > 0).sum())
    differ = ours["thresh_mask"] != reference["thresh_mask"]
    if differ.any():
        ratio = 1 - (reference["thresh_map"][differ] - 0.3) / 0.4
        figures["thresh_mask.ratio_min"], figures["thresh_mask.ratio_max"] = float(ratio.min()), float(ratio.max())
    return figures


def run(repeats: int = 15, quick: bool = False, size: int = 1024, quads: int = 100) -> dict:
    """Time `make_db_targets` and both references side by side on the same quads.

    Args:
        repeats: calls of each candidate (median); `quick` caps it at 3.
        quick: fewer repeats only (the size stays, the ratio depends on it).
        size: the square map side.
        quads: text quads on the map (5 % of them ignored).
    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    repeats = min(repeats, 3) if quick else repeats
    rng = np.random.default_rng(0)
    polygons = random_text_quads(rng, quads, size)
    ignore = (rng.random(len(polygons)) < 0.05).tolist()
    call = {
        "ours": lambda: make_db_targets(polygons, ignore, size, size),
        "reference": lambda: reference_make_targets(polygons, ignore, size, size),
        "reference (projection)": lambda: reference_make_targets(
            polygons, ignore, size, size, point_to_segment=reference_point_to_segment_projection),
    }
    wall, cpu = measure(call, repeats)
    figures = compare(call["ours"](), call["reference"]())
    equal = figures["prob_map.pixels"] == 0 and figures["thresh_map.max_diff"] <= THRESH_TOLERANCE
    check = (f"prob_map {figures['prob_map.pixels']} differing pixels, thresh_map max |diff| "
             f"{figures['thresh_map.max_diff']:.1e} ({'equal' if equal else 'NOT equal'}, tolerance {THRESH_TOLERANCE:g})")
    speedup = wall["reference"] / wall["ours"]
    met = speedup >= TARGET_SPEEDUP and equal
    name = f"targets {size}px, {quads} quads"
    rows = [row(name, wall["ours"], wall["reference"], "ms/image", f">= {TARGET_SPEEDUP:.0f}x, equal", met, check),
            row("targets vs projection reference", wall["ours"], wall["reference (projection)"], "ms/image", "-", None)]
    metrics = {"targets.ms_per_image": wall["ours"], "targets.reference_ms_per_image": wall["reference"],
               "targets.speedup": speedup, "targets.cpu_speedup": cpu["reference"] / cpu["ours"],
               "targets.projection_speedup": wall["reference (projection)"] / wall["ours"],
               "targets.thresh_map_max_diff": figures["thresh_map.max_diff"],
               "targets.prob_map_differing_pixels": figures["prob_map.pixels"]}
    notes = [f"median of {repeats} repeats; CPU-time speed-up {metrics['targets.cpu_speedup']:.1f}x",
             ", ".join(f"{key} {value:.3g}" for key, value in figures.items())]
    profile = [] if met else profile_top(call["ours"])
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": profile}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--quads", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.size, args.quads))


if __name__ == "__main__":
    main()
