"""The one timm factory: model names checked with the closest matches, pretrained weights offline-safe.

    model = create_model("resnet18", "classifier.members", "classifier.pretrained", pretrained=False, num_classes=6)
    body = create_model("hrnet_w44", "model", "pretrained", pretrained=True, features_only=True, out_indices=(1, 2, 3, 4))

Both tasks build their networks through `create_model`, so an unknown name, a model without
published weights and an unreachable hub give the same one-line `ConfigError` naming the params key.
"""
from __future__ import annotations

import difflib
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

import timm
from huggingface_hub import constants as hub_constants
from huggingface_hub.errors import HfHubHTTPError
from torch import nn

from doclab.config import ConfigError

# huggingface_hub retries a failing request with backoff for about a minute per file before it
# falls back to its cache; one short TCP connect tells an offline machine apart at once.
HUB_CONNECT_TIMEOUT_S = 3.0


def check_known(name: str, key: str = "model") -> None:
    """Raise ConfigError naming `key` when `name` is no timm model, with the closest names."""
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.5)
    hint = f" (closest: {', '.join(close)})" if close else " (see timm.list_models())"
    raise ConfigError(f"{key}: unknown timm model {name!r}{hint}")


def create_model(name: str, name_key: str, key: str, pretrained: bool = False, offline_hint: str = "",
                 **kwargs: Any) -> nn.Module:
    """`timm.create_model(name, pretrained=..., **kwargs)` with one-line errors.

    Args:
        name: timm model name.
        name_key: the params key that named the model (in the unknown-name error).
        key: the params key that asked for pretrained weights (named in every error).
        pretrained: ImageNet weights from the Hugging Face hub or its local cache.
        offline_hint: an extra way out to name when the weights cannot be had (e.g. a local file key).
        kwargs: passed to timm (features_only, out_indices, num_classes, ...).
    Returns:
        The timm model.
    Raises:
        ConfigError: unknown name, no published weights, or weights neither downloadable nor cached.
    """
    check_known(name, name_key)
    if not pretrained:
        return timm.create_model(name, pretrained=False, **kwargs)
    hub_id = getattr(timm.models.get_pretrained_cfg(name), "hf_hub_id", None)
    if not hub_id:
        raise ConfigError(f"{key}: timm model {name!r} has no pretrained weights on the hub; set `{key}: false`")
    try:
        with hub_offline(not hub_reachable()):
            return timm.create_model(name, pretrained=True, **kwargs)
    except (OSError, HfHubHTTPError) as err:
        raise ConfigError(
            f"{key}: weights for timm model {name!r} could not be downloaded from {hub_constants.ENDPOINT} and are "
            f"not in the hub cache {hub_constants.HF_HUB_CACHE} ({type(err).__name__}); fix: set `{key}: false`, "
            f"or download them where there is network (`hf download {hub_id} model.safetensors`){offline_hint} "
            "into a hub cache and copy it here (HF_HOME / HF_HUB_CACHE; HF_HUB_OFFLINE=1 skips the network)"
        ) from None


def hub_reachable(timeout: float = HUB_CONNECT_TIMEOUT_S) -> bool:
    """Whether a TCP connection to the hub endpoint opens within `timeout` seconds.

    Behind a proxy a direct connection proves nothing, so the hub is then assumed reachable.
    """
    if hub_constants.HF_HUB_OFFLINE:
        return False
    if urllib.request.getproxies().get("https"):
        return True
    url = urlparse(hub_constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def hub_offline(enabled: bool) -> Iterator[None]:
    """Make huggingface_hub cache-only (as HF_HUB_OFFLINE=1 does) for the duration, if `enabled`.

    The setting is read from this module attribute at request time, so this takes effect
    without re-importing; it is restored afterwards.
    """
    saved = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = saved or enabled
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = saved
