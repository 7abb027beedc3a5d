"""Where and in what precision training runs: device choice, AMP dtype, tensor placement."""
from __future__ import annotations

import contextlib
import os
import resource
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from doclab.config import ConfigError


def choose_device(requested: str, local_rank: int | None = None) -> torch.device:
    """Resolve the `device` param.

    Args:
        requested: 'auto' (CUDA when present, else CPU), 'cpu' or 'cuda'.
        local_rank: this process's GPU index under torchrun; defaults to $LOCAL_RANK or 0.
    Returns:
        The torch device.
    Raises:
        ConfigError: 'cuda' requested on a machine without a usable CUDA GPU.
    """
    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: got 'cuda', but no CUDA GPU is available here (use 'auto' or 'cpu')")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    index = local_rank if local_rank is not None else int(os.environ.get("LOCAL_RANK", 0))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


@dataclass(frozen=True)
class Runtime:
    """How tensors and autocast are set up on the chosen device.

    Attributes:
        device: where the model and batches live.
        amp_dtype: autocast dtype (bf16 or fp16), or None for full fp32 (always None on CPU).
        channels_last: store 4-D image tensors and the model NHWC (faster convolutions on
            tensor cores; a no-op for correctness).
    """

    device: torch.device
    amp_dtype: torch.dtype | None = None
    channels_last: bool = False

    @property
    def needs_scaler(self) -> bool:
        """fp16 gradients underflow without loss scaling; bf16 has fp32's exponent range."""
        return self.amp_dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for forward passes (a null context without AMP)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def images(self, x: torch.Tensor) -> torch.Tensor:
        """Move an image batch (B, C, H, W) to the device, NHWC in memory when channels_last."""
        memory_format = torch.channels_last if self.channels_last and x.dim() == 4 else torch.contiguous_format
        return x.to(self.device, non_blocking=True, memory_format=memory_format)

    def prepare_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """Move a model to the device (NHWC weights when channels_last); returns the same module."""
        model.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return model


def make_runtime(device: torch.device, amp: bool, channels_last: bool) -> Runtime:
    """Pick precision and layout for `device`.

    Args:
        device: from `choose_device`.
        amp: the `amp` param; only honoured on CUDA: CPU training stays fp32 (CPU bf16 is only
            fast on CPUs with bf16 instructions, and much slower elsewhere).
        channels_last: the `channels_last` param, honoured on CPU too (oneDNN convolutions are
            NHWC-native: 10-35% faster training measured on an AVX-512 CPU).
    Returns:
        The Runtime: bf16 where the GPU supports it, else fp16 (with a GradScaler in the loop).
    """
    if device.type != "cuda":
        return Runtime(device, None, channels_last)
    # Every batch has the same shape: let cuDNN time its kernels once and keep the fastest.
    torch.backends.cudnn.benchmark = True
    dtype = None
    if amp:
        # Native bf16 only: with emulation (the default) torch says yes on any GPU that can hold a bf16
        # tensor, but cuDNN has no bf16 convolutions below sm_80 (T4, V100): those get fp16 + GradScaler.
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    return Runtime(device, dtype, channels_last)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory in MiB: allocated CUDA memory on a GPU, else the process's max resident set."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is KiB on Linux and bytes on macOS.
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def reset_peak_memory(device: torch.device) -> None:
    """Start a new CUDA peak (per epoch, so the auto-batch probe and earlier epochs do not count); no-op on CPU."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def memory_record(device: torch.device) -> dict[str, float]:
    """`perf/peak_memory_mb`, plus `perf/peak_reserved_mb` (what the caching allocator holds) on CUDA."""
    record = {"perf/peak_memory_mb": peak_memory_mb(device)}
    if device.type == "cuda":
        record["perf/peak_reserved_mb"] = torch.cuda.max_memory_reserved(device) / 2**20
    return record


@contextlib.contextmanager
def deterministic(enabled: bool) -> Iterator[None]:
    """Make torch ops deterministic inside the block (restored afterwards).

    warn_only: a few CPU kernels have no deterministic variant; they warn instead of failing.
    """
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)
