"""The logits file a `train_classifier@<member>` stage writes and `ensemble` reads.

One `.npz` per member (`models/classifier/<member>.npz`):

- `classes` (C,) str: class names, index = label.
- `names` (M,) str: sub-members: the member itself, or one per snapshot (`resnet18@epoch9`).
- `views` (V,) str: the TTA views computed, in `VIEWS` order.
- for each split in `val`, `test` and, when `classifier.folds > 1`, `oof` (train images,
  out-of-fold predictions): `<split>_ids` (N,) str, `<split>_labels` (N,) int64,
  `<split>_logits` (M, V, N, C) float32.

Every view is computed once at training time, so switching `ensemble.tta` never reruns a model.
Without document-type labels the file holds only a `status` array (see `no_data`).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from doclab.classification.no_data import NO_CLASSIFICATION_DATA, NOT_TRAINED, STATUS_KEY
from doclab.io import atomic_write_bytes

VIEWS = ("identity", "hflip", "vflip", "rot90", "rot180", "rot270")
TTA_VIEWS = {"none": ("identity",), "flips": ("identity", "hflip", "vflip"),
             "rot90": ("identity", "rot90", "rot180", "rot270")}
SPLITS = ("val", "test", "oof")


@dataclass(frozen=True)
class SplitLogits:
    """One split's predictions.

    Attributes:
        ids: (N,) image ids.
        labels: (N,) int64 true class indices.
        logits: (M, V, N, C) float32, sub-member x view x image x class.
    """

    ids: np.ndarray
    labels: np.ndarray
    logits: np.ndarray


@dataclass(frozen=True)
class MemberLogits:
    """A member's logits file in memory (see the module docstring)."""

    classes: tuple[str, ...]
    names: tuple[str, ...]
    views: tuple[str, ...]
    splits: dict[str, SplitLogits]


def save_logits(path: str | Path, member: MemberLogits) -> None:
    """Validate shapes and write `member` atomically as an uncompressed `.npz`.

    Raises:
        ValueError: inconsistent shapes, unknown split or view names.
    """
    arrays = {"classes": np.array(member.classes, dtype=str), "names": np.array(member.names, dtype=str),
              "views": np.array(member.views, dtype=str)}
    for split, part in member.splits.items():
        _check(member, split, part)
        arrays[f"{split}_ids"] = np.asarray(part.ids, dtype=str)
        arrays[f"{split}_labels"] = np.asarray(part.labels, dtype=np.int64)
        arrays[f"{split}_logits"] = np.asarray(part.logits, dtype=np.float32)
    atomic_write_bytes(path, _npz_bytes(arrays))


def save_no_data_logits(path: str | Path) -> None:
    """The logits file of a data set without labels: only `status` = "no classification data"."""
    atomic_write_bytes(path, _npz_bytes({STATUS_KEY: np.array(NO_CLASSIFICATION_DATA)}))


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """An uncompressed `.npz` that `np.load` reads, with fixed zip timestamps: `np.savez` stamps the
    current time into every entry, so equal logits would hash differently and DVC would see a change."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(entry, "w", force_zip64=True) as stream:
                np.lib.format.write_array(stream, np.asanyarray(array), allow_pickle=False)
    return buffer.getvalue()


def load_logits(path: str | Path) -> MemberLogits:
    """Read a member's logits file.

    Raises:
        FileNotFoundError: no such file.
        ValueError: one line naming the file when it is not a valid logits file, or the
            "no classification data" marker.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a classifier logits file ({exc})") from None
    if STATUS_KEY in arrays:
        raise ValueError(f"{path}: {arrays[STATUS_KEY]}: {NOT_TRAINED}")
    try:
        member = MemberLogits(
            classes=tuple(str(c) for c in arrays["classes"]), names=tuple(str(n) for n in arrays["names"]),
            views=tuple(str(v) for v in arrays["views"]),
            splits={split: SplitLogits(arrays[f"{split}_ids"], arrays[f"{split}_labels"], arrays[f"{split}_logits"])
                    for split in SPLITS if f"{split}_logits" in arrays})
        for split, part in member.splits.items():
            _check(member, split, part)
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a classifier logits file ({exc})") from None
    return member


def _check(member: MemberLogits, split: str, part: SplitLogits) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}, expected one of {SPLITS}")
    unknown = [v for v in member.views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown TTA view {unknown[0]!r}, expected some of {VIEWS}")
    expected = (len(member.names), len(member.views), len(part.ids), len(member.classes))
    if np.shape(part.logits) != expected or np.shape(part.labels) != (len(part.ids),):
        raise ValueError(f"{split}: logits {np.shape(part.logits)} / labels {np.shape(part.labels)} do not match "
                         f"(sub-members, views, images, classes) = {expected}")
