"""Optimizers and learning-rate schedules, stepped once per optimizer step (or per epoch for plateau)."""
from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn
from torch.optim import lr_scheduler

OPTIMIZERS = ("adamw", "adam", "sgd")
SCHEDULERS = ("cosine", "step", "exponential", "plateau", "warmup_cosine", "warmup_linear", "cosine_restarts")
# step: lr x STEP_GAMMA at 1/3 and 2/3 of training; exponential: lr ends at FINAL_FRACTION of its start.
STEP_GAMMA = 0.1
FINAL_FRACTION = 0.01
RESTART_CYCLES = 3  # cosine_restarts: equal cycles over the run
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Decay weights of convs/linears only: decaying norm scales and biases only hurts (Goyal et al. 2017)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, name: str, lr: float, weight_decay: float = 0.0,
                    momentum: float = 0.9) -> torch.optim.Optimizer:
    """Args:
        model: its trainable parameters are optimised.
        name: 'adamw', 'adam' or 'sgd' (Nesterov momentum).
        lr: peak learning rate.
        weight_decay: L2 / decoupled decay on conv and linear weights.
        momentum: SGD momentum (unused by Adam/AdamW).
    Returns:
        The optimizer.
    Raises:
        ValueError: unknown name.
    """
    groups = _param_groups(model, weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=momentum > 0)
    raise ValueError(f"optimizer: got {name!r}, expected one of {', '.join(OPTIMIZERS)}")


def _warmup_then(decay: str, warmup_steps: int, total_steps: int):
    """LambdaLR factor: linear 0 -> 1 over warmup_steps, then cosine or linear decay to 0 at total_steps."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return 0.5 * (1.0 + math.cos(math.pi * progress)) if decay == "cosine" else 1.0 - progress
    return factor


class Schedule:
    """One learning-rate schedule behind two calls the loop makes: after each optimizer step, after each epoch.

    Args:
        optimizer: the optimizer whose lr is driven.
        name: one of SCHEDULERS.
        total_steps: optimizer steps in the whole run (epochs x steps per epoch).
        steps_per_epoch: optimizer steps per epoch.
        warmup_steps: linear warm-up length (warmup_* schedules only).
        mode: 'max' or 'min', the direction of the monitored metric (plateau only).
    Raises:
        ValueError: unknown name.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, name: str, total_steps: int, steps_per_epoch: int,
                 warmup_steps: int = 0, mode: str = "max"):
        self.name = name
        total_steps = max(1, total_steps)
        third = max(1, total_steps // 3)
        if name == "cosine":
            self.scheduler = lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
        elif name == "step":
            self.scheduler = lr_scheduler.StepLR(optimizer, step_size=third, gamma=STEP_GAMMA)
        elif name == "exponential":
            self.scheduler = lr_scheduler.ExponentialLR(optimizer, gamma=FINAL_FRACTION ** (1 / total_steps))
        elif name == "plateau":
            self.scheduler = lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=PLATEAU_FACTOR,
                                                            patience=PLATEAU_PATIENCE)
        elif name in ("warmup_cosine", "warmup_linear"):
            decay = name.removeprefix("warmup_")
            self.scheduler = lr_scheduler.LambdaLR(optimizer, _warmup_then(decay, warmup_steps, total_steps))
        elif name == "cosine_restarts":
            cycle = max(1, math.ceil(total_steps / RESTART_CYCLES / steps_per_epoch)) * steps_per_epoch
            self.scheduler = lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=cycle)
        else:
            raise ValueError(f"scheduler: got {name!r}, expected one of {', '.join(SCHEDULERS)}")

    def after_step(self) -> None:
        """Advance per-step schedules by one optimizer step."""
        if self.name != "plateau":
            self.scheduler.step()

    def after_epoch(self, metric: float | None) -> None:
        """Feed plateau the monitored validation metric (None: not validated this epoch)."""
        if self.name == "plateau" and metric is not None:
            self.scheduler.step(metric)

    def lr(self) -> float:
        """Current learning rate of the first parameter group."""
        return float(self.scheduler.optimizer.param_groups[0]["lr"])

    def state_dict(self) -> dict:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.scheduler.load_state_dict(state)


def trainable(parameters: Iterable[torch.Tensor]) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in parameters if p.requires_grad)
