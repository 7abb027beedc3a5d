"""Sample loading both tasks share: image normalisation, seeded augmentation, per-sample seeds drawn in the
main process, seeded DataLoader workers and their number.

A training loader's sampler is a `SeededSampler`: it yields (index, seed) pairs, and a dataset runs the
whole augmentation of that sample from `seed` (`split_item`, then `reseed`). Worker processes draw nothing,
so batches are the same with 0, 1 or 8 workers, persistent or restarted, and a resumed run replays them.
"""
from __future__ import annotations

import os
import random
from collections.abc import Iterator
from typing import Any

import albumentations as A
import cv2
import numpy as np
import torch
from torch.utils.data import Sampler, Subset

from doclab.data.pixels import IMAGENET_MEAN, IMAGENET_STD, normalise_chw

AUTO_WORKERS_MAX = 8
SEED_LIMIT = 2**31 - 1  # sample seeds lie in [0, SEED_LIMIT): valid for numpy, random and albumentations


def normalise(image: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (3, S, S) float32, ImageNet mean/std (`normalise_chw`, shared with deployment)."""
    return torch.from_numpy(normalise_chw(image, IMAGENET_MEAN, IMAGENET_STD))


def reseed(transform: A.Compose, seed: int) -> None:
    """Make the next call of `transform` a function of `seed`.

    One shared generator pair, not `Compose.set_random_seed`: that seeds every child
    transform identically, so e.g. rotate_p and affine_p would always fire together.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: no OpenCV threads per worker, numpy/random from torch's seed.

    torch already seeds each worker with base_seed + worker_id (base_seed from the loader's
    generator); numpy and random are derived from it so they are reproducible too. Augmentation
    draws from none of them: it runs from the sample seeds `SeededSampler` draws in the main process.
    """
    cv2.setNumThreads(0)  # workers already run in parallel; nested pools oversubscribe the CPUs
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def resolve_workers(workers: int | str) -> int:
    """DataLoader worker processes for a `*.train.workers` setting.

    'auto': the cores this process may run on (its affinity, which a container or `taskset` narrows),
    shared among torchrun's processes on this machine, less one for the main process (it runs the
    training step and feeds the GPU); at most 8, since each worker holds a dataset copy and its queued
    batches in memory for ever smaller gains (set an integer to go further); at least 1, so decoding and
    augmentation never run in the main process.

    Args:
        workers: 'auto' or a count (0: load in the main process).
    Returns:
        The count.
    """
    if workers != "auto":
        return int(workers)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    per_process = cores // max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    return max(1, min(per_process - 1, AUTO_WORKERS_MAX))


def split_item(item: int | tuple[int, int]) -> tuple[int, int]:
    """(dataset index, augmentation seed) of what a loader asks a dataset for.

    Args:
        item: an (index, seed) pair from `SeededSampler`, or a plain index (evaluation, probe batches, tests).
    Returns:
        The pair; a plain index is its own seed, so it is deterministic and draws from no RNG (a draw from
        torch's global RNG would make the main process's stream depend on where samples are loaded).
    """
    if isinstance(item, tuple):
        index, seed = item
        return int(index), int(seed)
    return int(item), int(item)


class SeededSampler(Sampler[tuple[int, int]]):
    """Every index of `sampler` paired with an augmentation seed, both drawn in the main process.

    Each pass reseeds `generator` from (seed, epoch, stream) alone, lets `sampler` draw its order from it
    (a RandomSampler or WeightedRandomSampler built on the same generator; a DistributedSampler follows
    `set_epoch` instead) and then draws one seed per sample. The DataLoader's own generator is not used:
    the loader draws its worker base seed from it once per iterator, i.e. every epoch with fresh workers
    but once with persistent ones, which would shift every later draw.

    Args:
        sampler: the order of one epoch's indices.
        generator: the generator `sampler` draws from (or a private one when it draws from none).
        seed: the run's seed.
        stream: tells apart processes that sample in parallel (the DDP rank), so their seeds differ.
    """

    def __init__(self, sampler: Sampler[int], generator: torch.Generator, seed: int, stream: int = 0):
        self.sampler, self.generator, self.seed, self.stream = sampler, generator, seed, stream
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the next pass as epoch `epoch` (the training loop calls it before every epoch, resumed too)."""
        self.epoch = epoch
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.sampler)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        words = np.random.SeedSequence([self.seed, self.epoch, self.stream]).generate_state(1, np.uint64)
        self.generator.manual_seed(int(words[0]))
        indices = list(self.sampler)
        seeds = torch.randint(0, SEED_LIMIT, (len(indices),), generator=self.generator).tolist()
        self.epoch += 1  # a caller that never calls set_epoch still gets a new order each pass
        return iter(zip(indices, seeds))


class SeededSubset(Subset):
    """A `Subset` that passes (index, seed) pairs through: the pair's index is mapped, its seed kept.

    Args:
        dataset: a dataset whose `__getitem__` takes what `split_item` does.
        indices: the dataset indices in the subset.
    """

    def __getitem__(self, item: int | tuple[int, int]) -> Any:
        if isinstance(item, tuple):
            index, seed = split_item(item)
            return self.dataset[(self.indices[index], seed)]
        return self.dataset[self.indices[item]]

    def __getitems__(self, items: list[int | tuple[int, int]]) -> list[Any]:
        # Subset's own batched path indexes `indices` with the pairs themselves.
        return [self[item] for item in items]
