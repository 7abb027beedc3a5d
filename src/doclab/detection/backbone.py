"""timm backbone for DBNet: four feature levels chosen from timm's `feature_info`.

Channels and strides are read from timm (never hand-written, never found by a dummy forward),
so any timm model with `features_only` support and four distinct strides plugs in by name.
"""
from __future__ import annotations

import pickle
from pathlib import Path

import timm
import torch
from torch import Tensor, nn

from doclab.config import ConfigError
from doclab.engine.timm_models import check_known, create_model

NUM_LEVELS = 4


class Backbone(nn.Module):
    """A timm `features_only` model returning four levels of strictly increasing stride.

    Attributes:
        name: the timm model name.
        channels: channels of the four levels, from `feature_info`.
        strides: strides (timm "reduction") of the four levels, strictly increasing.
    """

    def __init__(self, body: nn.Module, name: str):
        """Args:
        body: `timm.create_model(name, features_only=True, out_indices=...)` with four levels.
        name: the timm model name (for messages).
        """
        super().__init__()
        self.body = body
        self.name = name
        self.channels: tuple[int, ...] = tuple(body.feature_info.channels())
        self.strides: tuple[int, ...] = tuple(body.feature_info.reduction())
        if len(self.strides) != NUM_LEVELS or any(a >= b for a, b in zip(self.strides, self.strides[1:])):
            raise ValueError(f"timm model {name!r}: expected {NUM_LEVELS} increasing strides, got {self.strides}")
        # Transformer-style models (e.g. swin) emit channels-last features; the decoders want NCHW.
        self.channels_last = getattr(body, "output_fmt", "NCHW") == "NHWC"

    def forward(self, x: Tensor) -> list[Tensor]:
        """Args:
            x: images (B, 3, H, W).

        Returns:
            Four maps; level i is (B, channels[i], ~H/strides[i], ~W/strides[i]).
        """
        features = list(self.body(x))
        if self.channels_last:
            features = [f.permute(0, 3, 1, 2) for f in features]
        return features


def select_levels(feature_info: list[dict]) -> tuple[int, ...]:
    """Choose the four deepest levels whose strides strictly increase.

    Walks from the deepest level towards the input and keeps a level only when its stride is
    smaller than the last one kept, so among levels sharing a stride the deepest (most processed)
    one wins, and shallow extras (e.g. the stride-2 stem of resnet/hrnet) are dropped.

    Args:
        feature_info: `model.feature_info.get_dicts()`: per level a dict with 'reduction' and
            optionally 'index' (timm's `out_indices` value; the list position when absent).

    Returns:
        The chosen `out_indices`, shallow to deep.

    Raises:
        ValueError: fewer than four distinct strides.
    """
    chosen: list[int] = []
    last_stride = None
    for position in range(len(feature_info) - 1, -1, -1):
        info = feature_info[position]
        if last_stride is None or info["reduction"] < last_stride:
            chosen.append(info.get("index", position))
            last_stride = info["reduction"]
        if len(chosen) == NUM_LEVELS:
            return tuple(reversed(chosen))
    strides = [info["reduction"] for info in feature_info]
    raise ValueError(f"needs {NUM_LEVELS} feature levels of distinct stride, feature_info has strides {strides}")


def create_backbone(name: str, pretrained: bool = False, weights_path: str = "") -> Backbone:
    """Build the timm feature extractor for DBNet.

    Args:
        name: timm model name (e.g. 'resnet18', 'hrnet_w44', 'convnext_tiny.fb_in1k').
        pretrained: download ImageNet weights from the Hugging Face hub (or use its cache).
        weights_path: local timm state dict (.safetensors/.pth/.pt); when set it is used
            instead of the hub, so it works offline.

    Returns:
        A `Backbone` with four levels.

    Raises:
        ConfigError: unknown name, or pretrained weights that cannot be had (see `create_model`).
        ValueError: fewer than four strides, or weights that do not fit the model.
        FileNotFoundError: `weights_path` does not exist.
    """
    levels = feature_levels(name)
    body = create_model(name, "model", "pretrained", pretrained and not weights_path,
                        offline_hint=" and set `detector.backbone_weights: path/to/model.safetensors`",
                        features_only=True, out_indices=levels)
    if weights_path:
        load_backbone_weights(body, weights_path, name)
    return Backbone(body, name)


def feature_levels(name: str) -> tuple[int, ...]:
    """The four `out_indices` of timm model `name` (ConfigError naming `model`: unknown, or < 4 strides)."""
    check_known(name)
    # On the meta device no weights are allocated or initialised: reading feature_info is ~free.
    with torch.device("meta"):
        probe = timm.create_model(name, features_only=True)
    try:
        return select_levels(probe.feature_info.get_dicts())
    except ValueError as err:
        raise ConfigError(f"model: timm model {name!r} {err}") from None


def load_backbone_weights(body: nn.Module, path: str, name: str) -> None:
    """Load a timm state dict (classifier or headless) into a `features_only` model.

    timm's feature wrappers flatten top-level modules ('stem.0' becomes 'stem_0'), so keys are
    matched with '.' and '_' treated alike. Every weight of `body` must be found with its shape:
    a checkpoint of another model fails loudly instead of leaving layers randomly initialised.

    Args:
        body: the timm `features_only` model, modified in place.
        path: .safetensors, or .pth/.pt (loaded with `weights_only=True`; 'state_dict'/'model'
            wrappers and DDP 'module.' prefixes are accepted).
        name: the timm model name (for messages).

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file lacks weights of `body` or has them in another shape.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"detector.backbone_weights: no file at {path!r} (expected a .safetensors/.pth state dict of {name!r})"
        )
    try:
        state = timm.models.load_state_dict(path, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as exc:
        raise ConfigError(f"detector.backbone_weights: {path!r} is not a weights-only state dict "
                          f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    by_key = {_normalise(key): value for key, value in state.items() if isinstance(value, Tensor)}
    found, problems = {}, []
    for key, own in body.state_dict().items():
        value = by_key.get(_normalise(key))
        if value is None:
            if not key.endswith("num_batches_tracked"):
                problems.append(f"missing {key}")
        elif value.shape != own.shape:
            problems.append(f"{key} has shape {tuple(value.shape)}, model has {tuple(own.shape)}")
        else:
            found[key] = value
    if problems:
        raise ValueError(
            f"detector.backbone_weights: {path!r} does not fit timm model {name!r} "
            f"({len(problems)} problems, first: {problems[0]}); is it a {name} checkpoint?"
        )
    body.load_state_dict(found, strict=False)


def _normalise(key: str) -> str:
    return key.replace(".", "_")
