"""Sample loading both tasks share: image normalisation, seeded augmentation, seeded DataLoader workers."""
from __future__ import annotations

import random

import albumentations as A
import cv2
import numpy as np
import torch

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalise(image: np.ndarray) -> torch.Tensor:
    """(S, S, 3) uint8 RGB -> (3, S, S) float32, ImageNet mean/std."""
    # One fused multiply per channel plane straight into CHW layout: 7x faster than
    # float-convert, subtract, divide and transpose on the HWC array.
    out = np.empty((3, *image.shape[:2]), np.float32)
    for channel, plane in enumerate(cv2.split(image)):
        np.multiply(plane, np.float32(1 / (255 * IMAGENET_STD[channel])), out=out[channel], dtype=np.float32)
        out[channel] -= IMAGENET_MEAN[channel] / IMAGENET_STD[channel]
    return torch.from_numpy(out)


def reseed(transform: A.Compose, seed: int) -> None:
    """Make the next call of `transform` a function of `seed`.

    One shared generator pair, not `Compose.set_random_seed`: that seeds every child
    transform identically, so e.g. rotate_p and affine_p would always fire together.
    """
    transform.set_random_state(np.random.default_rng(seed), random.Random(seed))


def seed_worker(worker_id: int) -> None:
    """DataLoader `worker_init_fn`: no OpenCV threads per worker, numpy/random from torch's seed.

    torch already seeds each worker with base_seed + worker_id (base_seed from the loader's
    generator); numpy and random are derived from it so they are reproducible too.
    """
    cv2.setNumThreads(0)  # workers already run in parallel; nested pools oversubscribe the CPUs
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
