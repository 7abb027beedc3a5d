"""Detection loader throughput vs. a DBNet training step, side by side.

    uv run python tests/benchmarks/bench_loader.py [--size 1024] [--images 40] [--quick]

Builds a synthetic processed folder (receipt-like pages, ~100 word boxes each) in a temp
dir, then measures images/s of: the train-transform + DB-targets loader with 0 and 2
workers (plus a per-step breakdown in the main process), and a resnet18 DBNet training
step at the same size on the CPU. Target: the 2-worker loader keeps up (its images/s at
least the step's). With CUDA, also an hrnet_w44 step in AMP and in fp32, each at the batch
`batch_size: auto` picks (images/s, peak allocated memory); without, that part is skipped.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from timing import print_result, row
from torch.utils.data import DataLoader

from doclab.config import AugmentParams, DetectorParams
from doclab.detection.augment import apply_transform, build_train_transform
from doclab.detection.dataset import DetectionDataset, collate_detection, read_rgb
from doclab.detection.targets import make_db_targets
from doclab.engine.batch import resolve_batch_size
from doclab.engine.device import Runtime, make_runtime
from doclab.engine.loading import normalise, reseed, seed_worker

GPU_BACKBONE = "hrnet_w44"
GPU_BATCH_LIMIT = 64  # `auto` never probes beyond this


def make_pages(root: Path, count: int, width: int = 1000, height: int = 1400, seed: int = 0) -> float:
    """Write `count` pages with printed word lines as a processed folder; returns words per page."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    entries, total = {}, 0
    for i in range(count):
        page = np.full((height, width, 3), rng.integers(200, 250), np.uint8)
        words, y = {}, 60
        while y < height - 60:
            x = int(rng.integers(40, 120))
            for _ in range(int(rng.integers(2, 5))):
                text = "".join(rng.choice(list("ABCDEFGH0123456789"), int(rng.integers(3, 9))))
                (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.8, 2)
                if x + w > width - 40:
                    break
                cv2.putText(page, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (30, 30, 30), 2)
                box = [[x - 2, y - h - 2], [x + w + 2, y - h - 2], [x + w + 2, y + base], [x - 2, y + base]]
                words[f"{len(words):04d}"] = {"points": box, "transcription": text}
                x += w + int(rng.integers(15, 60))
            y += int(rng.integers(30, 40))
        key = f"page_{i:03d}.jpg"
        cv2.imwrite(str(root / "images" / key), page, [cv2.IMWRITE_JPEG_QUALITY, 95])
        entries[key] = {"img_w": width, "img_h": height, "words": words, "source": "bench"}
        total += len(words)
    (root / "annotations.json").write_text(json.dumps({"images": entries}))
    (root / "splits.json").write_text(json.dumps({"train": sorted(entries), "val": [], "test": []}))
    return total / count


def loader_rate(dataset: DetectionDataset, workers: int, batch_size: int) -> float:
    """images/s over one pass, timed from the first batch on (worker start-up excluded)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        worker_init_fn=seed_worker, collate_fn=collate_detection,
                        generator=torch.Generator().manual_seed(0))
    iterator = iter(loader)
    first = next(iterator)
    start, seen = time.perf_counter(), 0
    for batch in iterator:
        seen += len(batch["key"])
    elapsed = time.perf_counter() - start
    return seen / elapsed if seen else len(first["key"]) / elapsed


def breakdown(dataset: DetectionDataset, samples: int) -> dict[str, float]:
    """Mean milliseconds per image of each loader step, in this process."""
    totals = dict.fromkeys(("read", "augment", "targets", "normalise"), 0.0)
    for index in range(samples):
        words = dataset.words[index]
        t0 = time.perf_counter()
        image = read_rgb(dataset.root / "images" / dataset.keys[index])
        t1 = time.perf_counter()
        reseed(dataset.transform, index)
        image, polygons, ignore = apply_transform(dataset.transform, image, [w.points for w in words],
                                                  [w.ignore for w in words])
        t2 = time.perf_counter()
        make_db_targets(polygons, ignore, *image.shape[:2], **dataset.target_kwargs)
        t3 = time.perf_counter()
        normalise(image)
        t4 = time.perf_counter()
        for name, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[name] += seconds * 1000 / samples
    return totals


def make_step(backbone: str, size: int, runtime: Runtime):
    """A DBNet training step: `step(batch)` runs forward + backward + SGD on a random batch.

    Args:
        backbone: timm model name.
        size: square input side.
        runtime: device, autocast dtype and memory layout (as `detector.train` sets them).
    Returns:
        step(batch: int) -> None.
    """
    from doclab.detection.model import build_detector

    model = runtime.prepare_model(build_detector(backbone, DetectorParams(), pretrained=False).train())
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step(batch: int) -> None:
        images = runtime.images(torch.randn(batch, 3, size, size))
        prob = (torch.rand(batch, size, size, device=runtime.device) > 0.9).float()
        with runtime.autocast():
            out = model(images)
        # Stand-in for the DB loss with the same work per pixel: BCE on P and B, L1 on T.
        out = out.float()
        loss = (torch.nn.functional.binary_cross_entropy(out[:, 0], prob)
                + torch.nn.functional.binary_cross_entropy(out[:, 2], prob) + (out[:, 1] - 0.5).abs().mean())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return step


def train_rate(step, batch: int, steps: int, device: torch.device) -> float:
    """images/s of `steps` calls of `step(batch)` after one warm-up call (allocator, cuDNN autotuning)."""
    step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def gpu_step_rates(size: int, steps: int) -> dict[str, float]:
    """hrnet_w44 training step in AMP and fp32 at the batch `auto` picks for each (CUDA only).

    Returns:
        {"model_step_gpu.<amp|fp32>.images_per_s|max_memory_mb|auto_batch"}.
    """
    device = torch.device("cuda")
    figures = {}
    for name, amp in (("amp", True), ("fp32", False)):
        step = make_step(GPU_BACKBONE, size, make_runtime(device, amp, channels_last=True))
        batch = resolve_batch_size("auto", device, step, GPU_BATCH_LIMIT)
        torch.cuda.reset_peak_memory_stats(device)
        figures[f"model_step_gpu.{name}.images_per_s"] = train_rate(step, batch, steps, device)
        figures[f"model_step_gpu.{name}.max_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        figures[f"model_step_gpu.{name}.auto_batch"] = batch
        del step
        torch.cuda.empty_cache()
    return figures


def run(repeats: int = 1, quick: bool = False, size: int | None = None, images: int | None = None,
        workers: int = 2, batch_size: int = 4, train_batch: int = 2) -> dict:
    """Loader images/s (0 and `workers` workers) vs a resnet18 DBNet CPU training step.

    Args:
        repeats: timed training steps (at least 2).
        quick: 512 px and 20 pages instead of 1024 px and 40 (the loader needs several batches
            beyond the ones its workers prefetch while the first one is awaited).
        size, images: override the image side and the page count.
        workers: DataLoader workers of the timed loader.
        batch_size: loader batch.
        train_batch: batch of the CPU training step.
    Returns:
        {"rows", "metrics", "notes", "profile"} as the suite expects.
    """
    size = size or (512 if quick else 1024)
    images = images or (20 if quick else 40)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "processed"
        words = make_pages(root, images)
        dataset = DetectionDataset(root, "train", size, build_train_transform(AugmentParams(), size), DetectorParams())
        parts = breakdown(dataset, min(10, images))
        rates = {count: loader_rate(dataset, count, batch_size) for count in sorted({0, workers})}
    cpu = torch.device("cpu")
    step_rate = train_rate(make_step("resnet18", size, make_runtime(cpu, False, channels_last=True)),
                           train_batch, max(2, repeats), cpu)
    met = rates[workers] >= step_rate
    rows = [row(f"loader {workers} workers vs resnet18 step, {size}px", rates[workers], step_rate, "images/s",
                ">= 1x (keeps up)", met, higher_is_better=True),
            row(f"loader 0 workers vs resnet18 step, {size}px", rates[0], step_rate, "images/s", "-", None,
                higher_is_better=True)]
    metrics = {"loader.images_per_s": rates[workers], "loader.images_per_s_0_workers": rates[0],
               "model_step.images_per_s": step_rate,
               **{f"loader.{name}_ms_per_image": ms for name, ms in parts.items()}}
    notes = [f"{images} pages 1000x1400, {words:.0f} words/page, S={size}, torch threads {torch.get_num_threads()}; "
             "per image in the main process: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items())]
    if torch.cuda.is_available():
        gpu = gpu_step_rates(size, max(3, repeats))
        metrics.update(gpu)
        rows.append(row(f"{GPU_BACKBONE} step AMP vs fp32, {size}px", gpu["model_step_gpu.amp.images_per_s"],
                        gpu["model_step_gpu.fp32.images_per_s"], "images/s", "-", None, higher_is_better=True,
                        check=f"auto batch AMP {gpu['model_step_gpu.amp.auto_batch']:.0f} / fp32 "
                              f"{gpu['model_step_gpu.fp32.auto_batch']:.0f}; peak memory AMP "
                              f"{gpu['model_step_gpu.amp.max_memory_mb']:.0f} MiB / fp32 "
                              f"{gpu['model_step_gpu.fp32.max_memory_mb']:.0f} MiB"))
    else:
        notes.append(f"{GPU_BACKBONE} AMP vs fp32: skipped: no CUDA")
    return {"rows": rows, "metrics": metrics, "notes": notes, "profile": []}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=None, help="image_size S (default 1024, 512 with --quick)")
    parser.add_argument("--images", type=int, default=None, help="synthetic pages (default 40, 20 with --quick)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--train-batch", type=int, default=2, help="batch of the CPU training-step timing")
    parser.add_argument("--repeats", type=int, default=2, help="timed training steps")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print_result(run(args.repeats, args.quick, args.size, args.images, args.workers, args.batch_size,
                     args.train_batch))


if __name__ == "__main__":
    main()
