"""The benchmark suite's outputs (bench.json, benchmarks.md) from a fake result, and its command line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
import suite  # noqa: E402
from timing import row  # noqa: E402

HOST = {"cpu": "Test CPU", "cores": 2, "usable_cores": 2, "gpu": "none", "python": "3.11", "platform": "test",
        "torch": "2.x", "numpy": "2.x", "opencv": "5.x", "cleval": "0.1.1", "date": "2030-01-01"}


def fake_result(speedup: float, profile: list[str] | None = None) -> dict:
    """A cleval-like result whose ratio is `speedup` (target 20x)."""
    return {"rows": [row("cleval (100 GT x 100 det)", 2.0, 2.0 * speedup, "ms/image", ">= 20x", speedup >= 20,
                         check="max per-image |hmean - package| 1.0e-08 (equal within 0.002)")],
            "metrics": {"cleval.ms_per_image": 2.0, "cleval.speedup": speedup},
            "notes": ["5 pages"], "profile": profile or []}


def settings() -> dict:
    return {"date": HOST["date"], "repeats": 1, "quick": True}


def test_writes_table_and_flat_json(tmp_path: Path) -> None:
    json_path, markdown_path = tmp_path / "metrics/bench.json", tmp_path / "benchmarks.md"
    suite.write_outputs({"cleval": fake_result(40.0)}, {"cleval": settings()}, json_path, markdown_path, HOST)

    written = json.loads(json_path.read_text())
    assert written["cleval.speedup"] == 40.0 and written["cleval.ms_per_image"] == 2.0
    assert written["machine"]["cpu"] == "Test CPU" and written["runs"]["cleval"]["quick"] is True
    assert all(isinstance(v, float) for k, v in written.items() if k not in ("machine", "runs"))
    text = markdown_path.read_text()
    assert "| benchmark | ours | reference | ratio | target | met |" in text
    assert "| cleval (100 GT x 100 det) | 2 ms/image | 80 ms/image | 40.0x | >= 20x | yes |" in text
    assert "Test CPU" in text and "Target not met" not in text


def test_target_not_met_shows_gap_and_profile(tmp_path: Path) -> None:
    markdown_path = tmp_path / "benchmarks.md"
    profile = ["   12.0 ms ( 80%)       1 calls  score_image (cleval.py:141)"]
    suite.write_outputs({"cleval": fake_result(10.0, profile)}, {"cleval": settings()}, tmp_path / "b.json",
                        markdown_path, HOST)
    text = markdown_path.read_text()
    assert "| 10.0x | >= 20x | **no** |" in text
    assert "**Target not met** (cleval (100 GT x 100 det)): ratio 10.0x, target >= 20x." in text
    assert profile[0] in text


def test_a_partial_run_keeps_the_other_benchmarks(tmp_path: Path) -> None:
    json_path, markdown_path = tmp_path / "bench.json", tmp_path / "benchmarks.md"
    pipeline = {"rows": [row("pipeline (tiny) preprocess", 3.0, None, "s", "-", None, check="peak RSS 300 MiB")],
                "metrics": {"pipeline.preprocess.wall_s": 3.0, "pipeline.preprocess.peak_rss_mb": 300.0},
                "notes": [], "profile": []}
    suite.write_outputs({"cleval": fake_result(40.0), "pipeline": pipeline},
                        {"cleval": settings(), "pipeline": settings()}, json_path, markdown_path, HOST)
    suite.write_outputs({"cleval": fake_result(25.0)}, {"cleval": settings()}, json_path, markdown_path, HOST)

    written = json.loads(json_path.read_text())
    assert written["cleval.speedup"] == 25.0 and written["pipeline.preprocess.wall_s"] == 3.0
    text = markdown_path.read_text()
    assert "25.0x" in text and "40.0x" not in text
    assert "| pipeline (tiny) preprocess | 3 s | - | - | - | - |" in text
    assert text.index("cleval (100") < text.index("pipeline (tiny)")


def test_unknown_benchmark_is_refused() -> None:
    with pytest.raises(SystemExit) as exit_info:
        suite.parse_args(["cleval", "nonsense"])
    assert exit_info.value.code == 2


def test_help_exits_zero() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "suite.py"), "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--quick" in done.stdout and "pipeline" in done.stdout
