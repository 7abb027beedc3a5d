"""`doclab report`: rows from `dvc exp show --json`, the Markdown table, and a real DVC repo end to end."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from doclab.cli import main
from doclab.experiments.report import ReportError, write_report
from doclab.experiments.report_table import (
    END_MARKER,
    START_MARKER,
    ExperimentRow,
    experiment_rows,
    format_duration,
    lookup,
    render_table,
    splice_table,
    sum_epoch_times,
)

# `dvc exp show --json` (DVC 3.67) of a repo with a baseline commit and two experiments, trimmed
# ("deps"/"outs" emptied). The workspace equals experiment "big" (dvc exp run leaves it so);
# "flat1" uses flat dotted metric keys; "fallbk" has only dvclive and ensemble metrics; the oldest
# commit predates the pipeline (no params, no metrics).
CAPTURED_EXP_SHOW = json.loads("""
[{"rev": "workspace", "name": null, "error": null, "experiments": null,
  "data": {"rev": "workspace", "timestamp": null, "deps": {}, "outs": {}, "meta": {},
   "params": {"params.yaml": {"data": {"model": "resnet18", "image_size": 640, "batch_size": "auto",
                                       "postprocess": {"thresh": 0.2, "box_thresh": 0.4}}}},
   "metrics": {"metrics/evaluate.json": {"data": {"detect": {"cleval": {"hmean": 0.64}}}}}}},
 {"rev": "a9e0ef4ae8cfec2ed5e21819ae55c740ffd61f38", "name": "main", "error": null,
  "data": {"rev": "a9e0ef4ae8cfec2ed5e21819ae55c740ffd61f38", "timestamp": "2026-11-21T14:12:26",
   "deps": {}, "outs": {}, "meta": {},
   "params": {"params.yaml": {"data": {"model": "resnet18", "image_size": 256, "batch_size": 8,
                                       "postprocess": {"thresh": 0.3, "box_thresh": 0.4}}}},
   "metrics": {"metrics/evaluate.json": {"data": {"detect": {"cleval": {"hmean": 0.256}},
                                                  "classify": {"macro_f1": 0.5}}},
               "dvclive/train_detector/metrics.json": {"data": {"best": {"cleval": {"hmean": 0.1}}}}}},
  "experiments": [
   {"name": "big", "executor": null, "revs": [
    {"rev": "bac0629fd2f70730b9f1136c0a9c12ccb23e7552", "name": "big", "error": null, "experiments": null,
     "data": {"rev": "bac0629fd2f70730b9f1136c0a9c12ccb23e7552", "timestamp": "2026-11-21T14:12:38",
      "deps": {}, "outs": {}, "meta": {},
      "params": {"params.yaml": {"data": {"model": "resnet18", "image_size": 640, "batch_size": "auto",
                                          "postprocess": {"thresh": 0.2, "box_thresh": 0.4}}}},
      "metrics": {"metrics/evaluate.json": {"data": {"detect": {"cleval": {"hmean": 0.64}}}}}}}]},
   {"name": "flat1", "executor": null, "revs": [
    {"rev": "0257a637e810847449d4e2eee53e2ef64ba9c08a", "name": "flat1", "error": null, "experiments": null,
     "data": {"rev": "0257a637e810847449d4e2eee53e2ef64ba9c08a", "timestamp": "2026-11-21T14:12:32",
      "deps": {}, "outs": {}, "meta": {},
      "params": {"params.yaml": {"data": {"model": "hrnet|w18", "image_size": 320, "batch_size": "auto",
                                          "postprocess": {"thresh": 0.25, "box_thresh": 0.5}}}},
      "metrics": {"metrics/evaluate.json": {"data": {"detect.cleval.hmean": 0.32, "classify.macro_f1": 0.75}}}}}]},
   {"name": "fallbk", "executor": null, "revs": [
    {"rev": "77c1e2d0a6b34f1f9e2a0e3c4d5b6a7980f1e2d3", "name": "fallbk", "error": null, "experiments": null,
     "data": {"rev": "77c1e2d0a6b34f1f9e2a0e3c4d5b6a7980f1e2d3", "timestamp": "2026-11-21T14:13:01",
      "deps": {}, "outs": {}, "meta": {},
      "params": {"params.yaml": {"data": {"model": "resnet18", "image_size": 512}}},
      "metrics": {"dvclive/train_detector/metrics.json": {"data": {"best": {"cleval": {"hmean": 0.9167}}}},
                  "metrics/ensemble.json": {"data": {"chosen": "vote",
                      "val": {"mean": {"macro_f1": 0.8}, "vote": {"macro_f1": 0.85},
                              "member/resnet18": {"macro_f1": 0.7}}}}}}}]}]},
 {"rev": "bcf6c3779e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b", "name": null, "error": null, "experiments": null,
  "data": {"rev": "bcf6c3779e0d1c2b3a4f5e6d7c8b9a0f1e2d3c4b", "timestamp": "2026-11-20T09:00:00",
   "params": {}, "metrics": {}, "deps": {}, "outs": {}, "meta": {}}}]
""")
SECONDS = {"a9e0ef4ae8cfec2ed5e21819ae55c740ffd61f38": 381.4, "bac0629fd2f70730b9f1136c0a9c12ccb23e7552": 42.0}
GIT_ENV = {"GIT_AUTHOR_NAME": "doclab test", "GIT_AUTHOR_EMAIL": "test@doclab.local",
           "GIT_COMMITTER_NAME": "doclab test", "GIT_COMMITTER_EMAIL": "test@doclab.local",
           "DVC_NO_ANALYTICS": "1"}


def captured_rows() -> list[ExperimentRow]:
    return experiment_rows(CAPTURED_EXP_SHOW, lambda rev: SECONDS.get(rev))


def test_rows_from_captured_exp_show():
    rows = {row.name: row for row in captured_rows()}
    assert list(rows) == ["main", "big", "flat1", "fallbk"]  # workspace == big, pre-pipeline commit: left out
    assert rows["main"] == ExperimentRow("main", "a9e0ef4", "resnet18", 256, 8, 0.3, 0.4, 0.256, 0.5, 381.4,
                                         rev="a9e0ef4ae8cfec2ed5e21819ae55c740ffd61f38")
    assert rows["big"] == ExperimentRow("big", "bac0629", "resnet18", 640, "auto", 0.2, 0.4, 0.64, None, 42.0,
                                        rev="bac0629fd2f70730b9f1136c0a9c12ccb23e7552")
    assert (rows["flat1"].detect_hmean, rows["flat1"].classify_macro_f1) == (0.32, 0.75)
    assert (rows["fallbk"].detect_hmean, rows["fallbk"].classify_macro_f1) == (0.9167, 0.85)
    assert (rows["fallbk"].thresh, rows["fallbk"].batch_size, rows["fallbk"].train_seconds) == (None, None, None)


def test_changed_workspace_gets_its_own_row():
    shown = json.loads(json.dumps(CAPTURED_EXP_SHOW))
    shown[0]["data"]["params"]["params.yaml"]["data"]["image_size"] = 704
    rows = experiment_rows(shown, lambda rev: None)
    assert (rows[0].name, rows[0].commit, rows[0].image_size) == ("workspace", "-", 704)


def test_tuned_thresholds_win_over_the_untuned_params():
    entry = json.loads(json.dumps(CAPTURED_EXP_SHOW[0]))
    tune = {"best_params": {"thresh": 0.25, "box_thresh": 0.1}}
    entry.setdefault("data", {}).setdefault("metrics", {})["metrics/tune.json"] = {"data": tune}
    row = experiment_rows([entry], lambda rev: None)[0]
    assert (row.thresh, row.box_thresh) == (0.25, 0.1)


def test_evaluate_json_wins_over_dvclive_best():
    main_row = captured_rows()[0]
    assert main_row.detect_hmean == 0.256  # not the dvclive best (0.1)


def test_render_table():
    lines = render_table(captured_rows()).splitlines()
    assert lines[0].startswith("| experiment | commit | model | image_size | batch_size | thresh | box_thresh |")
    assert len(lines) == 2 + 4
    assert lines[2] == "| main | a9e0ef4 | resnet18 | 256 | 8 | 0.3 | 0.4 | 0.2560 | 0.5000 | 6m 21s |"
    assert lines[3] == "| big | bac0629 | resnet18 | 640 | auto | 0.2 | 0.4 | 0.6400 | - | 42s |"
    assert lines[4] == "| flat1 | 0257a63 | hrnet\\|w18 | 320 | auto | 0.25 | 0.5 | 0.3200 | 0.7500 | - |"
    assert lines[5] == "| fallbk | 77c1e2d | resnet18 | 512 | - | - | - | 0.9167 | 0.8500 | - |"


def test_lookup_nested_flat_and_mixed():
    keys = ("detect", "cleval", "hmean")
    assert lookup({"detect": {"cleval": {"hmean": 1}}}, keys) == 1
    assert lookup({"detect.cleval.hmean": 2}, keys) == 2
    assert lookup({"detect": {"cleval/hmean": 3}}, keys) == 3
    assert lookup({"detect": {"cleval": {"recall": 4}}}, keys) is None
    assert lookup({"detect": 5}, keys) is None


def test_sum_epoch_times_and_errors():
    assert sum_epoch_times("step\tepoch_time_s\n0\t39.5\n1\t36.5\n", "x.tsv") == 76.0
    assert sum_epoch_times("step\tepoch_time_s\n", "x.tsv") == 0.0
    with pytest.raises(ReportError, match=r"^abc:x.tsv: no 'epoch_time_s' column$"):
        sum_epoch_times("step\tloss\n0\t1.0\n", "abc:x.tsv")
    with pytest.raises(ReportError, match=r"^x.tsv: line 3: 'oops' is not a number$"):
        sum_epoch_times("step\tepoch_time_s\n0\t1.0\n1\toops\n", "x.tsv")


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (0.4, "0s"), (59.4, "59s"), (60, "1m 00s"),
                                                (381.4, "6m 21s"), (7500, "2h 05m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_splice_keeps_everything_outside_the_markers():
    head = "# My log\r\n\r\nhand notes *above*\n"
    tail = "\n## Notes\n\n- lr 3e-3 diverged on hrnet   \n\n\n"
    document = f"{head}{START_MARKER}\nstale table\nmore\n{END_MARKER}\n{tail}"
    updated = splice_table(document, "| t |\n", "experiments.md")
    assert updated == f"{head}{START_MARKER}\n| t |\n{END_MARKER}\n{tail}"
    assert splice_table(updated, "| t |\n", "experiments.md") == updated


def test_splice_new_document_and_document_without_markers():
    created = splice_table(None, "| t |\n", "experiments.md")
    assert created.startswith("# Experiments\n")
    assert f"{START_MARKER}\n| t |\n{END_MARKER}\n" in created
    assert created.index(END_MARKER) < created.index("## Notes")
    assert splice_table("# Log\nnotes", "| t |\n", "e.md") == f"# Log\nnotes\n\n{START_MARKER}\n| t |\n{END_MARKER}\n"


def test_splice_keeps_crlf_line_endings():
    document = f"# Log\r\n{START_MARKER}\r\nold\r\n{END_MARKER}\r\nnotes\r\n"
    assert splice_table(document, "| a |\n| b |\n", "e.md") == (
        f"# Log\r\n{START_MARKER}\r\n| a |\r\n| b |\r\n{END_MARKER}\r\nnotes\r\n")


@pytest.mark.parametrize(("document", "message"), [
    (f"{START_MARKER}\nx\n", r"found start at line 1, end at none"),
    (f"{END_MARKER}\n{START_MARKER}\n", r"found start at line 2, end at line 1"),
    (f"{START_MARKER}\n{END_MARKER}\n{START_MARKER}\n", r"appears 2 times \(lines 1, 3\)"),
])
def test_splice_marker_errors(document, message):
    with pytest.raises(ReportError, match=rf"^experiments.md: .*{message}"):
        splice_table(document, "| t |\n", "experiments.md")


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True,
                          capture_output=True, text=True)


def test_not_a_git_repository_is_one_line_error(tmp_path, capsys):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    assert main(["report", "--repo", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path}: not a git repository (DVC experiments live in git: git init, then commit)\n"
    assert not (tmp_path / "experiments.md").exists()


def test_no_dvc_yaml_is_one_line_error(tmp_path, capsys):
    git("init", "-q", cwd=tmp_path)
    assert main(["report", "--repo", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: no dvc.yaml, not a DVC pipeline\n"
    assert not (tmp_path / "experiments.md").exists()


def test_dvc_exp_show_failure_shows_its_last_stderr_line(tmp_path, monkeypatch):
    monkeypatch.setattr("doclab.experiments.report.EXP_SHOW_RETRY_S", 0.0)  # it fails on every try
    git("init", "-q", cwd=tmp_path)  # dvc.yaml but no `dvc init`
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    with pytest.raises(ReportError, match=r"dvc exp show failed: ERROR: you are not inside of a DVC repository"):
        write_report(tmp_path, tmp_path / "experiments.md")
    assert not (tmp_path / "experiments.md").exists()


def test_a_dvc_failure_is_named_by_its_error_line_not_the_support_banner():
    from doclab.experiments.report import _last_line

    stderr = ("ERROR: failed to collect 'exp-1': Unable to acquire lock\n"
              "Having any troubles? Hit us up at https://dvc.org/support, we are always happy to help!\n")
    assert _last_line(stderr) == "ERROR: failed to collect 'exp-1': Unable to acquire lock"
    assert _last_line("fatal: bad revision\n") == "fatal: bad revision" and _last_line("") == "no output"


WRITE_METRICS = '''\
"""Deterministic stand-in for the pipeline: metrics and dvclive epoch times from params.yaml."""
import json
import os

import yaml

params = yaml.safe_load(open("params.yaml"))
os.makedirs("metrics", exist_ok=True)
size = params["image_size"]
with open("metrics/evaluate.json", "w") as f:
    json.dump({"detect": {"cleval": {"hmean": size / 1000}}, "classify": {"macro_f1": 0.5}}, f)
for stage, times in (("train_detector", [size / 4, 10.0]), ("train_classifier/resnet18", [5.0])):
    perf = f"dvclive/{stage}/plots/metrics/perf"
    os.makedirs(perf, exist_ok=True)
    with open(f"{perf}/epoch_time_s.tsv", "w") as f:
        f.write("step\\tepoch_time_s\\n" + "".join(f"{i}\\t{t}\\n" for i, t in enumerate(times)))
'''
DVC_YAML = """\
stages:
  evaluate:
    cmd: python write_metrics.py
    deps:
    - write_metrics.py
    params:
    - model
    - image_size
    - batch_size
    - postprocess
    outs:
    - dvclive:
        cache: false
    metrics:
    - metrics/evaluate.json:
        cache: false
"""
PARAMS_YAML = "model: resnet18\nimage_size: 256\nbatch_size: 4\npostprocess:\n  thresh: 0.3\n  box_thresh: 0.4\n"


def dvc(*args: str, cwd: Path) -> None:
    env = {**os.environ, **GIT_ENV, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=env, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"dvc {' '.join(args)}:\n{result.stdout}\n{result.stderr}"


@pytest.mark.slow
def test_report_on_real_dvc_experiments(tmp_path, capsys, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    dvc("init", "-q", cwd=repo)
    dvc("config", "core.analytics", "false", cwd=repo)
    (repo / "write_metrics.py").write_text(WRITE_METRICS)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text(PARAMS_YAML)
    dvc("repro", "-q", cwd=repo)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "baseline", cwd=repo)
    dvc("exp", "run", "-q", "-n", "size320", "-S", "image_size=320", cwd=repo)
    dvc("exp", "run", "-q", "-n", "size640", "-S", "image_size=640", "-S", "postprocess.thresh=0.2", cwd=repo)

    head = "# Experiments\n\nhand-written intro\n\n"
    tail = "\n## Notes\n\n- size640 needs more epochs  \n"
    out = repo / "experiments.md"
    out.write_text(f"{head}{START_MARKER}\nold table\n{END_MARKER}\n{tail}")
    monkeypatch.chdir(repo)
    assert main(["report"]) == 0
    assert capsys.readouterr().out == "experiments.md: table of 3 experiments\n"
    first = out.read_text()
    assert first.startswith(f"{head}{START_MARKER}\n") and first.endswith(f"\n{END_MARKER}\n{tail}")
    rows = {line.split(" | ")[0].strip("| "): line for line in first.splitlines() if line.startswith("| size")}
    baseline = git("rev-parse", "--short=7", "HEAD", cwd=repo).stdout.strip()
    assert f"| main | {baseline} | resnet18 | 256 | 4 | 0.3 | 0.4 | 0.2560 | 0.5000 | 1m 19s |" in first
    assert rows["size320"].endswith(" | resnet18 | 320 | 4 | 0.3 | 0.4 | 0.3200 | 0.5000 | 1m 35s |")
    assert rows["size640"].endswith(" | resnet18 | 640 | 4 | 0.2 | 0.4 | 0.6400 | 0.5000 | 2m 55s |")
    assert "| workspace |" not in first  # the workspace is size640's result

    assert main(["report"]) == 0
    assert out.read_text() == first


def test_noise_marks_add_a_val_vs_best_column():
    rows = [dataclasses.replace(row, noise=mark) for row, mark in zip(captured_rows(), ("best", "within noise", None, "worse"))]
    lines = render_table(rows).splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header.index("val vs best") == header.index("CLEval H-mean") + 1
    unescaped_bar = r"(?<!\\)\|"  # a cell may hold an escaped bar (hrnet\|w18)
    cells = {line.split(" | ")[0].strip("| "): [c.strip() for c in re.split(unescaped_bar, line.strip("|"))]
             for line in lines[2:]}
    column = header.index("val vs best")
    assert [cells[name][column] for name in ("main", "big", "flat1", "fallbk")] == ["best", "within noise", "-", "worse"]
    assert "val vs best" not in render_table(captured_rows())  # no marks, no column
