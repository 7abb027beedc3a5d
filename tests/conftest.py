"""Shared fixtures: a tiny real dataset on disk, and a params.yaml that points at it.

    def test_something(make_dataset, write_params):
        ds = make_dataset()                     # 8 images, 2 classes, UFO JSON + labels.csv + meta.csv
        params_file = write_params(ds, {"data.on_bad": "skip"})
        params = load_params(params_file)
        preprocess(params, ds.root, ds.root / "out", ds.root / "metrics.json")

`ds.root` plays the repository root: `data.sources` paths in the params are relative to it,
and the stage script is run with it as the working directory. Images are drawn with numpy/cv2
(light paper, dark "text line" boxes), so they are real files every reader has to decode.
"""
from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

SOURCE_NAME = "docs"
CLASSES = {"0": "invoice", "1": "receipt"}  # meta.csv: target -> class name


@dataclass
class Dataset:
    """A dataset written by `build_dataset`; paths are absolute, `source()` gives them relative to `root`.

    Attributes:
        root: the fake repository root.
        name: source name (item ids are `<name>/<file>`).
        images: image folder.
        annotations: UFO JSON (detection).
        labels: `ID,target` CSV (targets are meta.csv keys).
        meta: `target,class_name` CSV.
        boxes: {image file: [(x0, y0, x1, y1), ...]} dark word boxes, in the stored pixel frame.
        sizes: {image file: (width, height)} stored size.
        classes: {image file: class name}.
    """

    root: Path
    name: str
    images: Path
    annotations: Path
    labels: Path
    meta: Path
    boxes: dict[str, list[tuple[int, int, int, int]]] = field(default_factory=dict)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)

    def source(self, **changes: str) -> dict:
        """This dataset's `data.sources` entry (UFO + labels + meta); keyword args override keys."""
        entry = {"name": self.name, "format": "ufo", "images": self.rel(self.images),
                 "annotations": self.rel(self.annotations), "labels": self.rel(self.labels),
                 "meta": self.rel(self.meta)}
        entry.update(changes)
        return {k: v for k, v in entry.items() if v is not None}

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def ufo(self) -> dict:
        """The annotation JSON as a dict (edit it and pass it to `write_ufo`)."""
        return json.loads(self.annotations.read_text(encoding="utf-8"))

    def write_ufo(self, doc: dict | str) -> None:
        """Replace the annotation JSON with a dict (NaN/Infinity allowed) or raw text."""
        text = doc if isinstance(doc, str) else json.dumps(doc, indent=1)
        self.annotations.write_text(text, encoding="utf-8")

    def label_rows(self) -> list[str]:
        """labels.csv data lines (without the header)."""
        return self.labels.read_text(encoding="utf-8").splitlines()[1:]

    def write_labels(self, rows: list[str]) -> None:
        self.labels.write_text("ID,target\n" + "".join(f"{r}\n" for r in rows), encoding="utf-8")


def draw_document(width: int, height: int, boxes: list[tuple[int, int, int, int]], seed: int) -> np.ndarray:
    """RGB uint8 page: light, slightly noisy paper with dark text-like boxes (striped like glyph rows)."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width, 3), 235, np.uint8)
    page = np.clip(page.astype(np.int16) + rng.integers(-8, 9, page.shape), 0, 255).astype(np.uint8)
    for x0, y0, x1, y1 in boxes:
        cv2.rectangle(page, (x0, y0), (x1 - 1, y1 - 1), (25, 25, 35), thickness=-1)
        for x in range(x0 + 3, x1 - 1, 6):  # light gaps between "characters"
            cv2.line(page, (x, y0 + 2), (x, y1 - 3), (70, 70, 80), 1)
    return page


def layout_boxes(width: int, height: int, count: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    """`count` non-overlapping line boxes stacked down the page, each at least 8 px tall."""
    line_h = max(8, height // (2 * count + 1))
    boxes = []
    for i in range(count):
        y0 = line_h * (2 * i + 1)
        x0 = int(rng.integers(4, width // 4))
        x1 = int(rng.integers(width // 2, width - 4))
        boxes.append((x0, y0, x1, min(height - 2, y0 + line_h)))
    return boxes


def quad(box: tuple[float, float, float, float]) -> list[list[float]]:
    """(x0, y0, x1, y1) -> UFO points, clockwise from top-left."""
    x0, y0, x1, y1 = box
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def write_image(path: Path, rgb: np.ndarray) -> None:
    """Save RGB pixels as JPEG (quality 95) or PNG, by suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                            [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else [])
    assert ok, path
    path.write_bytes(data.tobytes())


def build_dataset(root: Path, n_images: int = 8, size: tuple[int, int] = (160, 120), words: int = 3,
                  name: str = SOURCE_NAME, seed: int = 0) -> Dataset:
    """Write a tiny detection + classification dataset under `root/raw/<name>/`.

    Args:
        root: fake repository root (created).
        n_images: images `doc_000.jpg`, `doc_001.png`, ... (even indices JPEG, odd PNG),
            classes alternating so every class has n_images / 2 images.
        size: (width, height) of every image; odd images are transposed (portrait) for variety.
        words: dark word boxes per image, each annotated as a quad with a transcription.
        name: source name.
        seed: drawing/layout seed.
    Returns:
        The `Dataset` (paths, boxes, sizes, classes).
    """
    base = root / "raw" / name
    ds = Dataset(root=root, name=name, images=base / "images", annotations=base / "annotations.json",
                 labels=base / "labels.csv", meta=base / "meta.csv")
    rng = np.random.default_rng(seed)
    targets = sorted(CLASSES)
    ufo, rows = {}, []
    for i in range(n_images):
        file = f"doc_{i:03d}.{'jpg' if i % 2 == 0 else 'png'}"
        width, height = size if i % 4 < 2 else size[::-1]
        boxes = layout_boxes(width, height, words, rng)
        write_image(ds.images / file, draw_document(width, height, boxes, seed * 1000 + i))
        target = targets[i % len(targets)]
        ds.boxes[file], ds.sizes[file], ds.classes[file] = boxes, (width, height), CLASSES[target]
        ufo[file] = {"img_w": width, "img_h": height, "words": {
            f"{j + 1:04d}": {"points": quad(box), "transcription": f"WORD{j}"} for j, box in enumerate(boxes)}}
        rows.append(f"{file},{target}")
    ds.write_ufo({"images": ufo})
    ds.write_labels(rows)
    ds.meta.write_text("target,class_name\n" + "".join(f"{k},{v}\n" for k, v in CLASSES.items()), encoding="utf-8")
    return ds


def params_dict(sources: list[dict], overrides: dict | None = None) -> dict:
    """A small params mapping (unlisted keys keep their schema defaults) for `data.source: sources`.

    Args:
        sources: `data.sources` entries (e.g. `[ds.source()]`).
        overrides: dotted keys -> values, e.g. {"data.on_bad": "skip", "preprocess.workers": 2}.
    """
    params = {
        "seed": 7,
        "data": {"source": "sources", "on_bad": "error", "sources": sources,
                 "split": {"val": 0.25, "test": 0.25, "file": ""}},
        "preprocess": {"max_side": 128, "workers": 1, "jpeg_quality": 95, "min_word_side": 1.0},
    }
    for dotted, value in (overrides or {}).items():
        *parents, leaf = dotted.split(".")
        node = params
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return params


@pytest.fixture
def make_dataset(tmp_path):
    """Factory: `make_dataset(**build_dataset kwargs)` -> Dataset rooted at `tmp_path / 'repo'`."""
    def factory(root: Path | None = None, **kwargs) -> Dataset:
        return build_dataset(root or tmp_path / "repo", **kwargs)
    return factory


@pytest.fixture
def write_params():
    """`write_params(ds_or_root, overrides=None, sources=None)` -> path of `<root>/params.yaml`.

    Sources default to `[ds.source()]`; overrides are dotted keys (see `params_dict`).
    """
    def write(ds: Dataset | Path, overrides: dict | None = None, sources: list[dict] | None = None) -> Path:
        root = ds.root if isinstance(ds, Dataset) else Path(ds)
        if sources is None:
            sources = [ds.source()]
        path = root / "params.yaml"
        path.write_text(yaml.safe_dump(params_dict(sources, overrides), sort_keys=False), encoding="utf-8")
        return path
    return write


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the end-to-end tests marked slow (CI does)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip_slow = pytest.mark.skip(reason="slow test: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture(scope="session")
def tiny_baseline(tmp_path_factory):
    """A temporary git + DVC repo of the working tree with the tiny profile (tests/dvc_repo.py), after
    one `dvc repro`, committed as its baseline. Shared by the end-to-end DVC tests, which restore the
    workspace when they change it. Returns (repo path, that repro's CompletedProcess)."""
    from dvc_repo import dvc, make_repo, run

    repo = make_repo(tmp_path_factory.mktemp("tiny") / "repo")
    first = dvc("repro", cwd=repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "baseline"], repo)
    return repo, first


def kill_after_first_checkpoint(command: list[str], checkpoint: Path, delay: float, **popen) -> int:
    """Start `command`, SIGKILL it `delay` seconds after `checkpoint` appears (epoch 1 saved, so the
    kill lands in epoch 2), and return its exit code. `popen`: cwd, env, ... for subprocess.Popen."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    return process.wait()
