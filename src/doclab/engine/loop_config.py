"""What `fit` is asked to do: epochs, checkpoints, monitor, accumulation, clipping, EMA, early stopping."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class LoopConfig:
    """How to train.

    Attributes:
        epochs: passes over the training loader.
        checkpoint_dir: holds last.pt (every epoch) and best.pt (best weights so far).
        fingerprint: hash of everything that shapes training; a checkpoint resumes only if equal.
        monitor: validation metric that picks the best epoch, e.g. 'cleval/hmean'.
        mode: 'max' when larger `monitor` is better, 'min' otherwise.
        accumulation: micro-batches per optimizer step.
        grad_clip: max global gradient norm; 0 disables clipping.
        ema_decay: decay of an exponential moving average of the weights (validated and saved
            instead of the raw weights); None disables EMA.
        patience: stop after this many validations without improvement; 0 disables.
        val_every: validate every this many epochs (and always after the last one).
        desc: progress-bar label.
    """

    epochs: int
    checkpoint_dir: Path
    fingerprint: str
    monitor: str
    mode: Literal["max", "min"] = "max"
    accumulation: int = 1
    grad_clip: float = 0.0
    ema_decay: float | None = None
    patience: int = 0
    val_every: int = 1
    desc: str = "train"
