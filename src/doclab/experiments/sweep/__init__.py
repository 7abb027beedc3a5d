"""`doclab sweep`: hyper-parameter search where every trial is a real DVC experiment.

Modules (imported on demand):
- `space`: the space file (params.yaml keys -> distributions), validated into typed dataclasses.
- `experiments`: queue trials, start DVC queue workers, read trial states and metrics back.
- `doclab.engine.pruning` (below): the median rule that stops lagging trials, fed by the training loop.
- `settings`: the options of a sweep.
- `storage`: the study's database (SQLite under `sweeps/<name>/`, or a server workers share) and heartbeats.
- `asktell`: one worker's trials: ask and queue, tell, and the out-of-memory retry (`oom`).
- `study`: the driver around them.
- `trials`: the sweep's files, trial names, errors.
"""
