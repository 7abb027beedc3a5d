"""Checkpoints that load with `torch.load(weights_only=True)`: tensors and plain python values only.

A checkpoint never holds pickled objects (modules, dataclasses, numpy arrays), so loading one
cannot run code. Resuming is allowed only when the checkpoint's params fingerprint equals the
current one: a changed learning rate or data set restarts training instead of silently mixing.
"""
from __future__ import annotations

import hashlib
import io
import json
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from doclab.errors import DoclabError
from doclab.io import atomic_write_bytes

LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(DoclabError):
    """A checkpoint file that cannot be used (message is one line naming the file)."""


def fingerprint(config: Any, files: list[Path] = ()) -> str:
    """Stable hash of a plain config (dicts/lists/numbers/strings) and the bytes of some files.

    Args:
        config: everything that changes training (params, world size, ...); JSON-serialisable.
        files: inputs whose content matters too (e.g. the split and annotation files).
    Returns:
        A hex sha256 digest.
    """
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode("utf-8"))
    for path in files:
        digest.update(Path(path).read_bytes())
    return digest.hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` atomically (a crash mid-write leaves the previous file intact).

    Args:
        path: destination file.
        state: tensors, state dicts and plain python values only.
    """
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with `weights_only=True`.

    Args:
        path: checkpoint file.
        map_location: where tensors go.
    Returns:
        The stored dict.
    Raises:
        FileNotFoundError: no such file.
        CheckpointError: the file needs full unpickling, or is not a torch file at all.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; anything else is no checkpoint of ours
        raise CheckpointError(f"{path}: not a torch checkpoint (no zip archive)")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(f"refusing to load {path} (not a weights-only checkpoint)") from None
    except (RuntimeError, EOFError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0]})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, got {type(state).__name__}")
    return state


# The one model-file format of doclab (models/detector.pt, models/classifier/<member>.pt): a weights-only
# torch dict tagged with the format version and the kind of model. Files of the tags used before
# version 1 of this format still load.
MODEL_FORMAT = "doclab.model/1"
LEGACY_FORMATS = {"detector": "doclab.detector/1", "classifier": "doclab-classifier-v1"}


def save_model_file(path: str | Path, kind: str, contents: dict[str, Any]) -> None:
    """Write a model file atomically: `contents` plus {"format": MODEL_FORMAT, "kind": kind}."""
    save_checkpoint(path, {**contents, "format": MODEL_FORMAT, "kind": kind})


def read_model_file(path: str | Path, kind: str, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A model file's dict (weights-only), checked to be a doclab `kind` file.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not weights-only, not a torch file, or not a doclab `kind` model file.
    """
    saved = load_checkpoint(path, map_location=map_location)
    tagged = saved.get("format") == MODEL_FORMAT and saved.get("kind") == kind
    if not tagged and saved.get("format") != LEGACY_FORMATS.get(kind):
        raise CheckpointError(f"{path}: not a doclab {kind} file (expected format {MODEL_FORMAT!r}, kind {kind!r})")
    return saved


def load_weights(model: torch.nn.Module, state_dict: dict[str, Any], path: str | Path, name: str) -> None:
    """`model.load_state_dict(state_dict)` (strict); weights of another architecture are one CheckpointError line."""
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise CheckpointError(f"{path}: its weights do not fit timm model {name!r} ({first.rstrip('.')})") from None


def rng_state(generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every random state training draws from, as tensors and plain values.

    Args:
        generator: the DataLoader's generator (shuffling order and worker seeds), if any.
    Returns:
        {'torch', 'cuda', 'numpy', 'python', 'loader'}; numpy's key array is stored as a tensor.
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": pos,
                  "has_gauss": has_gauss, "gauss": gauss},
        "python": random.getstate(),
        "loader": generator.get_state() if generator is not None else None,
    }


def set_rng_state(state: dict[str, Any], generator: torch.Generator | None = None) -> None:
    """Restore what `rng_state` stored (CUDA states only when the GPU count matches)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy = state["numpy"]
    np.random.set_state((numpy["kind"], numpy["keys"].numpy().astype(np.uint32), numpy["pos"],
                         numpy["has_gauss"], numpy["gauss"]))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if generator is not None and state["loader"] is not None:
        generator.set_state(state["loader"])


def resumable(directory: str | Path, expected_fingerprint: str, verbose: bool = True) -> dict[str, Any] | None:
    """The last checkpoint in `directory` if it was written with the same fingerprint.

    Args:
        directory: the checkpoint folder.
        expected_fingerprint: `fingerprint(...)` of the current run.
        verbose: print why an existing checkpoint is not resumed (off on DDP ranks other than 0).
    Returns:
        The checkpoint dict, or None (no checkpoint, or one from other params: the reason is
        printed and training starts from scratch).
    Raises:
        CheckpointError: the last checkpoint is not weights-only or unreadable.
    """
    path = Path(directory) / LAST
    if not path.is_file():
        return None
    state = load_checkpoint(path)
    if state.get("fingerprint") != expected_fingerprint:
        if verbose:
                print(f"checkpoint {path} was written with other params, data or code: starting from scratch")
        return None
    return state


SHOWN_SKIPS = 6  # tensor names listed by `load_matching`; the rest are counted


def load_matching(model: torch.nn.Module, source: dict[str, torch.Tensor], origin: str | Path,
                  verbose: bool = True) -> list[str]:
    """Copy every tensor of `source` whose name and shape match `model`'s (the `init_from` settings).

    Args:
        model: the freshly built model.
        source: a state dict from an earlier model file.
        origin: that file, for the printed summary.
        verbose: print what was loaded and what kept its fresh initialisation.
    Returns:
        Names of `model`'s tensors that were not loaded (e.g. a head with another class count).
    """
    own = model.state_dict()
    matched = {name: tensor for name, tensor in source.items() if name in own and own[name].shape == tensor.shape}
    model.load_state_dict(matched, strict=False)
    skipped = sorted(set(own) - set(matched))
    if verbose:
        mismatched = sum(name in source for name in skipped)
        more = f" and {len(skipped) - SHOWN_SKIPS} more" if len(skipped) > SHOWN_SKIPS else ""
        kept = f"; kept fresh ({mismatched} of them with other shapes): {', '.join(skipped[:SHOWN_SKIPS])}{more}"
        print(f"init_from {origin}: loaded {len(matched)}/{len(own)} tensors" + (kept if skipped else ""))
    return skipped
