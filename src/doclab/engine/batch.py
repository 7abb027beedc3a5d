"""`batch_size: auto` and gradient accumulation that keeps the effective batch constant."""
from __future__ import annotations

import gc
import math
from collections.abc import Callable

import torch

# CPU training is compute-bound: a bigger batch only adds memory, not speed.
CPU_BATCH = 4
PROBE_START = 2


def accumulation_steps(effective_batch: int, batch: int, world_size: int = 1) -> int:
    """Micro-batches per optimizer step so that steps see about `effective_batch` samples.

    Args:
        effective_batch: samples per optimizer step over all processes.
        batch: samples per forward pass on one process.
        world_size: processes training together (DDP).
    Returns:
        ceil(effective_batch / (batch * world_size)), at least 1.
    """
    return max(1, math.ceil(effective_batch / (batch * world_size)))


def largest_fitting(probe: Callable[[int], None], start: int, limit: int,
                    is_oom: Callable[[BaseException], bool], release: Callable[[], None] = lambda: None) -> int:
    """Double the batch from `start` while `probe(batch)` succeeds; the largest success wins.

    Args:
        probe: runs one forward + backward at the given batch size; raises when out of memory.
        start: first size tried.
        limit: largest size worth trying.
        is_oom: tells an out-of-memory error apart from a real bug (which is re-raised).
        release: frees cached memory after every attempt (outside the exception handler).
    Returns:
        The largest size that ran, at least 1 (sizes below `start` are tried when `start` fails).
    Raises:
        RuntimeError: even batch size 1 does not fit.
    """
    fits, size = 0, min(start, limit)
    while True:
        try:
            probe(size)
            ran = True
        except BaseException as exc:  # noqa: BLE001 - re-raised unless it is an OOM
            if not is_oom(exc):
                raise
            ran = False
        # Outside the except block: the failed probe's traceback (and the tensors its frames hold) is
        # gone, so `release` can really return the memory.
        release()
        if not ran:
            if size == 1:
                raise RuntimeError("batch_size auto: even a batch of 1 does not fit in GPU memory "
                                   "(use a smaller image_size or model)")
            if fits:
                return fits
            limit = size - 1  # nothing this large fits: search below it
            size = max(1, size // 2)
            continue
        fits = size
        if size >= limit:
            return fits
        size = min(size * 2, limit)


def _release_cuda() -> None:
    gc.collect()
    torch.cuda.empty_cache()


def _is_cuda_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.cuda.OutOfMemoryError)


def resolve_batch_size(requested: int | str, device: torch.device, probe: Callable[[int], None],
                       limit: int) -> int:
    """The per-process batch for the `batch_size` param.

    Args:
        requested: an integer (used as is) or 'auto'.
        device: on CUDA 'auto' probes real forward+backward passes; elsewhere it is CPU_BATCH.
        probe: `probe(batch)` runs one training forward + backward of that size (CUDA only).
        limit: never larger than this (e.g. the effective batch per process).
    Returns:
        The batch size.
    """
    if requested != "auto":
        return int(requested)
    if device.type != "cuda":
        return max(1, min(CPU_BATCH, limit))

    return largest_fitting(probe, PROBE_START, max(1, limit), _is_cuda_oom, _release_cuda)
