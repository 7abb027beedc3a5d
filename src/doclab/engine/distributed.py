"""DistributedDataParallel when launched by torchrun; a no-op single process otherwise.

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK (plus MASTER_ADDR/PORT); without them training
runs in one process. Only rank 0 logs, writes checkpoints and validates; the other ranks
receive its decisions (early stopping, plateau) through `broadcast`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job.

    Attributes:
        rank: global rank (0 in a single process).
        world_size: number of processes (1 without torchrun).
        local_rank: rank on this machine (its GPU index).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that logs and writes files."""
        return self.rank == 0


COLLECTIVE_TIMEOUT_S = 3600


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group torchrun prepared (nccl on CUDA, gloo on CPU).

    Args:
        device: this process's device (from `choose_device`).
    Returns:
        The DistInfo; world_size 1 and nothing initialised when not under torchrun.
    """
    if not launched_by_torchrun():
        return DistInfo()
    if not dist.is_initialized():
        # Validation runs on rank 0 while the others wait in a collective: NCCL's default 10 minutes is too
        # short for a large val split, so the wait is an hour.
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo", init_method="env://",
                                timeout=timedelta(seconds=COLLECTIVE_TIMEOUT_S))
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def shutdown(info: DistInfo) -> None:
    """Leave the process group (every rank must call it)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP-wrap `model` under torchrun, BatchNorm synchronised across GPUs; return it unchanged otherwise.

    With a few images per GPU, per-rank BatchNorm statistics are noise: SyncBatchNorm pools them.
    The layers are converted in place (same parameter and buffer names), so `model` stays usable.
    SyncBatchNorm runs on GPUs only, so CPU (gloo) ranks keep per-rank BatchNorm.
    """
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    device_ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside a DDP wrapper (the module itself otherwise)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def train_sampler(dataset: Dataset, info: DistInfo, seed: int) -> DistributedSampler | None:
    """A shuffling DistributedSampler (equal, disjoint shards per rank) under torchrun, else None."""
    if not info.enabled:
        return None
    return DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed,
                              drop_last=True)


def broadcast(value: Any, info: DistInfo) -> Any:
    """Rank 0's `value` on every rank (any picklable object; the value itself in one process)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def agree_min(value: int, info: DistInfo, device: torch.device) -> int:
    """The smallest `value` over all ranks (e.g. a probed batch size every rank must share)."""
    if not info.enabled:
        return value
    tensor = torch.tensor([value], device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN)
    return int(tensor.item())
