"""The one training loop both tasks use: epochs of (accumulated) optimizer steps, then validation.

Per epoch: train over the loader (gradient accumulation, clipping, AMP loss scaling, EMA), validate
on rank 0 when due, keep the best weights by a named metric, checkpoint, log to dvclive, stop early
when the metric stops improving. A rerun with the same fingerprint resumes from the last checkpoint
(model, optimizer, schedule, scaler, EMA, RNG states, epoch) and ends with the same weights as an
uninterrupted run.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import Tensor, nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from doclab.engine.checkpoint import BEST, LAST, load_checkpoint, resumable, rng_state, save_checkpoint, set_rng_state
from doclab.engine.device import Runtime, memory_record, reset_peak_memory
from doclab.engine.distributed import DistInfo, broadcast, unwrap
from doclab.engine.loop_config import LoopConfig
from doclab.engine.optim import Schedule
from doclab.engine.tracking import log_epoch, log_final, open_live

StepFn = Callable[[nn.Module, Any], tuple[dict[str, Tensor], int]]
ValidateFn = Callable[[nn.Module], dict[str, float]]
EpochHook = Callable[[int, nn.Module], None]


POSTFIX_EVERY = 10  # progress-bar refreshes (one host sync each) per this many micro-batches


@dataclass
class TrainState:
    """Progress that round-trips through checkpoints (plain values only).

    Attributes:
        epoch: epochs completed.
        global_step: optimizer steps taken.
        best_epoch: 1-based epoch of the best validation so far (0: none yet).
        best_value: its `monitor` value.
        best_metrics: all its validation metrics.
        bad_validations: validations since the last improvement.
        finished: all epochs ran or early stopping fired.
        history: per completed epoch, the record logged to dvclive.
    """

    epoch: int = 0
    global_step: int = 0
    best_epoch: int = 0
    best_value: float | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    bad_validations: int = 0
    finished: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


@dataclass
class _Parts:
    """The loop's moving pieces, so helpers take one argument instead of eight."""

    model: nn.Module
    loader: DataLoader
    step: StepFn
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    scaler: torch.amp.GradScaler
    ema: ModelEmaV3 | None
    runtime: Runtime
    info: DistInfo
    on_epoch_start: EpochHook | None = None


def _improved(value: float | None, best: float | None, mode: str) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def _optimizer_step(parts: _Parts, config: LoopConfig, state: TrainState) -> None:
    """Unscale, clip, step, then advance EMA and the schedule by one optimizer step."""
    if config.grad_clip > 0:
        parts.scaler.unscale_(parts.optimizer)
        nn.utils.clip_grad_norm_(parts.model.parameters(), config.grad_clip)
    scale = parts.scaler.get_scale() if parts.scaler.is_enabled() else None
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    if scale is not None and parts.scaler.get_scale() < scale:
        return  # fp16: inf/NaN gradients, the scaler skipped the step; EMA and schedule must not advance
    state.global_step += 1
    if parts.ema is not None:
        parts.ema.update(unwrap(parts.model), step=state.global_step)
    parts.schedule.after_step()


def _train_epoch(parts: _Parts, config: LoopConfig, state: TrainState) -> tuple[dict[str, float], int]:
    """One pass over the loader.

    Micro-batch i belongs to the optimizer step i // accumulation; its loss is divided by the
    size of that group (smaller for the last one), so a step's gradient is the mean over the
    group's batches: the same as one big batch when batches are equal-sized.

    Returns:
        (image-weighted mean of every loss term on this rank, number of images seen).
    """
    parts.model.train()
    if parts.on_epoch_start is not None:
        # After train(): the hook may put frozen layers back in eval mode. It also runs for the
        # first epoch after a resume, so whatever it sets depends on the epoch alone.
        parts.on_epoch_start(state.epoch, unwrap(parts.model))
    batches, accumulation = len(parts.loader), config.accumulation
    sums: dict[str, torch.Tensor] = {}
    images = 0
    bar = tqdm(parts.loader, desc=f"{config.desc} {state.epoch + 1}/{config.epochs}", unit="batch",
               disable=not parts.info.is_main, dynamic_ncols=True)
    for index, batch in enumerate(bar):
        group_start = index - index % accumulation
        group_size = min(accumulation, batches - group_start)
        last_in_group = index - group_start == group_size - 1
        # DDP all-reduces gradients on every backward; only the last micro-batch of a step needs it.
        skip_sync = parts.info.enabled and not last_in_group
        with parts.model.no_sync() if skip_sync else contextlib.nullcontext():
            terms, count = parts.step(parts.model, batch)
            parts.scaler.scale(terms["loss"] / group_size).backward()
        if last_in_group:
            _optimizer_step(parts, config, state)
        images += count
        # Summed on the device in float64 (the same arithmetic as Python floats): reading a value
        # would stall a GPU on every micro-batch, so the bar reads it every POSTFIX_EVERY batches.
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + value.detach().double() * count
        if index % POSTFIX_EVERY == 0 or index == batches - 1:
            bar.set_postfix(loss=f"{float(sums['loss']) / images:.4f}", lr=f"{parts.schedule.lr():.2e}")
    return {name: float(total) / max(images, 1) for name, total in sums.items()}, images


def _validate(parts: _Parts, validate: ValidateFn) -> dict[str, float]:
    """Run `validate` on the EMA (or raw) weights in eval mode, then return to training mode."""
    module = parts.ema.module if parts.ema is not None else unwrap(parts.model)
    module.eval()
    try:
        with torch.no_grad():
            return {name: float(value) for name, value in validate(module).items()}
    finally:
        module.train()


def _checkpoint(parts: _Parts, config: LoopConfig, state: TrainState) -> dict[str, Any]:
    return {
        "fingerprint": config.fingerprint,
        "model": unwrap(parts.model).state_dict(),
        "optimizer": parts.optimizer.state_dict(),
        "schedule": parts.schedule.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "ema": parts.ema.state_dict() if parts.ema is not None else None,
        "rng": rng_state(parts.loader.generator),
        "state": asdict(state),
    }


def _restore(parts: _Parts, checkpoint: dict[str, Any]) -> TrainState:
    unwrap(parts.model).load_state_dict(checkpoint["model"])
    parts.optimizer.load_state_dict(checkpoint["optimizer"])
    parts.schedule.load_state_dict(checkpoint["schedule"])
    if checkpoint["scaler"] and parts.scaler.is_enabled():  # a bf16 or CPU run saved a disabled scaler as {}
        parts.scaler.load_state_dict(checkpoint["scaler"])
    if parts.ema is not None and checkpoint["ema"] is not None:
        parts.ema.load_state_dict(checkpoint["ema"])
    set_rng_state(checkpoint["rng"], parts.loader.generator)
    return TrainState(**checkpoint["state"])


def _run_epoch(parts: _Parts, config: LoopConfig, state: TrainState, validate: ValidateFn) -> dict[str, float]:
    """Train one epoch, validate when due, update best/patience; returns the epoch's dvclive record."""
    sampler = parts.loader.sampler
    if hasattr(sampler, "set_epoch"):
        sampler.set_epoch(state.epoch)
    reset_peak_memory(parts.runtime.device)
    started = time.perf_counter()
    terms, images = _train_epoch(parts, config, state)
    seconds = time.perf_counter() - started
    record = {f"train/{name}": value for name, value in terms.items()}
    record.update({"train/lr": parts.schedule.lr(), "perf/epoch_time_s": seconds,
                   "perf/images_per_s": images * parts.info.world_size / max(seconds, 1e-9),
                   **memory_record(parts.runtime.device)})
    epoch = state.epoch + 1
    metrics = None
    if epoch % config.val_every == 0 or epoch == config.epochs:
        if parts.info.is_main:
            started = time.perf_counter()
            metrics = _validate(parts, validate)
            record["perf/val_time_s"] = time.perf_counter() - started
        metrics = broadcast(metrics, parts.info)
        record.update({f"val/{name}": value for name, value in metrics.items()})
    value = metrics.get(config.monitor) if metrics is not None else None
    if metrics is not None and config.monitor not in metrics:
        raise KeyError(f"monitor: validation returned no {config.monitor!r} (got {', '.join(metrics)})")
    if _improved(value, state.best_value, config.mode):
        state.best_epoch, state.best_value, state.best_metrics = epoch, value, metrics
        state.bad_validations = 0
    elif metrics is not None:
        state.bad_validations += 1
    parts.schedule.after_epoch(value)
    state.epoch = epoch
    state.history.append(record)
    stop = config.patience > 0 and state.bad_validations >= config.patience
    if value is not None and os.environ.get("DOCLAB_PRUNE_FILE"):  # a `doclab sweep` trial
        stop = _pruned(epoch, value, config.mode, parts.info) or stop
    state.finished = stop or epoch >= config.epochs
    return record


def _pruned(epoch: int, value: float, mode: str, info: DistInfo) -> bool:
    """Record the validation value for the sweep and ask its pruning rule (rank 0 decides for all ranks)."""
    from doclab.engine.pruning import report_and_decide  # imported only inside sweep trials

    return bool(broadcast(report_and_decide(epoch, value, mode) if info.is_main else None, info))


def _announce(state: TrainState, config: LoopConfig, record: dict[str, float]) -> None:
    shown = f"{config.monitor} {record[f'val/{config.monitor}']:.4f}, " if f"val/{config.monitor}" in record else ""
    best = f"best {state.best_value:.4f} @ {state.best_epoch}" if state.best_value is not None else "no validation yet"
    tqdm.write(f"epoch {state.epoch}/{config.epochs}: loss {record['train/loss']:.4f}, {shown}{best}, "
               f"{record['perf/epoch_time_s']:.1f} s")


def fit(model: nn.Module, loader: DataLoader, step: StepFn, validate: ValidateFn,
        optimizer: torch.optim.Optimizer, schedule: Schedule, config: LoopConfig, runtime: Runtime,
        live_dir: str | Path, info: DistInfo = DistInfo(), on_epoch_start: EpochHook | None = None) -> TrainState:
    """Train `model`, resuming from `config.checkpoint_dir` when its fingerprint matches.

    Args:
        model: on the device, in training mode; DDP-wrapped under torchrun.
        loader: training batches; its `generator` (if any) is checkpointed with the other RNGs.
        step: `step(model, batch) -> (terms, images)`: forward (under `runtime.autocast()`) and
            loss for one micro-batch; `terms['loss']` is the scalar fp32 tensor to minimise, the
            other terms are logged; `images` is the batch size.
        validate: `validate(module) -> metrics` on the module to evaluate (eval mode, no_grad);
            called on rank 0 only.
        optimizer: over `model`'s parameters.
        schedule: the learning-rate schedule (stepped per optimizer step and per epoch).
        config: epochs, accumulation, clipping, EMA, checkpoints, monitor, patience.
        runtime: device, AMP dtype (fp16 gets a GradScaler), channels_last.
        live_dir: dvclive folder (written by rank 0 only).
        info: this process's DDP rank and world size.
        on_epoch_start: optional `hook(epoch, module)` called before each training epoch (0-based
            count of completed epochs, the unwrapped model already in training mode), e.g. to
            freeze or unfreeze layers; it must depend on `epoch` only, as a resumed run calls it again.
    Returns:
        The final TrainState; the best weights are in `checkpoint_dir/best.pt` under 'model'.
    """
    ema = None
    if config.ema_decay is not None:
        ema = ModelEmaV3(unwrap(model), decay=config.ema_decay, use_warmup=True)
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.needs_scaler)
    parts = _Parts(model, loader, step, optimizer, schedule, scaler, ema, runtime, info, on_epoch_start)
    checkpoint = resumable(config.checkpoint_dir, config.fingerprint, verbose=info.is_main)
    state = _restore(parts, checkpoint) if checkpoint is not None else TrainState()
    if info.is_main and checkpoint is not None:
        print(f"resuming from {Path(config.checkpoint_dir) / LAST} after epoch {state.epoch}")
    elif info.is_main:
        # A best.pt left by a run with other params must never stand in for this run's best.
        (Path(config.checkpoint_dir) / BEST).unlink(missing_ok=True)
    live = open_live(live_dir, state.history, checkpoint is not None) if info.is_main else None
    while not state.finished and state.epoch < config.epochs:
        best_before = state.best_epoch
        record = _run_epoch(parts, config, state, validate)
        if info.is_main:
            if state.best_epoch != best_before:
                save_checkpoint(Path(config.checkpoint_dir) / BEST, {
                    "fingerprint": config.fingerprint, "epoch": state.best_epoch,
                    "model": _validated_weights(parts), "metrics": state.best_metrics})
            save_checkpoint(Path(config.checkpoint_dir) / LAST, _checkpoint(parts, config, state))
            log_epoch(live, record)
            _announce(state, config, record)
    if live is not None:
        best = {f"best/{name}": value for name, value in state.best_metrics.items()}
        log_final(live, {**best, "best/epoch": state.best_epoch})
    return state


def _validated_weights(parts: _Parts) -> dict[str, Tensor]:
    """State dict of the weights validation just scored (EMA when enabled)."""
    return (parts.ema.module if parts.ema is not None else unwrap(parts.model)).state_dict()


def best_weights(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The best.pt written by `fit`: {'model': state dict, 'epoch', 'metrics', 'fingerprint'}."""
    return load_checkpoint(Path(checkpoint_dir) / BEST)
