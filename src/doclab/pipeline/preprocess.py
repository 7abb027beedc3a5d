"""The `preprocess` stage: every source -> resized images, normalised annotations, labels, splits."""
from __future__ import annotations

import csv
import functools
import io
import multiprocessing
import os
import signal
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from doclab.config import Params
from doclab.data.formats.ufo import ufo_document, ufo_image_entry
from doclab.data.records import DataError, Item, Rejection
from doclab.data.sources import collect_items
from doclab.data.splits import assign_splits, read_split_file
from doclab.data.worker import Processed, WorkerSettings, process_item, processed_key
from doclab.errors import DoclabError
from doclab.io import atomic_directory, atomic_write_json, atomic_write_text, staged_outputs
from doclab.processes import leave_with

SHOWN_PROBLEMS = 8


def _items(params: Params, root: Path) -> tuple[list[Item], list[Rejection]]:
    if params.data.source == "synthetic":
        count = params.data.synthetic.num_images
        return [Item(id=f"synthetic/doc_{i:05d}.jpg", source="synthetic") for i in range(count)], []
    items, problems = collect_items(params.data.sources, root)
    seen: set[str] = set()
    unique = []
    for item in items:
        if processed_key(item.id) in seen:
            problems.append(Rejection(item.id, f"duplicate image id {processed_key(item.id)!r} (kept the first)"))
            continue
        seen.add(processed_key(item.id))
        unique.append(item)
    return unique, problems


def _quiet_worker(parent: int) -> None:
    """Pool workers leave at once on SIGTERM (the pool's own shutdown, or a kill of the process group),
    ignore Ctrl-C (the main process handles it), and leave when `parent` (the main process) is gone.

    A task's exception travels back to the main process, which reports it; the worker's own stderr
    would only ever show the BrokenPipeError of a result sent while the main process was stopping.
    """
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(128 + signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (for the worker's lifetime)
    leave_with(parent)


def _run_workers(items: list[Item], settings: WorkerSettings, workers: int) -> list[Processed]:
    """`process_item` of every item, in order, in `workers` spawned processes (here when 1).

    Raises:
        DoclabError: a worker process died (killed, out of memory). A ProcessPoolExecutor notices
            that; multiprocessing.Pool loses the dead worker's tasks and waits for them forever.
    """
    work = functools.partial(process_item, settings=settings)
    if workers == 1 or len(items) < 4:
        return [work(item) for item in tqdm(items, desc="preprocess", unit="img")]
    # spawn, not fork: torch/OpenCV thread pools in a forked child can deadlock.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_quiet_worker,
                             initargs=(os.getpid(),)) as pool:
        try:
            return list(tqdm(pool.map(work, items, chunksize=4), total=len(items), desc="preprocess", unit="img"))
        except BrokenProcessPool:
            raise DoclabError("preprocess.workers: a worker process stopped before its images were done (killed, "
                              "or out of memory?): rerun, or set preprocess.workers: 1") from None
        except BaseException:
            # SIGTERM, Ctrl-C, a bad image: drop the queued images and wait only for those in hand, so no
            # worker writes into the temp folder after it is removed on the way out.
            pool.shutdown(wait=True, cancel_futures=True)
            raise


def _fail_on_problems(problems: list[Rejection]) -> None:
    shown = "; ".join(p.line() for p in problems[:SHOWN_PROBLEMS])
    more = f"; and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
    raise DataError(f"{len(problems)} bad input(s): {shown}{more} "
                    "(fix them, or set data.on_bad: skip to drop them and list them in rejected.json)")


def _labels_csv(results: list[Processed]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["ID", "target"])
    writer.writerows([r.key, r.label] for r in results if r.label is not None)
    return buffer.getvalue()


def _statistics(results: list[Processed], splits: dict[str, list[str]], rejected: list, notes: list) -> dict:
    by_key = {r.key: r for r in results}
    words = [len(r.words) for r in results if r.words is not None]
    heights = [float(np.ptp(w.points[:, 1])) for r in results if r.words for w in r.words]
    stats: dict = {"rejected": len(rejected), "clipped": len(notes)}
    for split, keys in splits.items():
        members = [by_key[k] for k in keys]
        stats[split] = {
            "images": len(members),
            "detection_images": sum(m.words is not None for m in members),
            "classes": dict(sorted(Counter(m.label for m in members if m.label is not None).items())),
        }
    if words:
        stats["words_per_image"] = {"mean": round(float(np.mean(words)), 2), "min": min(words), "max": max(words)}
    if heights:
        p5, p50, p95 = np.percentile(heights, [5, 50, 95])
        stats["word_height_px"] = {"p5": round(float(p5), 2), "p50": round(float(p50), 2), "p95": round(float(p95), 2)}
    return stats


def _check_splits(splits: dict[str, list[str]], params: Params) -> None:
    # A split file decides the test split: a set shipped as train + val only (its test part held out
    # elsewhere) runs the whole DAG, and evaluate reports "no test split".
    test = 0.0 if params.data.split.file else params.data.split.test
    fractions = {"train": 1.0, "val": params.data.split.val, "test": test}
    for split, keys in splits.items():
        if not keys and fractions[split] > 0:
            raise DataError(f"split '{split}' is empty after validation: add images or change data.split.{split}"
                            if split != "train" else "split 'train' is empty after validation: add images, or lower data.split.val "
                            f"({fractions['val']}) / data.split.test ({fractions['test']}), which take the rest")


def _write_outputs(out: Path, results: list[Processed], splits: dict, rejected: list, notes: list) -> None:
    detection = {r.key: ufo_image_entry(r.width, r.height, list(r.words),
                                        {"source": r.source, "source_size": list(r.source_size)})
                 for r in results if r.words is not None}
    atomic_write_json(out / "annotations.json", ufo_document(detection))
    atomic_write_text(out / "labels.csv", _labels_csv(results))
    atomic_write_json(out / "classes.json", sorted({r.label for r in results if r.label is not None}))
    atomic_write_json(out / "splits.json", splits)
    atomic_write_json(out / "rejected.json", {
        "rejected": [{"item": p.item, "reason": p.reason} for p in rejected],
        "clipped": [{"item": p.item, "reason": p.reason} for p in notes],
    })


def preprocess(params: Params, root: Path, out: Path, metrics_path: Path) -> dict:
    """Run the whole stage; `out` and `metrics_path` are replaced together, so a failure leaves the old outputs intact.

    Args:
        params: validated params.
        root: folder that `data.sources` paths start from.
        out: output folder (data/processed).
        metrics_path: where the data statistics JSON goes (metrics/data.json).
    Returns:
        The statistics written to `metrics_path`.
    Raises:
        DataError: bad input with `data.on_bad: error`, or an empty dataset/split (one line).
    """
    items, problems = _items(params, root)
    with staged_outputs():  # data/processed and metrics/data.json land together or not at all
        with atomic_directory(out) as tmp:
            settings = WorkerSettings(tmp / "images", params.preprocess.max_side, params.preprocess.jpeg_quality,
                                      params.preprocess.min_word_side, params.seed, params.data.synthetic.long_side,
                                      params.data.synthetic.granularity)
            results = _run_workers(items, settings, params.preprocess.workers)
            problems += [p for r in results for p in r.problems]
            notes = [n for r in results for n in r.notes]
            if problems and params.data.on_bad == "error":
                _fail_on_problems(problems)
            results = [r for r in results if r.ok]
            if not results:
                raise DataError("no usable images: the configured data sources are empty or every image was rejected")
            groups = {r.key: r.label if r.label is not None else f"source:{r.source}" for r in results}
            split = params.data.split
            dropped = {processed_key(p.item) for p in problems}  # skipped images a split file may still name
            explicit = read_split_file(root / split.file, sorted(groups), dropped) if split.file else None
            splits = assign_splits(groups, split.val, split.test, params.seed, explicit)
            _check_splits(splits, params)
            _write_outputs(tmp, results, splits, problems, notes)
            stats = _statistics(results, splits, problems, notes)
        atomic_write_json(metrics_path, stats)
    return stats
