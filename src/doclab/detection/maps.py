"""Run the detector once over a split and keep its probability maps (float16) for the search.

    with cache_split_maps(params, Path("data/processed"), Path("models/detector.pt")) as cache:
        cache.maps  # (N, H, W) float16, in RAM or memory-mapped from a temp file

Maps larger than `tune.cache_mb` MiB go to a memory-mapped .npy in a temp folder, removed
when the `with` block ends, so the search never holds more than that in RAM.
"""
from __future__ import annotations

import contextlib
import gc
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from doclab.config import Params
from doclab.detection.augment import build_eval_transform
from doclab.detection.dataset import DetectionDataset, collate_detection
from doclab.detection.model_file import load_detector
from doclab.detection.map_cache import MapCache
from doclab.engine.batch import CPU_BATCH
from doclab.engine.device import Runtime, choose_device, deterministic, make_runtime
from doclab.engine.loading import resolve_workers

# `batch_size: auto` for inference on a GPU: no activations are kept for a backward pass, so
# this fits wherever training fits; on CPU a bigger batch is no faster.
GPU_INFERENCE_BATCH = 16
MAPS_FILE = "maps.npy"


@contextlib.contextmanager
def map_storage(count: int, shape: tuple[int, int], cache_mb: int) -> Iterator[tuple[np.ndarray, Path | None]]:
    """Writable zeroed storage for `count` maps of `shape` float16.

    Args:
        count: N maps.
        shape: (H, W), at least every map's size ((S, S) under `long_side`; the largest input
            shape under `short_side`, smaller maps sit at the top-left).
        cache_mb: RAM limit in MiB; larger storage is a memory-mapped .npy in a temp folder.
    Yields:
        ((N, H, W) float16 array or `np.memmap`, path of the .npy or None when in RAM). The
        temp folder is removed when the block exits.
    """
    nbytes = count * shape[0] * shape[1] * np.dtype(np.float16).itemsize
    if nbytes <= cache_mb * 2**20:
        yield np.zeros((count, *shape), np.float16), None
        return
    with tempfile.TemporaryDirectory(prefix="doclab-tune-") as folder:
        path = Path(folder) / MAPS_FILE
        yield np.lib.format.open_memmap(path, mode="w+", dtype=np.float16, shape=(count, *shape)), path


def predict_maps(model: nn.Module, loader: DataLoader, runtime: Runtime, out: np.ndarray,
                 path: Path | None = None) -> MapCache:
    """Fill `out` with the model's probability maps, one forward pass per batch.

    Args:
        model: the detector in eval mode on `runtime.device` ((B, 3, H, W) -> (B, 1, H, W)).
        loader: unshuffled eval-transform batches (`collate_detection`) of N images.
        runtime: device, autocast and memory layout.
        out: (N, H, W) float16 storage (from `map_storage`), at least as large as every batch.
        path: the .npy file behind `out` when it is memory-mapped.
    Returns:
        The `MapCache` over `out`.
    """
    keys, scales, sizes, start = [], [], [], 0
    with torch.inference_mode():
        for batch in loader:
            with runtime.autocast():
                probs = model(runtime.images(batch["image"]))
            stop = start + len(probs)
            out[start:stop, :probs.shape[2], :probs.shape[3]] = probs[:, 0].float().cpu().numpy()
            keys += batch["key"]
            scales += [float(scale) for scale in batch["scale"]]
            sizes += [(int(h), int(w)) for h, w in batch["original_size"]]
            start = stop
    if start != len(out):
        raise ValueError(f"the loader gave {start} maps, expected {len(out)}")
    if isinstance(out, np.memmap):
        out.flush()
    return MapCache(out, tuple(keys), tuple(scales), tuple(sizes), path)


def predict_maps_fitting(model: nn.Module, make_loader: Callable[[int], DataLoader], batch: int, runtime: Runtime,
                         out: np.ndarray, path: Path | None = None) -> MapCache:
    """`predict_maps` at `batch`, halving the batch after a CUDA out-of-memory error (down to 1).

    A fixed inference batch that fits one GPU need not fit a smaller one, or a bigger model.
    """
    while True:
        try:
            return predict_maps(model, make_loader(batch), runtime, out, path)
        except torch.cuda.OutOfMemoryError:
            if batch == 1:
                raise
        # Outside the handler, so the failed batch's tensors are really freed.
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        batch //= 2
        print(f"detector inference: out of GPU memory, retrying with batch {batch}", file=sys.stderr)


def _inference_batch(batch_size: int | str, device: torch.device) -> int:
    if batch_size != "auto":
        return int(batch_size)
    return GPU_INFERENCE_BATCH if device.type == "cuda" else CPU_BATCH


@contextlib.contextmanager
def cache_split_maps(params: Params, data_dir: Path, model_path: Path, split: str = "val") -> Iterator[MapCache]:
    """The trained detector's probability maps of one split (validation for tuning), computed once.

    Args:
        params: reads device, image_size, batch_size, detector (targets, train.amp,
            train.channels_last, train.workers) and tune.cache_mb.
        data_dir: the processed folder (images/, annotations.json, splits.json).
        model_path: models/detector.pt from `train_detector`.
        split: the split to run over.
    Yields:
        The `MapCache` (memory-mapped and temp-file backed when over `tune.cache_mb`).
    Raises:
        FileNotFoundError: no model file.
        CheckpointError: not a detector file.
        DataError: no images with detection annotations in the split.
    """
    model_path, data_dir = Path(model_path), Path(data_dir)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path}: trained detector not found (run the train_detector stage first)")
    device = choose_device(params.device)
    settings = params.detector.train
    runtime = make_runtime(device, settings.amp, settings.channels_last)
    model, _ = load_detector(model_path, device)
    runtime.prepare_model(model)
    size, rule = params.image_size, params.detector.input
    dataset = DetectionDataset(data_dir, split, size, build_eval_transform(size, rule), params.detector)
    def make_loader(batch: int) -> DataLoader:
        return DataLoader(dataset, batch_size=batch, shuffle=False, num_workers=resolve_workers(settings.workers),
                          collate_fn=collate_detection, pin_memory=device.type == "cuda")

    shapes = dataset.eval_shapes()
    shape = max(height for height, _ in shapes), max(width for _, width in shapes)
    with map_storage(len(dataset), shape, params.tune.cache_mb) as (storage, path):
        with deterministic(device.type == "cpu"):
            cache = predict_maps_fitting(model, make_loader, _inference_batch(params.batch_size, device), runtime,
                                         storage, path)
        yield cache
