"""The training engine shared by detection and classification.

    runtime = make_runtime(choose_device(params.device), amp=True, channels_last=True)
    state = fit(model, loader, step, validate, optimizer, schedule, LoopConfig(...), runtime, live_dir)

Modules: `device` (device, AMP, layout), `optim` (optimizers, schedules), `batch` (auto batch
size, accumulation), `checkpoint` (weights-only save/load, resume fingerprint), `distributed`
(torchrun DDP), `tracking` (dvclive), `loop` (the loop itself).
"""
