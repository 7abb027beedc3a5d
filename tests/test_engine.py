"""The training engine on a tiny regression model: schedules, accumulation, checkpoints, resume, EMA, batch."""
from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from doclab.config import ConfigError
from doclab.engine.batch import accumulation_steps, largest_fitting, resolve_batch_size
from doclab.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from doclab.engine.device import Runtime, choose_device, make_runtime
from doclab.engine.loop import LoopConfig, best_weights, fit
from doclab.engine.optim import Schedule, build_optimizer

CPU = Runtime(torch.device("cpu"))


def regression_data(n: int = 20) -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, generator=generator)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=generator)
    return TensorDataset(x, y)


def tiny_model(dropout: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(dropout), nn.Linear(8, 1))


def mse_step(model: nn.Module, batch) -> tuple[dict[str, torch.Tensor], int]:
    x, y = batch
    loss = nn.functional.mse_loss(model(x), y)
    return {"loss": loss, "mse": loss.detach()}, len(x)


class Validator:
    """Validation MSE on the whole data set; raises after `crash_at` calls to simulate a killed run."""

    def __init__(self, data: TensorDataset, crash_at: int | None = None):
        self.data, self.crash_at, self.calls = data, crash_at, 0

    def __call__(self, module: nn.Module) -> dict[str, float]:
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise KeyboardInterrupt("simulated crash")
        x, y = self.data.tensors
        return {"mse": float(nn.functional.mse_loss(module(x), y))}


def train_tiny(root: Path, *, epochs: int = 4, batch: int = 4, accumulation: int = 1, fingerprint: str = "a",
               optimizer: str = "adamw", scheduler: str = "warmup_cosine", dropout: float = 0.2,
               shuffle: bool = True, ema_decay: float | None = None, validator: Validator | None = None,
               live: str = "live"):
    """Train the tiny model with `fit`; returns (model, final TrainState, validator)."""
    data = regression_data()
    model = tiny_model(dropout)
    loader = DataLoader(data, batch_size=batch, shuffle=shuffle, generator=torch.Generator().manual_seed(3))
    opt = build_optimizer(model, optimizer, lr=0.05, weight_decay=0.01)
    steps_per_epoch = -(-len(loader) // accumulation)
    schedule = Schedule(opt, scheduler, epochs * steps_per_epoch, steps_per_epoch, warmup_steps=steps_per_epoch,
                        mode="min")
    config = LoopConfig(epochs=epochs, checkpoint_dir=root / "ckpt", fingerprint=fingerprint, monitor="mse",
                        mode="min", accumulation=accumulation, grad_clip=1.0, ema_decay=ema_decay)
    validator = validator or Validator(data)
    state = fit(model, loader, mse_step, validator, opt, schedule, config, CPU, root / live)
    return model, state, validator


def lrs(name: str, steps: int = 30, steps_per_epoch: int = 5, warmup: int = 5) -> list[float]:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = Schedule(opt, name, steps, steps_per_epoch, warmup_steps=warmup)
    out = []
    for _ in range(steps):
        out.append(schedule.lr())
        opt.step()
        schedule.after_step()
    return out


def test_warmup_schedules_rise_then_decay_to_zero():
    for name in ("warmup_cosine", "warmup_linear"):
        lr = lrs(name)
        assert all(a < b for a, b in zip(lr[:5], lr[1:6])), name  # strictly rising warm-up
        assert lr[5] == pytest.approx(1.0)
        assert all(a >= b for a, b in zip(lr[5:], lr[6:])), name
        assert lr[-1] < 0.05
    cosine, linear = lrs("warmup_cosine"), lrs("warmup_linear")
    assert cosine[10] > linear[10]  # cosine stays high longer early on


def test_plain_schedules_have_their_shapes():
    cosine = lrs("cosine")
    assert cosine[0] == 1.0 and all(a >= b for a, b in zip(cosine, cosine[1:])) and cosine[-1] < 0.01
    step = lrs("step")
    assert sorted(set(round(v, 6) for v in step), reverse=True) == [1.0, 0.1, 0.01]
    exponential = lrs("exponential")
    assert exponential[-1] == pytest.approx(0.01 ** (29 / 30))
    restarts = lrs("cosine_restarts")
    jumps = [i for i in range(1, 30) if restarts[i] > restarts[i - 1]]
    assert jumps == [10, 20]  # three equal cycles of whole epochs


def test_plateau_halves_lr_after_patience_epochs_without_improvement():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    schedule = Schedule(opt, "plateau", 10, 1, mode="max")
    for value in (0.5, 0.6, 0.6, 0.6, 0.6):
        schedule.after_step()  # per-step calls must not move plateau
        schedule.after_epoch(value)
    assert schedule.lr() == 0.5
    schedule.after_epoch(None)  # an epoch without validation changes nothing
    assert schedule.lr() == 0.5


def test_accumulation_gives_the_same_weights_as_one_big_batch(tmp_path):
    # 20 samples: 10 micro-batches of 2 in groups 4, 4, 2 vs batches 8, 8, 4 (the uneven tail too).
    small, _, _ = train_tiny(tmp_path / "small", epochs=2, batch=2, accumulation=4, dropout=0.0, shuffle=False,
                             optimizer="sgd")
    big, _, _ = train_tiny(tmp_path / "big", epochs=2, batch=8, accumulation=1, dropout=0.0, shuffle=False,
                           optimizer="sgd")
    for a, b in zip(small.state_dict().values(), big.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    untrained = tiny_model().state_dict()
    assert not torch.equal(untrained["0.weight"], big.state_dict()["0.weight"])


def test_resume_after_a_crash_matches_an_uninterrupted_run(tmp_path, capsys):
    straight, state, _ = train_tiny(tmp_path / "straight", ema_decay=0.9)
    assert state.epoch == 4 and state.finished
    crashing = Validator(regression_data(), crash_at=3)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(tmp_path / "resumed", ema_decay=0.9, validator=crashing)
    capsys.readouterr()
    resumed, state2, validator = train_tiny(tmp_path / "resumed", ema_decay=0.9)
    assert "after epoch 2" in capsys.readouterr().out
    assert validator.calls == 2 and state2.epoch == 4
    for name, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert state2.best_metrics == state.best_metrics
    straight_metrics = json.loads((tmp_path / "straight/live/metrics.json").read_text())
    resumed_metrics = json.loads((tmp_path / "resumed/live/metrics.json").read_text())
    assert straight_metrics == resumed_metrics


def test_completed_run_is_not_trained_again(tmp_path):
    train_tiny(tmp_path)
    _, state, validator = train_tiny(tmp_path)
    assert validator.calls == 0 and state.epoch == 4


def test_changed_params_restart_from_scratch(tmp_path, capsys):
    train_tiny(tmp_path, epochs=2, fingerprint="lr=0.05")
    capsys.readouterr()
    _, state, validator = train_tiny(tmp_path, epochs=2, fingerprint="lr=0.01")
    assert "starting from scratch" in capsys.readouterr().out
    assert validator.calls == 2 and state.epoch == 2
    assert load_checkpoint(tmp_path / "ckpt/last.pt")["fingerprint"] == "lr=0.01"


def test_metrics_file_is_deterministic_and_free_of_timings(tmp_path):
    train_tiny(tmp_path / "one")
    train_tiny(tmp_path / "two")
    first = (tmp_path / "one/live/metrics.json").read_text()
    assert first == (tmp_path / "two/live/metrics.json").read_text()
    summary = json.loads(first)
    assert "perf" not in summary and summary["step"] == 3
    assert summary["best"]["epoch"] >= 1 and "mse" in summary["val"]
    plots = tmp_path / "one/live/plots/metrics"
    assert (plots / "perf/epoch_time_s.tsv").is_file() and (plots / "train/lr.tsv").is_file()


def test_resume_rebuilds_a_deleted_dvclive_folder(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train_tiny(tmp_path, validator=Validator(regression_data(), crash_at=3))
    for path in sorted((tmp_path / "live").rglob("*"), reverse=True):  # what DVC does before a rerun
        path.rmdir() if path.is_dir() else path.unlink()
    train_tiny(tmp_path)
    rows = (tmp_path / "live/plots/metrics/val/mse.tsv").read_text().splitlines()[1:]
    assert [int(row.split("\t")[0]) for row in rows] == [0, 1, 2, 3]


def test_ema_weights_are_saved_as_best_and_differ_from_raw_weights(tmp_path):
    model, state, _ = train_tiny(tmp_path, ema_decay=0.9)
    best = best_weights(tmp_path / "ckpt")
    assert best["epoch"] == state.best_epoch
    raw = model.state_dict()
    assert not torch.equal(best["model"]["0.weight"], raw["0.weight"])
    assert not torch.equal(best["model"]["0.weight"], tiny_model().state_dict()["0.weight"])


def test_checkpoint_round_trip_keeps_tensors_and_plain_values(tmp_path):
    state = {"model": {"w": torch.arange(6.0).reshape(2, 3)}, "epoch": 3, "names": ["a", "b"], "lr": 1.0e-3}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["names"] == ["a", "b"]
    assert not list(tmp_path.glob(".c.pt.*"))  # the atomic write left no temp file


class _Bomb:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_pickle_bomb_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"model": _Bomb()}, tmp_path / "bomb.pt")
    (tmp_path / "raw.pkl").write_bytes(pickle.dumps(_Bomb(), protocol=2))
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    expected = {"bomb.pt": "refusing to load {} (not a weights-only checkpoint)",
                "raw.pkl": "{}: not a torch checkpoint (no zip archive)",
                "random.pt": "{}: not a torch checkpoint (no zip archive)"}
    for name, message in expected.items():
        with pytest.raises(CheckpointError) as info:
            load_checkpoint(tmp_path / name)
        assert str(info.value) == message.format(tmp_path / name)
    assert not (tmp_path / "pwned").exists()


def test_batch_size_auto_on_cpu_and_accumulation():
    def never(size: int) -> None:
        raise AssertionError("CPU must not probe")
    assert resolve_batch_size("auto", torch.device("cpu"), never, limit=16) == 4
    assert resolve_batch_size("auto", torch.device("cpu"), never, limit=2) == 2
    assert resolve_batch_size(6, torch.device("cpu"), never, limit=16) == 6
    assert accumulation_steps(16, 4) == 4 and accumulation_steps(16, 4, world_size=2) == 2
    assert accumulation_steps(10, 4) == 3 and accumulation_steps(2, 8) == 1


class FakeOOM(RuntimeError):
    pass


def probe_up_to(largest: int):
    tried = []

    def probe(size: int) -> None:
        tried.append(size)
        if size > largest:
            raise FakeOOM(f"{size} does not fit")
    return probe, tried


def test_probe_grows_then_backs_off_on_oom():
    def is_oom(exc):
        return isinstance(exc, FakeOOM)
    probe, tried = probe_up_to(12)
    assert largest_fitting(probe, 2, 64, is_oom) == 8 and tried == [2, 4, 8, 16]
    probe, tried = probe_up_to(1)
    assert largest_fitting(probe, 2, 64, is_oom) == 1 and tried == [2, 1]
    probe, _ = probe_up_to(100)
    assert largest_fitting(probe, 2, 24, is_oom) == 24
    probe, _ = probe_up_to(0)
    with pytest.raises(RuntimeError, match="even a batch of 1"):
        largest_fitting(probe, 2, 64, is_oom)
    with pytest.raises(ValueError, match="real bug"):
        largest_fitting(lambda size: (_ for _ in ()).throw(ValueError("real bug")), 2, 64, is_oom)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_gpu_is_a_one_line_error():
    with pytest.raises(ConfigError) as info:
        choose_device("cuda")
    assert str(info.value).startswith("device: got 'cuda'") and "\n" not in str(info.value)
    assert choose_device("auto").type == "cpu"
    assert make_runtime(torch.device("cpu"), amp=True, channels_last=False) == CPU
    assert make_runtime(torch.device("cpu"), amp=True, channels_last=True).amp_dtype is None


def test_epoch_hook_runs_in_train_mode_before_each_epoch_and_again_after_resume(tmp_path):
    data = regression_data()
    calls = []

    def hook(epoch: int, module: nn.Module) -> None:
        calls.append((epoch, module.training))
        module[0].requires_grad_(epoch >= 1)  # the first layer is frozen during the first epoch only

    def run(validator: Validator) -> nn.Module:
        model = tiny_model()
        loader = DataLoader(data, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(3))
        opt = build_optimizer(model, "adamw", lr=0.05)
        schedule = Schedule(opt, "cosine", 3 * len(loader), len(loader))
        config = LoopConfig(epochs=3, checkpoint_dir=tmp_path / "ckpt", fingerprint="hook", monitor="mse", mode="min")
        fit(model, loader, mse_step, validator, opt, schedule, config, CPU, tmp_path / "live", on_epoch_start=hook)
        return model

    initial = tiny_model()[0].weight.detach().clone()
    with pytest.raises(KeyboardInterrupt):
        run(Validator(data, crash_at=2))  # epoch 1 is checkpointed, epoch 2 dies in validation
    assert calls == [(0, True), (1, True)]
    assert torch.equal(load_checkpoint(tmp_path / "ckpt" / "last.pt")["model"]["0.weight"], initial)
    model = run(Validator(data))
    assert calls[2:] == [(1, True), (2, True)]  # the resumed run sets its epoch's state up again
    assert not torch.equal(model[0].weight, initial)


def test_one_model_file_format_with_kind_and_legacy_tags(tmp_path):
    from doclab.engine.checkpoint import CheckpointError, read_model_file, save_model_file

    save_model_file(tmp_path / "d.pt", "detector", {"state_dict": {"w": torch.ones(2)}})
    saved = read_model_file(tmp_path / "d.pt", "detector")
    assert saved["format"] == "doclab.model/1" and saved["kind"] == "detector" and torch.equal(saved["state_dict"]["w"], torch.ones(2))
    with pytest.raises(CheckpointError, match=r"d\.pt: not a doclab classifier file"):
        read_model_file(tmp_path / "d.pt", "classifier")
    for kind, legacy in (("detector", "doclab.detector/1"), ("classifier", "doclab-classifier-v1")):
        torch.save({"format": legacy, "state_dict": {}}, tmp_path / f"{kind}.pt")
        assert read_model_file(tmp_path / f"{kind}.pt", kind)["format"] == legacy


def test_bf16_only_where_the_gpu_has_it_natively(monkeypatch):
    """T4/V100 answer is_bf16_supported() True through emulation; they must get fp16 + GradScaler."""
    from doclab.engine.device import make_runtime

    for native, expected in ((False, torch.float16), (True, torch.bfloat16)):
        monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                            lambda including_emulation=True, native=native: including_emulation or native)
        monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
        runtime = make_runtime(torch.device("cuda"), amp=True, channels_last=False)
        assert runtime.amp_dtype == expected and runtime.needs_scaler == (expected == torch.float16)


def test_resume_with_an_enabled_scaler_from_a_run_that_saved_an_empty_one():
    """A bf16 (or CPU) run stores its disabled scaler as {}; an fp16 resume must not load it."""
    from types import SimpleNamespace

    from doclab.engine.checkpoint import rng_state
    from doclab.engine.loop import TrainState, _restore

    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    schedule = SimpleNamespace(load_state_dict=lambda state: None)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    parts = SimpleNamespace(model=model, optimizer=optimizer, schedule=schedule, scaler=scaler, ema=None,
                            loader=SimpleNamespace(generator=None))
    checkpoint = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": {}, "scaler": {},
                  "ema": None, "rng": rng_state(), "state": {"epoch": 2}}
    state = _restore(parts, checkpoint)
    assert isinstance(state, TrainState) and state.epoch == 2 and scaler.get_scale() == 65536.0


def _two_rank_worker(rank: int, port: int, out: str) -> None:
    import warnings

    from doclab.engine.device import Runtime
    from doclab.engine.distributed import init_distributed, shutdown, wrap_model
    from doclab.engine.recipe import batch_plan

    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    info = init_distributed(torch.device("cpu"))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    wrapped = wrap_model(model, info, torch.device("cpu"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = batch_plan("auto", 1, Runtime(torch.device("cpu")), info, lambda size: None)
    result = {"sync_bn": type(model[1]).__name__, "plan": plan, "warned": [str(w.message) for w in caught]}
    wrapped(torch.randn(2, 3, 8, 8)).sum().backward()  # a real step through the synchronised BatchNorm
    shutdown(info)
    Path(out, f"rank{rank}.json").write_text(json.dumps(result))


def test_ddp_on_cpu_trains_and_warns_when_the_effective_batch_is_below_the_world(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_two_rank_worker, args=(port, str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    # SyncBatchNorm needs GPUs (checked by tests/gpu/check.py); gloo CPU ranks keep BatchNorm and still train.
    assert all(r["sync_bn"] == "BatchNorm2d" and r["plan"] == [1, 1] for r in ranks)
    assert ranks[0]["warned"] == ["effective batch 1 is below the 2 processes: every optimizer step sees 2 samples "
                                  "(one per process)"] and ranks[1]["warned"] == []


# One node's process of a 2-node job: joins through doclab's own init, wraps a model, takes one step.
NODE_SCRIPT = """import json, sys
import torch
from torch import nn
from doclab.engine.distributed import init_distributed, shutdown, wrap_model

info = init_distributed(torch.device("cpu"))
torch.manual_seed(info.rank)  # different initial weights per node: DDP must broadcast rank 0's
model = nn.Linear(4, 1, bias=False)
wrapped = wrap_model(model, info, torch.device("cpu"))
wrapped(torch.full((2, 4), float(info.rank + 1))).sum().backward()  # per-node gradient 2 * (rank + 1)
result = {"rank": info.rank, "world": info.world_size, "local_rank": info.local_rank,
          "weight": model.weight.tolist(), "grad": model.weight.grad.tolist()}
shutdown(info)
open(sys.argv[1] + f"/node{info.rank}.json", "w").write(json.dumps(result))
"""


@pytest.mark.slow
def test_ddp_across_two_nodes_of_one_process_each_with_torchrun(tmp_path):
    """`torchrun --nnodes 2 --node-rank R` twice on localhost: the README's multi-node command, gloo on CPU."""
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "node.py"
    script.write_text(NODE_SCRIPT)
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank", str(rank),
                               "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", str(port),
                               str(script), str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for rank in (0, 1)]
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    ranks = [json.loads((tmp_path / f"node{r}.json").read_text()) for r in (0, 1)]
    assert [(r["rank"], r["world"], r["local_rank"]) for r in ranks] == [(0, 2, 0), (1, 2, 0)]
    assert ranks[0]["weight"] == ranks[1]["weight"]  # node 1 trains rank 0's initial weights
    assert ranks[0]["grad"] == ranks[1]["grad"] == [[3.0] * 4]  # gradients averaged over the nodes: (2 + 4) / 2


def test_probe_memory_is_released_outside_the_oom_handler():
    """The failed probe's frames (and their tensors) must be gone before empty_cache runs."""
    import gc
    import weakref

    class FakeOOM(RuntimeError):
        pass

    alive: list[weakref.ref] = []
    seen: list[tuple[object, bool]] = []

    def probe(size: int) -> None:
        activations = torch.empty(size, 1024)  # what a real forward pass would hold
        alive.append(weakref.ref(activations))
        if size > 4:
            raise FakeOOM("CUDA out of memory")

    def release() -> None:
        gc.collect()
        seen.append((sys.exc_info()[0], all(ref() is None for ref in alive)))

    assert largest_fitting(probe, 2, 64, lambda exc: isinstance(exc, FakeOOM), release) == 4
    assert seen and all(active is None and freed for active, freed in seen), seen


def test_resume_fingerprints_hash_the_resolved_batch_and_accumulation(tmp_path):
    from doclab.config import Params, build
    from doclab.pipeline import train_classifier, train_detector

    for name in ("splits.json", "annotations.json", "labels.csv", "classes.json"):
        (tmp_path / name).write_text("{}")
    params = build(Params, {"batch_size": "auto", "classifier": {"batch_size": "auto"}})
    detector = {plan: train_detector._fingerprint(params, tmp_path, None, 1, *plan) for plan in ((2, 4), (4, 2), (2, 4))}
    classifier = {plan: train_classifier._fingerprint(params, "resnet18", 0, tmp_path, 1, *plan)
                  for plan in ((2, 4), (4, 2))}
    assert len(set(detector.values())) == 2 and len(set(classifier.values())) == 2


def test_a_step_the_fp16_scaler_skips_advances_neither_ema_nor_schedule():
    from types import SimpleNamespace

    from doclab.engine.loop import LoopConfig, TrainState, _optimizer_step

    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    steps = []
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    ema = SimpleNamespace(update=lambda module, step: steps.append(("ema", step)))
    parts = SimpleNamespace(model=model, optimizer=optimizer, scaler=scaler, ema=ema,
                            schedule=SimpleNamespace(after_step=lambda: steps.append(("schedule",))))
    config, state = LoopConfig(epochs=1, checkpoint_dir=Path("."), fingerprint="", monitor="m"), TrainState()
    for bad in (True, False):
        loss = model(torch.ones(1, 2)).sum() * (float("inf") if bad else 1.0)
        scaler.scale(loss).backward()
        before = model.weight.detach().clone()
        _optimizer_step(parts, config, state)
        assert torch.equal(model.weight, before) == bad  # the inf step changed no weight
    assert state.global_step == 1 and steps == [("ema", 1), ("schedule",)]
