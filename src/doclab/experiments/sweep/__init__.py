"""`doclab sweep`: hyper-parameter search where every trial is a real DVC experiment.

Modules (imported on demand):
- `space`: the space file (params.yaml keys -> distributions), validated into typed dataclasses.
- `experiments`: queue trials, start DVC queue workers, read trial states and metrics back.
- `doclab.engine.pruning` (below): the median rule that stops lagging trials, fed by the training loop.
- `study`: the ask-and-tell driver around an Optuna study stored under `sweeps/<name>/`.
- `trials`: the sweep's files, trial names, errors.
"""
