"""`doclab sweep`: the space file, the median pruning rule and its training-loop hook, trial
read-back, the report's sweep column, and (slow) a real 2-trial sweep over DVC's queue on two "GPUs"."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from dvc_repo import dvc, prefixed, run
from test_engine import Validator, regression_data, train_tiny

from doclab.cli import main
from doclab.config import ConfigError
from doclab.engine.pruning import PRUNE_FILE_ENV, STAGE_ENV, TRIAL_ENV, MedianRule, read_intermediate, should_stop
from doclab.experiments.report_table import ExperimentRow, render_table
from doclab.experiments.sweep.experiments import TrialRun, metric_value
from doclab.experiments.sweep.space import load_space, override
from doclab.experiments.sweep.storage import open_storage
from doclab.experiments.sweep.asktell import EXPERIMENT_ATTR, Worker, settle
from doclab.experiments.sweep.settings import SweepSettings
from doclab.experiments.sweep.trials import sweep_of, trial_name

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
CHEAP_SPACE = "postprocess.box_thresh: {uniform: [0.2, 0.5]}\ndetector.train.lr: {log_uniform: [1.0e-3, 1.0e-2]}\n"


def write_space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_sample_space_file_is_valid():
    space = load_space(REPO / "sweeps/detector.yaml", PARAMS)
    kinds = {dim.key: dim.kind for dim in space.dimensions}
    assert kinds["model"] == "choice" and kinds["detector.train.lr"] == "log_uniform"


def test_space_kinds_are_parsed(tmp_path):
    space = load_space(write_space(tmp_path, CHEAP_SPACE + "detector.decoder_channels: {int: [32, 128], step: 32}\n"
                                   "detector.decoder: {choice: [fpn, unet]}\n"), PARAMS)
    lr = space.dimensions[1]
    assert (lr.key, lr.kind, lr.low, lr.high) == ("detector.train.lr", "log_uniform", 1.0e-3, 1.0e-2)
    assert space.dimensions[2].step == 32 and space.dimensions[3].choices == ("fpn", "unet")


@pytest.mark.parametrize("text, message", [
    ("detector.train.lrr: {uniform: [0.1, 0.2]}\n",
     "detector.train.lrr: not a key of params.yaml, did you mean 'detector.train.lr'?"),
    ("postprocess.box_thresh: {uniform: [0.5, 0.2]}\n", "postprocess.box_thresh: uniform needs low < high"),
    ("postprocess.box_thresh: {uniform: [0.2, 0.5], choice: [0.3]}\n", "postprocess.box_thresh: expected one of"),
    ("detector.train.lr: {log_uniform: [0.0, 0.1]}\n", "detector.train.lr: log_uniform needs low > 0"),
    ("detector.train.lr: {log_uniform: ['1e-4', 1.0e-2]}\n", "write 1.0e-3"),
    ("detector.decoder_channels: {int: [32.0, 64]}\n", "int needs integer bounds"),
    ("postprocess.box_thresh: {uniform: [0.2, 1.5]}\n", "postprocess.box_thresh: 1.5 is not a valid value"),
    ("detector.decoder: {choice: [fpn, fnp]}\n", "detector.decoder: 'fnp' is not a valid value"),
    ("detector: {choice: [1]}\n", "detector: a section of params.yaml, name one of its keys"),
    ("classifier.members: {choice: [resnet18]}\n", "classifier.members: 'resnet18' is not a valid value"),
    ("- a\n", "expected a mapping of params.yaml keys"),
])
def test_bad_space_is_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        load_space(write_space(tmp_path, text), PARAMS)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(tmp_path / "space.yaml"))


def test_overrides_are_hydra_values():
    assert override("postprocess.polygon", True) == "postprocess.polygon=true"
    assert override("detector.train.lr", 0.0012345678901) == "detector.train.lr=0.0012345678901"
    assert override("model", "resnet18") == "model=resnet18"
    assert override("data.split.file", "null") == "data.split.file='null'"
    assert override("x", "it's 1") == "x='it\\'s 1'"


def test_median_rule_on_hand_made_values():
    rule = MedianRule(warmup=1, min_trials=2)
    others = {"a": {1: 0.5, 2: 0.6, 3: 0.7}, "b": {1: 0.3, 2: 0.4}, "c": {1: 0.1}}
    assert not should_stop({1: 0.0}, others, 1, rule)  # warm-up epoch
    assert should_stop({1: 0.2, 2: 0.45}, others, 2, rule)  # median of .6 and .4 is .5
    assert not should_stop({1: 0.2, 2: 0.55}, others, 2, rule)
    assert not should_stop({1: 0.9, 2: 0.45}, others, 2, rule)  # its best so far counts
    assert not should_stop({1: 0.2, 2: 0.3, 3: 0.1}, others, 3, rule)  # one other trial is not enough
    assert should_stop({1: 0.9, 2: 0.55}, others, 2, rule, mode="min")
    assert not should_stop({1: 0.2, 2: 0.45}, others, 2, MedianRule(warmup=2, min_trials=2))


def test_training_loop_stops_a_lagging_trial_and_records_every_validation(tmp_path, monkeypatch):
    prune_file = tmp_path / "sweeps/s/intermediate.jsonl"
    prune_file.parent.mkdir(parents=True)
    peers = [{"trial": f"s-t00{i}", "stage": "train_x", "epoch": epoch, "value": 0.0, "stop": False}
             for i in (1, 2) for epoch in (1, 2, 3, 4)]  # mse 0: no trial can be better
    prune_file.write_text("".join(json.dumps(p) + "\n" for p in peers), encoding="utf-8")
    for key, value in {**MedianRule(warmup=1, min_trials=2).to_env(prune_file), TRIAL_ENV: "s-t003",
                       STAGE_ENV: "train_x"}.items():
        monkeypatch.setenv(key, value)
    validator = Validator(regression_data())
    _, state, _ = train_tiny(tmp_path / "run", epochs=4, validator=validator)
    assert state.finished and state.epoch == 2 and validator.calls == 2
    assert (tmp_path / "run/ckpt/best.pt").is_file() and (tmp_path / "run/live/metrics.json").is_file()
    own = [r for r in read_intermediate(prune_file) if r["trial"] == "s-t003"]
    assert [(r["epoch"], r["stop"]) for r in own] == [(1, False), (2, True)]


def test_training_loop_without_the_variable_runs_every_epoch(tmp_path, monkeypatch):
    monkeypatch.delenv(PRUNE_FILE_ENV, raising=False)
    _, state, _ = train_tiny(tmp_path / "run", epochs=3)
    assert state.epoch == 3 and not list(tmp_path.rglob("*.jsonl"))


def test_open_trials_are_told_from_their_experiments(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat=None)
    study = optuna.create_study(storage=storage, direction="maximize")
    states = {"s-t001": "success", "s-t002": "failed", "s-t003": "running", "s-t004": "success"}
    for name in states:
        trial = study.ask()
        trial.suggest_float("postprocess.box_thresh", 0.2, 0.5)
        trial.set_user_attr(EXPERIMENT_ATTR, name)
    metrics = {"metrics/tune.json": {"best": {"cleval/hmean": 0.75}},  # the default metric: validation
               "metrics/evaluate.json": {"detect.cleval.hmean": 0.5}}
    runs = {name: TrialRun(name, state, metrics if name == "s-t001" else {}) for name, state in states.items()}
    settings = SweepSettings(space=load_space(write_space(tmp_path, CHEAP_SPACE), PARAMS), name="s", trials=4)
    lines: list[str] = []
    pending = settle(Worker(tmp_path, study, storage, settings, "w", lines.append), runs, {"s-t001": 2})
    assert pending == {"s-t003"}
    told = [(t.state.name, t.value) for t in study.trials]
    assert told == [("COMPLETE", 0.75), ("FAIL", None), ("RUNNING", None), ("FAIL", None)]
    assert "s-t001: metrics/tune.json:best.cleval/hmean 0.7500 (pruned at epoch 2)" in lines
    assert "s-t004: has no metric metrics/tune.json:best.cleval/hmean" in lines


def test_metric_lookup_by_key_or_file():
    run = TrialRun("x", "success", {"metrics/evaluate.json": {"detect.cleval.hmean": 0.5},
                                    "dvclive/train_detector/metrics.json": {"best": {"cleval": {"hmean": 0.7}}}})
    assert metric_value(run, "detect.cleval.hmean") == 0.5
    assert metric_value(run, "dvclive/train_detector/metrics.json:best.cleval.hmean") == 0.7
    assert metric_value(run, "classify.macro_f1") is None


def test_report_has_a_sweep_column_only_for_sweep_trials():
    assert sweep_of(trial_name("detector", 3)) == "detector" and sweep_of("box-042") is None
    row = ExperimentRow("detector-t003", "abc1234", "resnet18", 128, 4, 0.3, 0.4, 0.5, None, None,
                        sweep_of("detector-t003"))
    plain = ExperimentRow("box-042", "abc1234", "resnet18", 128, 4, 0.3, 0.4, 0.5, None, None)
    assert render_table([plain]).splitlines()[0].startswith("| experiment | commit |")
    lines = render_table([plain, row]).splitlines()
    assert lines[0].startswith("| experiment | sweep | commit |")
    assert lines[2].startswith("| box-042 | - | abc1234 |") and lines[3].startswith("| detector-t003 | detector |")


@pytest.mark.parametrize("setup, message", [
    ("plain folder", "not a git repository"),
    ("no dvc.yaml", "no dvc.yaml"),
    ("unknown key", "detector.train.lrr: not a key of params.yaml"),
])
def test_cli_errors_are_one_line_exit_2(tmp_path, capsys, setup, message):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "params.yaml").write_text(PARAMS.read_text())
    if setup != "plain folder":
        run(["git", "init", "-q"], repo)
    if setup == "unknown key":
        (repo / "dvc.yaml").write_text("stages: {}\n")
    space = write_space(tmp_path, "detector.train.lrr: {uniform: [0.1, 0.2]}\n")
    assert main(["sweep", str(space), "--trials", "2", "--repo", str(repo)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


# On the tiny profile every trial's CLEval is 0 (one epoch at 128 px), so the test optimises the
# training loss instead, which makes "the best trial" checkable. It differs between learning rates
# only when the epoch takes several optimizer steps (the loss of the first step is the same for all):
# a one-value choice fixes effective_batch at 2 in every trial.
LOSS = "dvclive/train_detector/metrics.json:train.loss"
SEVERAL_STEPS = "detector.train.effective_batch: {choice: [2]}\n"


def sweep(repo: Path, space: Path, trials: int) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "doclab.cli", "sweep", str(space), "--trials", str(trials), "--jobs", "2",
                "--sampler", "random", "--name", "cheap", "--metric", LOSS, "--direction", "min"], repo)


# A stage script prefix (temp copy only) that records what each trial's stage process sees.
RECORD_ENV = """import json as _json, os as _os
with open({log!r}, "a", encoding="utf-8") as _log:
    _log.write(_json.dumps({{"trial": _os.environ.get("DVC_EXP_NAME"),
                             "gpus": _os.environ.get("CUDA_VISIBLE_DEVICES")}}) + "\\n")
"""


@pytest.mark.slow
def test_two_trial_sweep_on_two_gpus_of_the_tiny_profile_resumes(tmp_path, tiny_baseline, monkeypatch):
    """Two queue workers, one per GPU of the user's CUDA_VISIBLE_DEVICES (training runs on CPU here)."""
    repo = tiny_baseline[0]
    run(["git", "checkout", "-q", "--", "."], repo)  # other end-to-end tests may have left an experiment
    dvc("checkout", "--force", cwd=repo)
    seen = tmp_path / "seen.jsonl"
    prefixed(repo, "tune_postprocess.py", RECORD_ENV.format(log=str(seen)))  # uncommitted: the queue takes it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    try:
        _sweep_and_resume(repo, write_space(tmp_path, CHEAP_SPACE + SEVERAL_STEPS))
    finally:
        run(["git", "checkout", "-q", "--", "."], repo)
        dvc("checkout", "--force", cwd=repo)
    # one line per process of the stage (its DataLoader workers import the script again)
    records = [json.loads(line) for line in seen.read_text(encoding="utf-8").splitlines()]
    devices = {trial: {r["gpus"] for r in records if r["trial"] == trial} for trial in ("cheap-t001", "cheap-t002")}
    assert {r["trial"] for r in records} == set(devices), records
    assert sorted(device for seen_by in devices.values() for device in seen_by) == ["0", "1"], records  # one GPU each


def _sweep_and_resume(repo: Path, space: Path) -> None:
    first = sweep(repo, space, 2)
    names = [trial_name("cheap", i) for i in (1, 2)]
    assert all(f"{name}: queued" in first.stdout for name in names), first.stdout
    shown = json.loads(dvc("exp", "show", "--json", cwd=repo).stdout)
    experiments = {rev["name"]: rev for commit in shown for group in commit.get("experiments") or []
                   for rev in group["revs"]}
    losses = {}
    for name in names:
        metrics = experiments[name]["data"]["metrics"]
        assert 0.0 <= metrics["metrics/evaluate.json"]["data"]["detect.cleval.hmean"] <= 1.0
        assert 0.0 <= metrics["metrics/tune.json"]["data"]["best"]["cleval/hmean"] <= 1.0
        losses[name] = metrics["dvclive/train_detector/metrics.json"]["data"]["train"]["loss"]
    assert len(set(losses.values())) == 2, losses  # two learning rates, two losses
    winner = min(losses, key=losses.get)
    assert f"best: {winner} {LOSS} {losses[winner]:.4f}" in first.stdout, (losses, first.stdout)
    winner_lr = experiments[winner]["data"]["params"]["params.yaml"]["data"]["detector"]["train"]["lr"]
    summary = json.loads((repo / "sweeps/cheap/trials.json").read_text())
    assert [t["state"] for t in summary["trials"]] == ["complete"] * 2
    # every trial marked against the best on its per-image validation results; the winner's line says
    # whether it beats the runner-up and the committed baseline beyond the noise
    marks = [t["noise"] for t in summary["trials"]]
    assert marks.count("best") == 1 and set(marks) <= {"best", "within noise", "worse"}, marks
    best_line = next(line for line in first.stdout.splitlines() if line.startswith("best: "))
    assert "val cleval/hmean per image, paired bootstrap" in best_line and "against the runner-up cheap-t00" in best_line
    assert re.search(r"against the baseline HEAD: [+-]\d\.\d{4} \[[+-]\d\.\d{4}, [+-]\d\.\d{4}\] "
                     r"(better|worse|within noise)", best_line), best_line
    trained = {r["trial"] for r in read_intermediate(repo / "sweeps/cheap/intermediate.jsonl")}
    assert trained == set(names)  # the workers got the pruning file, DVC the trial names
    best = next(line for line in first.stdout.splitlines() if line.startswith("dvc exp run -S"))
    assert "postprocess.box_thresh=" in best and f"detector.train.lr={winner_lr}" in best, (best, winner_lr)
    assert f"dvc exp branch {winner} cheap-best" in first.stdout
    second = sweep(repo, space, 2)
    assert "queued" not in second.stdout.replace("(0 queued by this run)", "") and best in second.stdout
    run([sys.executable, "-m", "doclab.cli", "report"], repo)
    assert "| cheap-t001 | cheap |" in (repo / "experiments.md").read_text()
