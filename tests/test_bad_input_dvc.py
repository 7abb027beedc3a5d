"""Bad input end to end: `dvc repro` in a real git repo on a dataset with a corrupt image, a missing
image and a degenerate polygon. `on_bad: error` stops at preprocess with one line naming all three and
leaves no output behind; `on_bad: skip` succeeds and lists them in rejected.json."""
import json
from pathlib import Path

import pytest
import yaml
from conftest import build_dataset
from dvc_repo import dvc, make_repo, ran_stages

pytestmark = pytest.mark.slow
BAD = {"docs/doc_000.jpg": "not a readable image",
       "docs/ghost.jpg": "annotation for a missing image",
       "docs/doc_003.png word 1": "zero-area polygon"}


def spoil(repo: Path) -> dict:
    """Write an 8-image UFO dataset under data/raw/docs with the three BAD problems; its `data.sources` entry."""
    ds = build_dataset(repo / "data")
    jpeg = (ds.images / "doc_000.jpg").read_bytes()
    (ds.images / "doc_000.jpg").write_bytes(jpeg[:2] + bytes(range(256)) + jpeg[258:])
    doc = ds.ufo()
    doc["images"]["ghost.jpg"] = doc["images"]["doc_001.png"]
    doc["images"]["doc_003.png"]["words"]["0001"]["points"] = [[10, 10], [20, 10], [30, 10], [40, 10]]
    ds.write_ufo(doc)
    return {key: f"data/{value}" if key not in ("name", "format") else value for key, value in ds.source().items()}


def test_bad_dataset_fails_preprocess_in_one_line_then_skip_lists_it(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    source = spoil(repo)
    make_repo(repo, {"data.source": "sources", "data.sources": [source], "data.split.val": 0.25,
                     "data.split.test": 0.25, "preprocess.max_side": 128})

    failed = dvc("repro", cwd=repo, check=False)
    assert failed.returncode != 0 and ran_stages(failed) == {"preprocess"}
    errors = [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: 3 bad input(s): "), failed.stderr
    for item, reason in BAD.items():
        assert f"{item}: {reason}" in errors[0]
    assert "data.on_bad: skip" in errors[0]
    assert not (repo / "data/processed").exists() and not (repo / "metrics/data.json").exists()
    assert sorted(p.name for p in (repo / "data").iterdir() if p.name != ".gitignore") == ["raw"]  # no temp folder
    assert not (repo / "dvc.lock").exists()

    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["on_bad"] = "skip"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dvc("repro", "preprocess", cwd=repo)
    rejected = json.loads((repo / "data/processed/rejected.json").read_text())
    listed = json.dumps(rejected)
    for item, reason in BAD.items():
        assert item.split(" word")[0] in listed and reason in listed, listed
    stats = json.loads((repo / "metrics/data.json").read_text())
    assert stats["rejected"] == 3
    assert "up to date" in dvc("status", "preprocess", cwd=repo).stdout

    # A failing run after a good one: DVC deletes the outputs before the stage runs; the line says how
    # to get them back, and `dvc checkout preprocess` does.
    good = (repo / "data/processed/rejected.json").read_bytes()
    params["data"]["on_bad"] = "error"
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = dvc("repro", "preprocess", cwd=repo, check=False)
    errors = [line for line in (failed.stdout + failed.stderr).splitlines() if line.startswith("error: ")]
    assert failed.returncode != 0 and len(errors) == 1
    assert errors[0].endswith("[dvc removed this stage's previous outputs before it ran: `dvc checkout preprocess` "
                              "restores the cached ones, `git checkout -- metrics plots dvclive` the committed ones]")
    assert not (repo / "data/processed").exists()
    dvc("checkout", "preprocess", cwd=repo)
    assert (repo / "data/processed/rejected.json").read_bytes() == good
