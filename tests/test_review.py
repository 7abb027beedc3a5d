"""`doclab compare --md`: the review report, from a real git + DVC repo with two planted commits (no training).

Commit A and commit B share `data/processed` (five images, two GT words each); B's detections
improve two images (one by a whole H-mean point, one by a third), degrade two (by one and by a
third) and keep one; B's classifier fixes the four samples A got wrong; B changes three params.
"""
from __future__ import annotations

import dataclasses
import json
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from dvc.repo import Repo
from dvc_repo import run

from doclab.data.formats.ufo import ufo_document, ufo_image_entry
from doclab.data.records import Word
from doclab.experiments.compare import TaskRuns, compare_experiments
from doclab.experiments.review import confusion_section, write_review
from doclab.metrics.detection import DetectionScores

RESAMPLES = 2_000  # enough for the planted classification change to be "better", fast on 2 cores
KEYS = ["docs/img0.jpg", "docs/img1.jpg", "docs/img2.jpg", "docs/scan 3.jpg", "docs/img4.jpg"]
BOXES = [(20, 20, 150, 60), (30, 110, 260, 160)]  # GT words (x0, y0, x1, y1) of every 320x200 image
# Detected boxes (indices into BOXES) per image on each side.
FOUND_A = {"docs/img0.jpg": [0, 1], "docs/img1.jpg": [0], "docs/img2.jpg": [0, 1], "docs/scan 3.jpg": [],
           "docs/img4.jpg": [0, 1]}
FOUND_B = {"docs/img0.jpg": [0, 1], "docs/img1.jpg": [0, 1], "docs/img2.jpg": [], "docs/scan 3.jpg": [0, 1],
           "docs/img4.jpg": [0]}
IMPROVED = ["docs/scan 3.jpg", "docs/img1.jpg"]  # largest rise first
DEGRADED = ["docs/img2.jpg", "docs/img4.jpg"]  # largest fall first
PARAMS_A = {"train": {"lr": 0.001, "epochs": 3}, "postprocess": {"thresh": 0.3, "box_thresh": 0.4}, "seed": 0}
PARAMS_B = {"train": {"lr": 0.002, "epochs": 3, "warmup": 1}, "postprocess": {"thresh": 0.25, "box_thresh": 0.4},
            "seed": 0}
CHANGED_PARAMS = {"train.lr": ("0.001", "0.002"), "train.warmup": ("—", "1"), "postprocess.thresh": ("0.3", "0.25")}
CLASSES = ("invoice", "receipt")
LABELS = ["invoice"] * 4 + ["receipt"] * 4
PREDICTED_A = ["invoice", "invoice", "receipt", "receipt", "receipt", "receipt", "invoice", "invoice"]


def quad(box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


def detection_rows(found: dict[str, list[int]]) -> list[dict]:
    """Real per-image rows: DetectionScores on the planted polygons."""
    scores = DetectionScores()
    for key in KEYS:
        scores.update(key, [quad(b) for b in BOXES], [detected(BOXES[i]) for i in found[key]])
    return scores.per_image()


def detected(box: tuple[int, int, int, int]) -> np.ndarray:
    """A detection of a GT box, 4 px inside it: still a match, and its red line clear of the green one."""
    x0, y0, x1, y1 = box
    return quad((x0 + 4, y0 + 4, x1 - 4, y1 - 4))


def submission_csv(found: dict[str, list[int]]) -> str:
    lines = [f"{key},{'|'.join(' '.join(f'{v:.0f}' for v in detected(BOXES[i]).ravel()) for i in found[key])}"
             for key in KEYS]
    return "filename,polygons\n" + "\n".join(lines) + "\n"


def classification_rows(predicted: list[str]) -> list[dict]:
    return [{"image": f"cls/{i}.jpg", "label": label, "predicted": guess,
             "probabilities": {name: 0.9 if name == guess else 0.1 for name in CLASSES}}
            for i, (label, guess) in enumerate(zip(LABELS, predicted))]


def write_side(repo: Path, params: dict, found: dict[str, list[int]], predicted: list[str]) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    for split in ("test", "val"):
        (repo / "results" / split).mkdir(parents=True, exist_ok=True)
        (repo / "results" / split / "detection.json").write_text(json.dumps(detection_rows(found)))
    (repo / "results/test/classification.json").write_text(json.dumps(classification_rows(predicted)))
    (repo / "models/submission").mkdir(parents=True, exist_ok=True)
    (repo / "models/submission/detection.csv").write_text(submission_csv(found))


def write_processed(repo: Path) -> None:
    """Five light 320x200 'receipts' with dark word boxes, and their UFO annotations."""
    entries = {}
    for key in KEYS:
        image = np.full((200, 320, 3), 235, np.uint8)
        for x0, y0, x1, y1 in BOXES:
            cv2.rectangle(image, (x0 + 8, y0 + 10), (x1 - 8, y1 - 10), (40, 40, 40), -1)
        path = repo / "data/processed/images" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), image)
        entries[key] = ufo_image_entry(320, 200, [Word(quad(b), text="word") for b in BOXES])
    (repo / "data/processed/annotations.json").write_text(json.dumps(ufo_document(entries)))


def dvc_add(root: Path, *paths: str) -> None:
    """`dvc add` through DVC's Python API: the same code as the CLI, without a ~5 s interpreter start each."""
    with Repo(str(root)) as repo:
        repo.add([str(root / path) for path in paths])


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The git + DVC repo: HEAD~1 is A, HEAD is B; DVC-tracked data and submission in the local cache."""
    root = tmp_path_factory.mktemp("review") / "repo"
    root.mkdir()
    run(["git", "init", "-q", "-b", "main"], root)
    Repo.init(str(root))
    write_processed(root)
    write_side(root, PARAMS_A, FOUND_A, PREDICTED_A)
    dvc_add(root, "data/processed", "models/submission")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "A"], root)
    write_side(root, PARAMS_B, FOUND_B, LABELS)
    dvc_add(root, "models/submission")
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "B"], root)
    # Branch seed1: B's second run, another seed, one sample misclassified again (results only: git).
    run(["git", "checkout", "-qb", "seed1"], root)
    write_side(root, {**PARAMS_B, "seed": 1}, FOUND_B, ["receipt"] + LABELS[1:])
    run(["git", "commit", "-qam", "B seed 1"], root)
    run(["git", "checkout", "-q", "main"], root)
    assert not run(["git", "status", "--porcelain"], root).stdout  # every side fully committed
    return root


@pytest.fixture(scope="module")
def comparison(repo):
    return compare_experiments(str(repo), ["HEAD~1"], ["HEAD"], resamples=RESAMPLES)


def section(text: str, title: str) -> list[str]:
    """The lines of the `### title` section."""
    lines = text.splitlines()
    start = lines.index(f"### {title}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("### ")), len(lines))
    return lines[start:end]


def table_rows(lines: list[str]) -> list[list[str]]:
    """The body cells of every Markdown table in `lines` (header and separator rows dropped)."""
    rows, previous = [], ""
    for line in lines:
        if line.startswith("|") and not re.fullmatch(r"\|(\s*-*:?-+:?\s*\|)+", line) and previous.startswith("|"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
        previous = line
    return [row for row in rows if not set(row[0]) <= set("-:")]


def image_links(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text) + re.findall(r"<img[^>]*\bsrc=\"([^\"]+)\"", text)


def red_fraction(panel: np.ndarray) -> float:
    """Share of pixels drawn in the detection red (BGR ~ (0, 0, 230)), after JPEG."""
    b, g, r = panel[..., 0].astype(int), panel[..., 1].astype(int), panel[..., 2].astype(int)
    return float(np.mean((r > 150) & (g < 90) & (b < 90)))


def test_report_has_every_metric_params_diff_and_linked_pictures(repo, comparison, tmp_path):
    out = tmp_path / "review"
    path = write_review(repo, comparison, out)
    text = path.read_text()
    assert path == out / "review.md"
    assert text.startswith("## doclab review: B against A (test)\n")
    assert "`HEAD~1` (`" in text and "`HEAD` (`" in text

    metric_rows = {row[0]: row for row in table_rows(section(text, "Metrics"))}
    assert set(metric_rows) == set(comparison.metrics)
    verdicts = {row["verdict"] for row in comparison.metrics.values()}
    assert "better" in verdicts and "within noise" in verdicts  # both formats are exercised
    for name, row in comparison.metrics.items():
        low, high = row["ci95"]
        assert metric_rows[name][1:] == [f"{row['a']:.4f}", f"{row['b']:.4f}", f"{row['diff']:+.4f}",
                                         f"[{low:+.4f}, {high:+.4f}]",
                                         f"**{row['verdict']}**" if row["verdict"] in ("better", "worse")
                                         else row["verdict"]]
    assert f"{RESAMPLES} resamples, seed 0" in text

    params = {row[0].strip("`"): tuple(row[1:]) for row in table_rows(section(text, "Params"))}
    assert params == CHANGED_PARAMS

    links = image_links(text)
    assert links and all(link.startswith("images/") and not Path(link).is_absolute() for link in links)
    assert sorted(links) == sorted(f"images/{p.name}" for p in (out / "images").iterdir())  # no orphan either
    for link in links:
        picture = cv2.imread(str(out / link))
        assert picture is not None and picture.shape[1] <= 1000


def test_moved_images_are_the_planted_ones_with_a_left_and_b_right(repo, comparison, tmp_path):
    out = tmp_path / "review"
    text = write_review(repo, comparison, out).read_text()
    moved = section(text, "Images that moved most")
    halves = [moved[:moved.index("#### Degraded (B below A)")], moved[moved.index("#### Degraded (B below A)"):]]
    for lines, planted in zip(halves, (IMPROVED, DEGRADED)):
        rows = table_rows(lines)
        assert [row[1].strip("`") for row in rows] == planted
        a_hmean, b_hmean = float(rows[0][2]), float(rows[0][3])
        assert abs(a_hmean - b_hmean) == pytest.approx(1.0)  # the planted whole-point change comes first
        assert len(image_links("\n".join(lines))) == len(planted)
    # img2: A found both words, B none -> red boxes only in the left half.
    link = next(link for link in image_links(text) if "img2" in link)
    picture = cv2.imread(str(out / link))
    left, right = picture[:, :picture.shape[1] // 2], picture[:, picture.shape[1] // 2:]
    assert red_fraction(left) > 0.01 and red_fraction(right) < 0.001


def test_rerun_with_fewer_moved_images_leaves_no_stale_picture(repo, comparison, tmp_path):
    out = tmp_path / "review"
    write_review(repo, comparison, out, count=2)
    assert len(list((out / "images").iterdir())) == 4
    (out / "notes.txt").write_text("mine")  # other files of the folder are not the report's
    text = write_review(repo, comparison, out, count=1).read_text()
    pictures = sorted(p.name for p in (out / "images").iterdir())
    assert len(pictures) == 2 and sorted(link.split("/", 1)[1] for link in image_links(text)) == pictures
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["images", "notes.txt", "review.md"]  # no temp left


def test_failure_midway_keeps_the_previous_report_whole(repo, comparison, tmp_path):
    out = tmp_path / "review"
    write_review(repo, comparison, out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    runs = comparison.tasks["classification"]
    broken = dataclasses.replace(runs, b=[[{k: v for k, v in row.items() if k != "label"} for row in runs.b[0]]])
    # The classification section comes last: the pictures were already drawn when it fails.
    with pytest.raises(KeyError):
        write_review(repo, dataclasses.replace(comparison, tasks={**comparison.tasks, "classification": broken}), out,
                     count=1)
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in out.iterdir()) == ["images", "review.md"]


def test_confusion_change_shows_only_changed_cells(repo, comparison, tmp_path):
    text = write_review(repo, comparison, tmp_path / "review").read_text()
    lines = section(text, "Confusion-matrix change")
    assert "| true \\ predicted | invoice | receipt |" in lines
    assert {row[0]: row[1:] for row in table_rows(lines)} == {
        "invoice": ["+2 (2 → 4)", "-2 (2 → 0)"], "receipt": ["-2 (2 → 0)", "+2 (2 → 4)"]}
    runs = comparison.tasks["classification"]
    same = TaskRuns(runs.task, runs.images, runs.a, runs.a, runs.statistics)
    assert any(line.startswith("Unchanged") for line in confusion_section(same))
    assert not table_rows(confusion_section(same))


def test_side_with_two_runs_shows_seeds_spread_and_averaged_counts(repo, tmp_path):
    comparison = compare_experiments(str(repo), ["HEAD~1"], ["HEAD", "seed1"], resamples=200)
    text = write_review(repo, comparison, tmp_path / "review").read_text()
    assert re.search(r"- \*\*B\*\*: `HEAD` \(`[0-9a-f]{7}`\), `seed1` \(`[0-9a-f]{7}`\): 2 runs", text)
    params = {row[0].strip("`"): tuple(row[1:]) for row in table_rows(section(text, "Params"))}
    assert params == {**CHANGED_PARAMS, "seed": ("0", "0, 1")}
    rows = table_rows(section(text, "Metrics"))
    spread = {row[0]: row[1:] for row in rows if len(row) == 3}
    assert set(spread) == set(comparison.metrics)
    b_runs = comparison.metrics["classify.accuracy"]["b_runs"]
    assert b_runs == [1.0, 0.875] and spread["classify.accuracy"][1] == "0.9375 ± 0.0884 [0.8750, 1.0000]"
    confusion = section(text, "Confusion-matrix change")
    assert any("averaged over its runs (A 1, B 2)" in line for line in confusion)
    assert {row[0]: row[1:] for row in table_rows(confusion)}["invoice"] == ["+1.50 (2 → 3.50)", "-1.50 (2 → 0.50)"]
    assert any("Pictures show each side's first run" in line for line in section(text, "Images that moved most"))


def test_val_split_lists_images_with_a_note_instead_of_pictures(repo, tmp_path):
    comparison = compare_experiments(str(repo), ["HEAD~1"], ["HEAD"], split="val", resamples=200)
    out = tmp_path / "review"
    text = write_review(repo, comparison, out).read_text()
    assert text.startswith("## doclab review: B against A (val)\n")
    moved = section(text, "Images that moved most")
    assert any(line.startswith("No pictures: detections are only saved for the test split") for line in moved)
    assert [row[1].strip("`") for row in table_rows(moved)] == IMPROVED + DEGRADED
    assert image_links(text) == [] and list((out / "images").iterdir()) == []
    assert "### Confusion-matrix change" not in text  # no val classification results planted


def test_missing_dvc_cache_gives_a_note_not_a_failure(repo, comparison, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(repo, bare, symlinks=True)
    shutil.rmtree(bare / ".dvc" / "cache")
    for tracked in ("data/processed", "models/submission"):  # nor can the workspace copies stand in
        shutil.rmtree(bare / tracked)
    text = write_review(bare, comparison, tmp_path / "review").read_text()
    moved = section(text, "Images that moved most")
    note = next(line for line in moved if line.startswith("No pictures:"))
    assert "HEAD~1" in note and "models/submission/detection.csv" in note
    assert [row[1].strip("`") for row in table_rows(moved)] == IMPROVED + DEGRADED
    assert image_links(text) == []


def test_cli_compare_with_md_prints_the_table_and_writes_the_report(repo, tmp_path):
    out = tmp_path / "cli-review"
    result = run([str(Path(sys.executable).parent / "doclab"), "compare", "HEAD~1", "HEAD", "--md", str(out),
                  "--resamples", "500"], repo, timeout=120)
    assert "detect.cleval.hmean" in result.stdout and "classify.macro_f1" in result.stdout
    assert "verdict" in result.stdout.splitlines()[2]
    text = (out / "review.md").read_text()
    assert image_links(text) and all((out / link).is_file() for link in image_links(text))
