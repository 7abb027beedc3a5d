"""Benchmark: doclab's detector deployed (onnxruntime) against doclab torch and PP-OCRv4's detector
(its ONNX model as shipped in `rapidocr-onnxruntime`), on the real SROIE validation receipts.

    uv run --extra bench python tests/benchmarks/bench_deploy.py [--models models] [--side 960] [--repeats 2]

Every runtime sees the same images at the same longest side and runs one image at a time on the
same threads; ms/image is split into pre-processing / model / post-processing, and each runtime's
detections are scored with CLEval against the receipts' ground truth. PP-OCRv4 was trained on far
more data, so its H-mean is context, not a target. Target: doclab onnxruntime at least as fast per
image as PP-OCRv4's detector. Needs `dvc repro` (models/deploy) and ../shared/data/sroie_trainval.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import yaml
from timing import print_result, row

from doclab.data.images import read_image
from doclab.deploy.manifest import read_manifest
from doclab.deploy.preprocess import input_batch
from doclab.deploy.runtime import open_session
from doclab.detection.evaluator import DetectionEvaluator
from doclab.detection.postprocess import db_postprocess
from doclab.detection.predictor import DetectorPredictor

ROOT = Path(__file__).resolve().parents[2]
SROIE = ROOT.parent / "shared" / "data" / "sroie_trainval"
PHASES = ("pre", "model", "post")


def load_val(data: Path) -> tuple[list[str], dict[str, np.ndarray], dict]:
    """The validation receipts: keys, RGB images, and {key: (polygons, ignore flags)} in their pixels."""
    ufo = json.loads((data / "ufo" / "annotation.json").read_text())["images"]
    keys = sorted(json.loads((data / "ufo" / "splits.json").read_text())["val"])
    images = {key: read_image(data / "images" / key)[0] for key in keys}
    truth = {key: ([np.asarray(w["points"], np.float64) for w in ufo[key]["words"].values()],
                   [w.get("transcription") == "###" for w in ufo[key]["words"].values()]) for key in keys}
    return keys, images, truth


def doclab_runner(model: Callable[[np.ndarray], np.ndarray], models: Path, side: int) -> Callable:
    """One image -> (detections, {phase: ms}) with the manifest's rule at `side` and its tuned post-processing."""
    spec = read_manifest(models / "deploy" / "deploy.json").detector
    rule = replace(spec.input, size=side)

    def detect(image: np.ndarray):
        start = time.perf_counter()
        batch, scales = input_batch([image], rule)
        loaded = time.perf_counter()
        maps = model(batch)
        ran = time.perf_counter()
        found = db_postprocess(maps, spec.postprocess, scales=scales, original_sizes=[image.shape[:2]])[0]
        done = time.perf_counter()
        return [d.points for d in found], {"pre": loaded - start, "model": ran - loaded, "post": done - ran}
    return detect


def ppocr_runner(side: int, threads: int) -> Callable:
    """PP-OCRv4's detector through RapidOCR's own pre-processing, session and DB post-processing."""
    import rapidocr_onnxruntime
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    package = Path(rapidocr_onnxruntime.__file__).parent
    config = yaml.safe_load((package / "config.yaml").read_text())["Det"]
    config.update(model_path=str(package / config["model_path"]), intra_op_num_threads=threads)
    detector = TextDetector(config)
    prepare = DetPreProcess(side, "max", config["mean"], config["std"])  # longest side `side`, as ours

    def detect(image: np.ndarray):
        start = time.perf_counter()
        batch = prepare(image)
        loaded = time.perf_counter()
        probs = detector.infer(batch)[0]
        ran = time.perf_counter()
        boxes, _ = detector.postprocess_op(probs, image.shape[:2])
        boxes = detector.filter_tag_det_res(boxes, image.shape[:2])
        done = time.perf_counter()
        return list(boxes), {"pre": loaded - start, "model": ran - loaded, "post": done - ran}
    return detect


def score(runner: Callable, keys: list[str], images: dict, truth: dict) -> tuple[dict[str, float], float]:
    """One pass over the receipts: ({phase: mean ms/image}, CLEval H-mean)."""
    evaluator, totals = DetectionEvaluator(truth), dict.fromkeys(PHASES, 0.0)
    for key in keys:
        found, phases = runner(images[key])
        evaluator.process([key], [found])
        for phase in PHASES:
            totals[phase] += phases[phase]
    return {phase: 1000 * total / len(keys) for phase, total in totals.items()}, evaluator.evaluate()["cleval/hmean"]


def run(repeats: int = 2, quick: bool = False, models: Path = ROOT / "models", side: int = 960) -> dict:
    """Time the three runtimes in alternation over the validation receipts; median of `repeats` passes."""
    if not SROIE.is_dir():
        raise SystemExit(f"{SROIE}: not present (the real receipts this benchmark runs on)")
    keys, images, truth = load_val(SROIE)
    keys = keys[:8] if quick else keys
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch_model = DetectorPredictor(models, torch.device("cpu")).model

    def torch_maps(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch_model(torch.from_numpy(batch))[:, 0].numpy()
    session = open_session(models / "deploy" / "detector.onnx", "cpu")
    runners = {"doclab onnxruntime": doclab_runner(lambda b: session.run(None, {"images": b})[0][:, 0], models, side),
               "doclab torch": doclab_runner(torch_maps, models, side),
               "PP-OCRv4 det (RapidOCR)": ppocr_runner(side, threads)}
    for runner in runners.values():  # warm-up: first-call allocations and thread pools
        runner(images[keys[0]])
    passes = {name: [] for name in runners}
    for _ in range(1 if quick else repeats):
        for name, runner in runners.items():
            passes[name].append(score(runner, keys, images, truth))
    results = {name: ({p: float(np.median([ms[p] for ms, _ in done])) for p in PHASES}, done[0][1])
               for name, done in passes.items()}
    return _report(results, side, len(keys), threads)


def _report(results: dict, side: int, images: int, threads: int) -> dict:
    def total(name: str) -> float:
        return sum(results[name][0].values())

    def split(name: str) -> str:
        ms, hmean = results[name]
        return f"{name}: pre {ms['pre']:.1f} / model {ms['model']:.1f} / post {ms['post']:.1f} ms, H-mean {hmean:.4f}"
    ours, torch_name, peer = "doclab onnxruntime", "doclab torch", "PP-OCRv4 det (RapidOCR)"
    rows = [row(f"deploy: doclab onnxruntime vs PP-OCRv4 det, {side} px", total(ours), total(peer), "ms/image",
                ">= 1.0x (as fast)", total(ours) <= total(peer), f"{split(ours)}; {split(peer)}"),
            row(f"deploy: doclab onnxruntime vs doclab torch, {side} px", total(ours), total(torch_name), "ms/image",
                "-", None, split(torch_name))]
    slug = {ours: "onnx", torch_name: "torch", peer: "ppocr"}
    metrics = {f"deploy.{slug[name]}.{phase}_ms": ms[phase] for name, (ms, _) in results.items() for phase in PHASES}
    metrics.update({f"deploy.{slug[name]}.hmean": hmean for name, (_, hmean) in results.items()})
    notes = [f"{images} SROIE val receipts (../shared/data/sroie_trainval), longest side {side}, one image per call, "
             f"{threads} threads for every runtime. doclab letterboxes to a {side}x{side} square (its trained input "
             f"rule); PP-OCR resizes to multiples of 32 without padding."]
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--side", type=int, default=960)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.models, args.side))


if __name__ == "__main__":
    main()
