"""Benchmark: peak memory and time of the preprocess stage on 4961x7016 receipt scans, beside 1000 px photos.

    uv run python tests/benchmarks/memory_large_scans.py [--images 12] [--workers 2]

SROIE's 81 largest originals are 4961x7016 A4 scans; ../shared/data keeps them at 905x1280, so this
writes its own: each scan is a SROIE receipt (or, without ../shared/data, a synthetic one) pasted
onto a white 4961x7016 page at scanner scale and saved as JPEG q=90 with its boxes in a UFO file.
The reference run is the same receipts at their own size (about 1000 px). Each preprocess runs in a
fresh interpreter; the figure is its `getrusage(RUSAGE_CHILDREN).ru_maxrss`, pool workers included.
Bounded means the scans' peak stays near the photos' peak, far below the 35 MP x 3 B = 104 MB per
decoded scan times the images in flight.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[2]
SROIE = ROOT.parent / "shared" / "data" / "sroie_trainval"
SCAN = (4961, 7016)
RUNNER = """
import json, resource, sys, time
from pathlib import Path
from doclab.config import load_params
from doclab.pipeline.preprocess import preprocess
start = time.perf_counter()
stats = preprocess(load_params(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[2]) / "out", Path(sys.argv[2]) / "m.json")
wall = time.perf_counter() - start
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"wall_s": wall, "peak_mib": peak / 1024, "images": stats["train"]["images"] + stats["val"]["images"]}))
"""


def _receipts(count: int) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """(BGR image, box polygons) of SROIE receipts, or synthetic receipts without ../shared/data."""
    if SROIE.is_dir():
        entries = json.loads((SROIE / "ufo/annotation.json").read_text())["images"]
        keys = sorted(key for key, entry in entries.items() if max(entry["img_w"], entry["img_h"]) < 1280)[:count]
        return [(cv2.imread(str(SROIE / "images" / key)),
                 [np.array(word["points"], np.float64) for word in entries[key]["words"].values()]) for key in keys]
    from doclab.data.synthetic.generator import generate_document
    docs = [generate_document(0, index, "receipt", 1000, "line") for index in range(count)]
    return [(cv2.cvtColor(doc.image, cv2.COLOR_RGB2BGR), [w.points.astype(np.float64) for w in doc.words]) for doc in docs]


def _write_set(folder: Path, receipts: list, scan: bool) -> None:
    images = folder / "images"
    images.mkdir(parents=True)
    annotations = {}
    for index, (image, polygons) in enumerate(receipts):
        if scan:  # the receipt at 300 dpi-like scale on an A4 page, as the big SROIE scans are
            scale = 0.5 * SCAN[1] / image.shape[0]
            small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
            page = np.full((SCAN[1], SCAN[0], 3), 250, np.uint8)
            top, left = 400, (SCAN[0] - small.shape[1]) // 2
            page[top:top + small.shape[0], left:left + small.shape[1]] = small[:, : SCAN[0] - left]
            image, polygons = page, [p * scale + [left, top] for p in polygons]
        name = f"r{index:03d}.jpg"
        cv2.imwrite(str(images / name), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        words = {f"{i:04d}": {"points": p.round(2).tolist(), "transcription": "x"} for i, p in enumerate(polygons)}
        annotations[name] = {"img_w": image.shape[1], "img_h": image.shape[0], "words": words}
    (folder / "annotation.json").write_text(json.dumps({"images": annotations}))


def _run(folder: Path, workers: int) -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["data"].update(source="sources", on_bad="skip",
                          sources=[{"name": "s", "format": "ufo", "images": str(folder / "images"),
                                    "annotations": str(folder / "annotation.json")}])
    params["data"]["split"].update(val=0.25, test=0.0)
    params["preprocess"].update(workers=workers, max_side=1280, min_word_side=0.5)
    (folder / "params.yaml").write_text(yaml.safe_dump(params))
    done = subprocess.run([sys.executable, "-c", RUNNER, str(folder / "params.yaml"), str(folder)],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    receipts = _receipts(args.images)
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for label, scan in (("photos (own size)", False), (f"scans {SCAN[0]}x{SCAN[1]}", True)):
            folder = Path(tmp) / ("scans" if scan else "photos")
            _write_set(folder, receipts, scan)
            results[label] = _run(folder, args.workers)
    source = "SROIE receipts" if SROIE.is_dir() else "synthetic receipts"
    print(f"preprocess of {args.images} {source}, {args.workers} workers, max_side 1280:")
    for label, result in results.items():
        print(f"  {label:24s} {result['wall_s']:6.1f} s  peak RSS {result['peak_mib']:7.1f} MiB  "
              f"({result['images']} images kept)")


if __name__ == "__main__":
    main()
