"""`doclab sweep` on several GPUs: a trial that runs out of GPU memory retried once at half the micro-batch
(one queue worker per GPU is checked by test_sweep's end-to-end sweep). On CPU: the GPUs are the user's
CUDA_VISIBLE_DEVICES list, and the out-of-memory error is PyTorch's own, raised in the training step of
a temp copy whose stage script stands in for a GPU that holds 2 images."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from dvc_repo import dvc, env, prefixed, run

from doclab.experiments.sweep.asktell import budget
from doclab.experiments.sweep.experiments import gpu_ids
from doclab.experiments.sweep.oom import OomRetry, oom_retry
from doclab.experiments.sweep.storage import open_storage, retried, shown, storage_url

LOG = """Running stage 'preprocess':
> python stages/preprocess.py
Running stage 'train_detector':
> python stages/train_detector.py --params params.yaml
train_detector: resnet18 (12.1 M params) on cuda, 300 train / 60 val images, batch 16 x 1 accumulation x 1 process(es)
Traceback (most recent call last):
torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.6 GiB
ERROR: failed to reproduce 'train_detector': failed to run: python stages/train_detector.py, exited with 1
"""


def test_an_out_of_memory_log_gives_half_the_micro_batch_of_the_failing_stage(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("batch_size: auto\nclassifier:\n  batch_size: 6\n", encoding="utf-8")
    assert oom_retry(LOG, {}, params) == OomRetry("train_detector", "batch_size", 16, 8)  # the printed size
    classifier = "Running stage 'train_classifier@resnet18':\ntorch.OutOfMemoryError: CUDA out of memory.\n"
    assert oom_retry(classifier, {}, params) == OomRetry("train_classifier@resnet18", "classifier.batch_size", 6, 3)
    assert oom_retry(classifier, {"classifier.batch_size": 1}, params) is None  # nothing left to halve
    assert oom_retry(LOG.replace("CUDA out of memory", "shape mismatch").replace("OutOfMemoryError", "Error"),
                     {}, params) is None


def test_gpus_are_the_visible_devices():
    assert gpu_ids({"CUDA_VISIBLE_DEVICES": "2, 3,GPU-8f1c"}) == ["2", "3", "GPU-8f1c"]
    assert gpu_ids({"CUDA_VISIBLE_DEVICES": ""}) == []


def test_storage_urls_and_messages():
    assert storage_url("postgresql://u:pw@db:5432/s") == "postgresql+psycopg://u:pw@db:5432/s"  # psycopg 3 only
    assert storage_url("sqlite:///sweeps/s/study.db") == "sqlite:///sweeps/s/study.db"
    assert shown("postgresql://u:secret@db/s") == "postgresql://u:***@db/s"


def test_unreachable_storage_is_one_line_without_the_password(tmp_path):
    from doclab.experiments.sweep.trials import SweepError

    with pytest.raises(SweepError) as caught:
        open_storage("postgresql://u:secret@127.0.0.1:1/s", heartbeat=5)
    assert str(caught.value).startswith("--storage postgresql://u:***@127.0.0.1:1/s: cannot open the study database")
    assert "secret" not in str(caught.value) and "\n" not in str(caught.value)


def test_a_re_asked_trial_replaces_the_one_whose_worker_died(tmp_path):
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 's.db'}", heartbeat=None))
    for value in (0.5, None):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        if value is not None:
            study.tell(trial, value)
    dead = study.trials[1]
    study.tell(dead.number, state=optuna.trial.TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback(max_retry=1)(study, study.trials[1])  # what fail_stale_trials calls
    assert budget(study, 3) == (1, 1, 1)  # the failed trial does not count; its copy waits; one is new
    assert retried(study.trials[2]) == [1] and study.trials[2].params == dead.params


# A GPU that holds 2 images: the detector's training step raises PyTorch's out-of-memory error beyond that.
SMALL_GPU = """import torch as _torch
from doclab.pipeline import train_detector as _td

_step_fn = _td._step_fn


def _small_gpu(params, runtime):
    step = _step_fn(params, runtime)

    def guarded(model, batch):
        if len(batch["image"]) > 2:
            raise _torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (a GPU for 2 images)")
        return step(model, batch)
    return guarded


_td._step_fn = _small_gpu
"""


def sweep(repo: Path, space: str, name: str, *options: str, extra_env: dict | None = None) -> str:
    (repo.parent / f"{name}.yaml").write_text(space, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "doclab.cli", "sweep", str(repo.parent / f"{name}.yaml"),
                             "--name", name, "--sampler", "random", "--prune", "none", *options], cwd=repo,
                            env={**env(), **(extra_env or {})}, capture_output=True, text=True,
                            stdin=subprocess.DEVNULL, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def baseline(tiny_baseline):
    """The shared tiny baseline repo, its workspace restored after the test (the stage patches are uncommitted:
    `dvc exp run --queue` takes them along)."""
    repo = tiny_baseline[0]
    run(["git", "checkout", "-q", "--", "."], repo)
    dvc("checkout", "--force", cwd=repo)
    yield repo
    run(["git", "checkout", "-q", "--", "."], repo)
    dvc("checkout", "--force", cwd=repo)


@pytest.mark.slow
def test_a_trial_out_of_gpu_memory_is_retried_at_half_the_micro_batch(baseline):
    prefixed(baseline, "train_detector.py", SMALL_GPU)
    out = sweep(baseline, "batch_size: {choice: [4]}\ndetector.train.effective_batch: {choice: [4]}\n", "oom",
                "--trials", "1", "--jobs", "1", extra_env={"CUDA_VISIBLE_DEVICES": ""})
    assert ("oom-t001: CUDA out of memory in train_detector at micro-batch 4; queued again as oom-t001-b2 with "
            "batch_size=2 (same effective batch, twice the accumulation)") in out, out
    assert "sweep oom: 1 complete, 0 failed" in out and "-S batch_size=2 " in out, out
    summary = json.loads((baseline / "sweeps/oom/trials.json").read_text())["trials"]
    assert [(t["experiment"], t["state"], t["params"]["batch_size"]) for t in summary] == [
        ("oom-t001-b2", "complete", 2)]
    log = dvc("queue", "logs", "oom-t001-b2", cwd=baseline).stdout
    assert "batch 2 x 2 accumulation" in log, log  # the effective batch 4 kept
    shown_params = json.loads(dvc("exp", "show", "--json", cwd=baseline).stdout)
    params = next(rev["data"]["params"]["params.yaml"]["data"] for commit in shown_params
                  for group in commit.get("experiments") or [] for rev in group["revs"] if rev["name"] == "oom-t001-b2")
    assert params["batch_size"] == 2 and params["detector"]["train"]["effective_batch"] == 4
