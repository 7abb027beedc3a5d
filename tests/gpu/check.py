"""The one prepared GPU check: every CUDA path of doclab on a fresh GPU machine, one table at the end.

    python tests/gpu/check.py            # on a GPU machine, about 8 minutes on one H100/H200-class GPU
    python tests/gpu/check.py --out DIR  # keep the work folder (default: a temp folder)

Without CUDA it prints one line and exits 0 (it is not part of the test suite or CI). Each row runs the
real stage scripts in a scratch project built from the built-in synthetic sample:
environment; detector bf16 with auto batch, EMA and loader workers; SIGKILL after the first checkpoint and
resume; fp16 + GradScaler forced (a GPU without native bf16 is simulated) with accumulation and clipping,
killed and resumed; the auto-batch probe backing off under a memory fraction; torchrun on NCCL (all GPUs);
hrnet_w44 at 1024 px (images/s, peak memory, AMP against fp32); tune, evaluate, export and predict on CUDA
(with the short-side input rule);
the detector's GPU ms/image with torch AMP against onnxruntime's CUDA provider; the classifier with mixup/cutmix
and EMA.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
FORCE_FP16 = ("import torch, runpy, sys; torch.cuda.is_bf16_supported = lambda including_emulation=True: False; "
              "sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')")
ROWS: list[tuple[str, str, str]] = []  # (check, result, figures)


def record(check: str, ok: bool, figures: str) -> None:
    ROWS.append((check, "ok" if ok else "FAIL", figures))
    print(f"[{'ok' if ok else 'FAIL'}] {check}: {figures}", flush=True)


def run(command: list[str], cwd: Path, timeout: float = 900, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def write_params(root: Path, changes: dict) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def stage(root: Path, name: str, extra: str = "", wrapper: list[str] | None = None) -> list[str]:
    """The stage's command as dvc.yaml runs it (paths relative to `root`)."""
    cmd = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][name]["cmd"].split()
    script = str(REPO / cmd[1])
    return [sys.executable, *(wrapper or []), script, *cmd[2:], *extra.split()]


def live_metrics(root: Path, folder: str) -> dict:
    return json.loads((root / folder / "metrics.json").read_text())


def check_environment() -> None:
    import torch
    import torch.distributed as dist

    capability = torch.cuda.get_device_capability()
    native = torch.cuda.is_bf16_supported(including_emulation=False)
    record("environment", True, f"{torch.cuda.get_device_name()} sm_{capability[0]}{capability[1]}, "
           f"{torch.cuda.device_count()} GPU(s), torch {torch.__version__}, native bf16 {native}, "
           f"NCCL {dist.is_nccl_available()}")


def check_detector(root: Path) -> None:
    base = {"batch_size": "auto", "detector.train.epochs": 2, "detector.train.ema": True,
            "detector.train.workers": min(8, os.cpu_count() or 1)}
    write_params(root, base)
    started = time.perf_counter()
    done = run(stage(root, "train_detector"), root)
    metrics = live_metrics(root, "dvclive/train_detector") if done.returncode == 0 else {}
    record("detector bf16, auto batch, EMA, workers", done.returncode == 0,
           f"{time.perf_counter() - started:.0f} s, val hmean {metrics.get('val', {}).get('cleval/hmean', 'n/a')}, "
           f"{metrics.get('perf', {}).get('images_per_s', 0):.1f} img/s, peak "
           f"{metrics.get('perf', {}).get('peak_memory_mb', 0):.0f} MiB" if metrics else done.stderr[-300:])
    for label, wrapper, changes in (
            ("SIGKILL + resume (bf16)", None, {"detector.train.epochs": 3}),
            ("fp16 + GradScaler forced, accumulation, clipping, SIGKILL + resume", ["-c", FORCE_FP16],
             {"detector.train.epochs": 3, "batch_size": 2, "detector.train.effective_batch": 8,
              "detector.train.grad_clip": 1.0})):
        shutil.rmtree(root / "checkpoints", ignore_errors=True)
        write_params(root, {**base, **changes})
        command = stage(root, "train_detector", wrapper=wrapper)
        process = subprocess.Popen(command, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        last = root / "checkpoints/detector/last.pt"
        while not last.exists() and process.poll() is None:
            time.sleep(0.05)
        time.sleep(1.0)
        process.kill()
        process.wait()
        resumed = run(command, root)
        ok = resumed.returncode == 0 and "resuming from" in resumed.stdout + resumed.stderr
        record(label, ok, "resumed and finished" if ok else resumed.stderr[-300:])


def check_probe_backs_off() -> None:
    import torch

    sys.path.insert(0, str(REPO / "src"))
    from doclab.engine.batch import resolve_batch_size

    free, total = torch.cuda.mem_get_info()
    torch.cuda.set_per_process_memory_fraction(0.05)
    model = torch.nn.Sequential(*[torch.nn.Conv2d(64, 64, 3, padding=1) for _ in range(8)]).cuda()

    def probe(size: int) -> None:
        model(torch.randn(size, 64, 256, 256, device="cuda")).sum().backward()

    batch = resolve_batch_size("auto", torch.device("cuda"), probe, 4096)
    torch.cuda.set_per_process_memory_fraction(1.0)
    reserved = torch.cuda.memory_reserved() / 2**20
    record("auto-batch probe under a 5% memory fraction", 1 <= batch < 4096,
           f"batch {batch} of {total / 2**30:.0f} GiB x 0.05, {reserved:.0f} MiB reserved after the search")


def check_torchrun(root: Path) -> None:
    import torch

    gpus = torch.cuda.device_count()
    write_params(root, {"detector.train.epochs": 1, "batch_size": 4})
    cmd = stage(root, "train_detector")
    done = run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                *cmd[1:]], root)
    record(f"torchrun NCCL, {gpus} process(es)", done.returncode == 0,
           "trained one epoch" if done.returncode == 0 else done.stderr[-300:])


def check_hrnet(root: Path) -> None:
    figures = []
    ok = True
    for amp in (True, False):
        shutil.rmtree(root / "checkpoints", ignore_errors=True)
        write_params(root, {"model": "hrnet_w44", "image_size": 1024, "batch_size": "auto",
                            "detector.train.epochs": 1, "detector.train.amp": amp,
                            "detector.train.workers": min(8, os.cpu_count() or 1)})
        done = run(stage(root, "train_detector"), root, timeout=1200)
        ok = ok and done.returncode == 0
        perf = live_metrics(root, "dvclive/train_detector").get("perf", {}) if done.returncode == 0 else {}
        figures.append(f"{'AMP' if amp else 'fp32'} {perf.get('images_per_s', 0):.1f} img/s, peak "
                       f"{perf.get('peak_memory_mb', 0):.0f} MiB")
    record("hrnet_w44 at 1024 px, 1 epoch", ok, "; ".join(figures))


def check_inference(root: Path) -> None:
    write_params(root, {"detector.train.epochs": 1})
    steps = [stage(root, "train_detector"), stage(root, "tune_postprocess")]
    for member in yaml.safe_load((root / "params.yaml").read_text())["classifier"]["members"]:
        steps.append([arg.replace("${item.member}", member) for arg in stage(root, "train_classifier")])
    steps += [stage(root, "ensemble"), stage(root, "evaluate"), stage(root, "export"),
              [sys.executable, "-m", "doclab.cli", "predict", "data/processed/images", "--out", "predicted",
               "--device", "cuda"]]
    # the short-side input rule: random crops in training, variable-size padded batches everywhere after
    write_params(root, {"detector.train.epochs": 1, "detector.input.resize": "short_side",
                        "classifier.train.epochs": 2, "classifier.mixup_alpha": 0.2,
                        "classifier.cutmix_alpha": 1.0, "classifier.train.ema": True})
    for command in steps:
        done = run(command, root)
        name = Path(command[1]).stem if command[1].endswith(".py") else "predict"
        record(f"{name} on CUDA", done.returncode == 0, (done.stdout.strip().splitlines() or [""])[-1][:160]
               if done.returncode == 0 else done.stderr[-300:])
        if done.returncode != 0:
            return


GPU_TIMING = """
import sys, time, numpy as np, onnxruntime as ort, torch
from pathlib import Path
from doclab.data.images import read_image
from doclab.deploy.manifest import read_manifest
from doclab.deploy.preprocess import input_batch
from doclab.detection.predictor import DetectorPredictor
root = Path(sys.argv[1])
images = [read_image(p)[0] for p in sorted((root / "data/processed/images").rglob("*.jpg"))[:32]]
spec = read_manifest(root / "models/deploy/deploy.json").detector
batch = input_batch(images[:8], spec.input)[0]
torch_det = DetectorPredictor(root / "models", torch.device("cuda"))
def timed(call, repeats=20):
    call(); torch.cuda.synchronize(); start = time.perf_counter()
    for _ in range(repeats): call()
    torch.cuda.synchronize(); return (time.perf_counter() - start) * 1000 / repeats / len(batch)
torch_ms = timed(lambda: torch_det.maps(images[:8]))
line = f"torch AMP {torch_ms:.2f} ms/image (batch 8, pre-processing included)"
if "CUDAExecutionProvider" in ort.get_available_providers():
    session = ort.InferenceSession(str(root / "models/deploy/detector.onnx"), providers=["CUDAExecutionProvider"])
    line += f"; onnxruntime CUDA {timed(lambda: session.run(None, {'images': batch})):.2f} ms/image (model only)"
else:
    line += "; onnxruntime CUDA: not installed (the locked onnxruntime is the CPU build: pip install onnxruntime-gpu)"
print(line)
"""


def check_onnx_gpu(root: Path) -> None:
    done = run([sys.executable, "-c", GPU_TIMING, str(root)], root)
    record("detector ms/image: torch AMP vs onnxruntime CUDA", done.returncode == 0,
           done.stdout.strip()[-300:] if done.returncode == 0 else done.stderr[-300:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="work folder to keep (default: a temp folder)")
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("gpu check: skipped, no CUDA device (run it on a GPU machine: python tests/gpu/check.py)")
        return 0
    root = args.out or Path(tempfile.mkdtemp(prefix="doclab-gpu-"))
    root.mkdir(parents=True, exist_ok=True)
    write_params(root, {"data.synthetic.num_images": 120})
    done = run(stage(root, "preprocess"), root)
    record("preprocess (synthetic sample, 120 documents)", done.returncode == 0, done.stdout.strip()[-160:])
    checks = [check_environment, lambda: check_detector(root), check_probe_backs_off, lambda: check_torchrun(root),
              lambda: check_inference(root), lambda: check_onnx_gpu(root), lambda: check_hrnet(root)]
    for check in checks:
        try:
            check()
        except Exception as exc:  # a broken check is a row of the table, not the end of the run
            record(getattr(check, "__name__", "check"), False, f"{type(exc).__name__}: {exc}"[:300])
    print("\n| check | result | figures |\n| --- | --- | --- |")
    print("\n".join(f"| {check} | {result} | {figures} |" for check, result, figures in ROWS))
    return 0 if all(result == "ok" for _, result, _ in ROWS) else 1


if __name__ == "__main__":
    sys.exit(main())
