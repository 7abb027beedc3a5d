"""The one trainer recipe both tasks follow around `fit`: seeding, the batch plan, seeded loaders, the
warm-up clamp, the loop config and the resume fingerprint.

    seed_everything(params.seed)
    batch, accumulation = batch_plan(params.batch_size, train.effective_batch, runtime, info, probe_fn(model, sample, step))
    loader = seeded_loader(dataset, batch, train.workers, params.seed, runtime, True, sampler=..., stream=info.rank)
    config = loop_config(train, checkpoint_dir, run_fingerprint(__name__, config, files), "cleval/hmean", accumulation, "detector")
"""
from __future__ import annotations

import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler

from doclab.engine.batch import accumulation_steps, resolve_batch_size
from doclab.engine.checkpoint import fingerprint
from doclab.engine.device import Runtime
from doclab.engine.distributed import DistInfo, agree_min
from doclab.engine.loading import SeededSampler, resolve_workers, seed_worker
from doclab.engine.loop_config import LoopConfig
from doclab.imports import code_files

StepFn = Callable[[nn.Module, Any], tuple[dict[str, torch.Tensor], int]]

CUDA_PREFETCH = 4  # batches queued per worker on CUDA (PyTorch's default is 2)


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and random (numpy takes seeds below 2**32)."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def probe_fn(model: nn.Module, make_batch: Callable[[int], Any], step: StepFn) -> Callable[[int], None]:
    """`probe(batch)`: one forward + backward at that size, leaving weights, BN statistics and RNGs as they were.

    Args:
        model: the model being trained.
        make_batch: `make_batch(size)` builds a training batch of `size` samples.
        step: the trainer's step function.
    """
    def probe(size: int) -> None:
        saved = {name: tensor.clone() for name, tensor in model.state_dict().items()}
        with torch.random.fork_rng():
            try:
                terms, _ = step(model, make_batch(size))
                terms["loss"].backward()
            finally:
                model.zero_grad(set_to_none=True)
                model.load_state_dict(saved)
    return probe


def batch_plan(requested: int | str, effective_batch: int, runtime: Runtime, info: DistInfo,
               probe: Callable[[int], None]) -> tuple[int, int]:
    """(per-process micro-batch, accumulation steps) for `batch_size` and the effective batch.

    'auto' probes on CUDA; every rank takes the smallest batch any rank found.
    """
    if effective_batch < info.world_size and info.is_main:
        warnings.warn(f"effective batch {effective_batch} is below the {info.world_size} processes: every optimizer "
                      f"step sees {info.world_size} samples (one per process)", stacklevel=2)
    per_process = math.ceil(effective_batch / info.world_size)
    batch = agree_min(resolve_batch_size(requested, runtime.device, probe, per_process), info, runtime.device)
    return batch, accumulation_steps(effective_batch, batch, info.world_size)


def seeded_loader(dataset: Dataset, batch: int, workers: int | str, seed: int, runtime: Runtime, train: bool,
                  sampler: Sampler | None = None, collate: Callable | None = None,
                  generator: torch.Generator | None = None, stream: int = 0, persistent: bool = True) -> DataLoader:
    """A loader whose batches are a function of `seed` (and the epoch) alone.

    Training wraps the order (`sampler`, else a shuffle) in a `SeededSampler`: indices and per-sample
    augmentation seeds are drawn in the main process, so neither the worker count nor persistent
    workers change a batch, and the loop's `set_epoch` replays an epoch exactly on resume. Training
    also drops the last incomplete batch: equal micro-batches keep accumulation exact, and BatchNorm
    statistics from a batch of one are noise. Workers persist across epochs and validations (no
    restart cost per pass) and queue `CUDA_PREFETCH` batches each on CUDA.

    Args:
        dataset: samples; with `train`, its `__getitem__` takes (index, seed) pairs (see `split_item`).
        batch: samples per batch.
        workers: worker processes, or 'auto' (see `resolve_workers`).
        seed: the run's seed.
        runtime: the device (pinned memory and prefetch on CUDA).
        train: shuffle (unless `sampler` is given), draw sample seeds, drop the last incomplete batch.
        sampler: the training order, e.g. a DistributedSampler or the classifier's class-balanced one.
        collate: the batch collate function.
        generator: the generator `sampler` draws from (a fresh one when None).
        stream: the DDP rank, so every rank draws its own sample seeds.
        persistent: keep the workers between passes (off for a loader read once among many, whose
            idle workers would only hold memory).
    Returns:
        The DataLoader; its own generator only seeds the workers (`seed_worker`).
    """
    if train:
        generator = generator or torch.Generator()
        order = sampler if sampler is not None else RandomSampler(dataset, generator=generator)
        sampler = SeededSampler(order, generator, seed, stream)
    count = resolve_workers(workers)
    prefetch = CUDA_PREFETCH if count and runtime.device.type == "cuda" else None
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=count, collate_fn=collate,
                      worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(seed), drop_last=train,
                      pin_memory=runtime.device.type == "cuda", persistent_workers=persistent and count > 0,
                      prefetch_factor=prefetch)


def warmup_steps(warmup_epochs: float, steps_per_epoch: int, total_steps: int) -> int:
    """Warm-up optimizer steps; at most half the run warms up, so a short smoke run (epochs: 1) still decays."""
    return min(round(warmup_epochs * steps_per_epoch), total_steps // 2)


def loop_config(train: Any, checkpoint_dir: Path, run_print: str, monitor: str, accumulation: int,
                desc: str) -> LoopConfig:
    """The `LoopConfig` of a `*.train` params section (epochs, grad_clip, ema, ema_decay, patience, val_every)."""
    return LoopConfig(epochs=train.epochs, checkpoint_dir=checkpoint_dir, fingerprint=run_print, monitor=monitor,
                      mode="max", accumulation=accumulation, grad_clip=train.grad_clip,
                      ema_decay=train.ema_decay if train.ema else None, patience=train.patience,
                      val_every=train.val_every, desc=desc)


def run_fingerprint(stage_module: str, config: Any, files: list[Path]) -> str:
    """Hash of `config`, the input `files` and every source file `stage_module` imports (its import closure)."""
    return fingerprint(config, [*files, *code_files(stage_module)])
