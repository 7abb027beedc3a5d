"""The cached probability maps of one split, as the post-processing search reads them.

No torch here: the search's worker processes receive it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class MapCache:
    """Probability maps of one split, computed once, and what maps detections back to image pixels.

    Attributes:
        maps: (N, S, S) float16 letterboxed probability maps (an `np.memmap` when spilled to disk).
        keys: (N,) image keys, in map order.
        scales: (N,) processed-image -> map scale factors.
        original_sizes: (N,) (height, width) of the processed images.
        path: the .npy file behind `maps` when spilled, else None.
    """

    maps: np.ndarray
    keys: tuple[str, ...]
    scales: tuple[float, ...]
    original_sizes: tuple[tuple[int, int], ...]
    path: Path | None = None

    def __reduce__(self) -> tuple:
        # A spilled cache travels to worker processes as its file name: they map the same
        # pages instead of receiving a pickled copy of every map.
        if self.path is not None:
            return _open_spilled, (self.path, self.keys, self.scales, self.original_sizes)
        return MapCache, (self.maps, self.keys, self.scales, self.original_sizes, None)


def _open_spilled(path: Path, keys: tuple[str, ...], scales: tuple[float, ...],
                  original_sizes: tuple[tuple[int, int], ...]) -> MapCache:
    return MapCache(np.load(path, mmap_mode="r"), keys, scales, original_sizes, path)
