"""Detection loader throughput vs. a DBNet training step, side by side.

    uv run --no-sync python tests/benchmarks/bench_loader.py [--size 1024] [--images 40]

Builds a synthetic processed folder (receipt-like pages, ~100 word boxes each) in a temp
dir, then prints images/s of: the train-transform + DB-targets loader with 0 and 2
workers (plus a per-step breakdown in the main process), and a resnet18 DBNet training
step at the same size. The loader keeps up when its images/s exceed the step's.
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
from torch.utils.data import DataLoader

from doclab.config import AugmentParams, DetectorParams
from doclab.detection.augment import apply_transform, build_train_transform, reseed
from doclab.detection.dataset import DetectionDataset, collate_detection, normalise, read_rgb, seed_worker
from doclab.detection.targets import make_db_targets


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


def train_rate(size: int, batch_size: int, steps: int, device: torch.device) -> float | None:
    """resnet18 DBNet forward + backward + SGD step, images/s; None if the model is not available."""
    try:
        from doclab.detection.model import build_detector
    except ImportError as exc:
        print(f"training step: skipped (doclab.detection.model.build_detector does not import: {exc})")
        return None
    model = build_detector("resnet18", DetectorParams(), pretrained=False).to(device).train()
    optimiser = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    images = torch.randn(batch_size, 3, size, size, device=device)
    prob = (torch.rand(batch_size, size, size, device=device) > 0.9).float()
    thresh = torch.full_like(prob, 0.5)

    def step() -> None:
        # Stand-in for the DB loss with the same work per pixel: BCE on P and B, L1 on T.
        out = model(images)
        loss = (torch.nn.functional.binary_cross_entropy(out[:, 0], prob)
                + torch.nn.functional.binary_cross_entropy(out[:, 2], prob)
                + (out[:, 1] - thresh).abs().mean())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    step()  # warm-up: allocator, cuDNN autotuning
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024, help="image_size (S)")
    parser.add_argument("--images", type=int, default=40, help="synthetic pages")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--train-batch", type=int, default=2, help="batch of the training-step timing")
    parser.add_argument("--train-steps", type=int, default=2)
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "processed"
        words = make_pages(root, args.images)
        print(f"{args.images} pages 1000x1400, {words:.0f} words/page, S={args.size}, "
              f"torch threads={torch.get_num_threads()}, device={device}")
        dataset = DetectionDataset(root, "train", args.size, build_train_transform(AugmentParams(), args.size),
                                   DetectorParams())
        steps = breakdown(dataset, min(10, args.images))
        print("per image (main process): " + ", ".join(f"{k} {v:.1f} ms" for k, v in steps.items())
              + f", total {sum(steps.values()):.1f} ms")
        for workers in args.workers:
            rate = loader_rate(dataset, workers, args.batch_size)
            print(f"loader  workers={workers}: {rate:6.2f} images/s")
    rate = train_rate(args.size, args.train_batch, args.train_steps, device)
    if rate is not None:
        print(f"train step resnet18 DBNet (batch {args.train_batch}, {device.type}): {rate:6.2f} images/s")


if __name__ == "__main__":
    main()
