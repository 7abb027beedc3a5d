"""Pretraining -> fine-tuning in the DAG, with real DVC on the tiny profile: `dvc exp run -S
pretrain.source=synthetic` pretrains on line-level synthetic documents and fine-tunes from the
result; a fine-tuning-only change reruns train_detector alone; `dvc exp show` carries both stages'
metrics. `pretrain.source: none` (the "no pretraining" marker) runs in every other pipeline test and is
checked in test_pipeline_dvc.
"""
import csv
import io
import json

import pytest
import torch
from dvc_repo import TINY_PROFILE, dvc, make_repo, ran_stages

pytestmark = pytest.mark.slow

PROFILE = {**TINY_PROFILE, "pretrain.synthetic.num_images": 12, "pretrain.synthetic.long_side": 512,
           "pretrain.val": 0.25, "pretrain.train.epochs": 1}
TRAINING = {"preprocess", "pretrain_detector", "train_detector"}


def _weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def test_pretraining_feeds_fine_tuning_and_fine_tuning_changes_skip_it(tmp_path):
    repo = make_repo(tmp_path / "repo", PROFILE)

    # On: pretraining runs on line-level synthetic pages, fine-tuning loads every tensor of it.
    result = dvc("exp", "run", "-S", "pretrain.source=synthetic", "train_detector", cwd=repo)
    assert ran_stages(result) == TRAINING
    banners = [line.split(":")[0] for line in result.stdout.splitlines() if " M params) on " in line]
    assert banners == ["pretrain_detector", "train_detector"], result.stdout
    loaded = [line for line in result.stdout.splitlines() if line.startswith("init_from models/pretrain_detector.pt")]
    assert len(loaded) == 1 and "loaded" in loaded[0] and "kept" not in loaded[0], result.stdout
    pretrain_metrics = json.loads((repo / "dvclive/pretrain_detector/metrics.json").read_text())
    assert {"recall", "precision", "hmean"} <= set(pretrain_metrics["val"]["cleval"])
    data = json.loads((repo / "checkpoints/pretrain_detector/data.json").read_text())
    assert (data["train"]["images"], data["val"]["images"], data["test"]["images"]) == (9, 3, 0)
    pretrained = _weights(repo / "models/pretrain_detector.pt")

    # A fine-tuning-only change: pretraining is not rerun and its model stays as it was.
    result = dvc("exp", "run", "-S", "pretrain.source=synthetic", "-S", "detector.train.lr=2.0e-3", "train_detector",
                 cwd=repo)
    assert ran_stages(result) == {"train_detector"}
    assert all(torch.equal(pretrained[name], value) for name, value in _weights(repo / "models/pretrain_detector.pt").items())

    # `dvc exp show` lists both experiments with both stages' metrics.
    table = list(csv.DictReader(io.StringIO(dvc("exp", "show", "--csv", cwd=repo).stdout)))
    experiments = [row for row in table if row.get("Experiment")]
    assert len(experiments) == 2, table
    for stage in ("pretrain_detector", "train_detector"):
        column = f"dvclive/{stage}/metrics.json:val.cleval.hmean"
        assert column in table[0], list(table[0])
        assert all(0.0 <= float(row[column]) <= 1.0 for row in experiments), (column, experiments)
    assert all(row["pretrain.source"] == "synthetic" for row in experiments)
