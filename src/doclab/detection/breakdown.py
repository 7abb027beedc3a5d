"""Detection scores per source-image size: do the big A4 scans score like the small receipt photos?

    groups = size_groups(source_sizes(Path("data/processed")), keys)   # {key: "905x1280" or "other sizes"}
    size_breakdown(rows, groups)   # {"905x1280": {"images": 8, "cleval/hmean": .., ...}, "other sizes": {...}}

A data set mixes capture sizes (SROIE: 81 of 626 receipts are 4961x7016 scans, the rest 436-1000
px wide photos and scans). Every source size that holds at least `MIN_SHARE` of a split's images
(and `MIN_IMAGES`) is its own group; the others are pooled as "other sizes". Group metrics are the
split metrics recomputed from the per-image rows (the statistics `doclab.metrics.bootstrap` uses),
so a group of one split is scored exactly as the whole split is.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from doclab.io import read_json
from doclab.metrics.bootstrap import DETECTION_STATISTICS, detection_table

MIN_SHARE = 0.05
MIN_IMAGES = 3
OTHER = "other sizes"
REPORTED = ("cleval/hmean", "cleval/precision", "cleval/recall", "iou/hmean")


def source_sizes(data_dir: Path) -> dict[str, tuple[int, int]]:
    """{key: (width, height) of the source image} from the processed annotations.json.

    Images preprocessed before sizes were recorded fall back to their processed size.
    """
    images = read_json(Path(data_dir) / "annotations.json")["images"]
    return {key: tuple(entry.get("source_size") or (entry["img_w"], entry["img_h"])) for key, entry in images.items()}


def size_groups(sizes: Mapping[str, tuple[int, int]], keys: Sequence[str]) -> dict[str, str]:
    """The group of each key: "WxH" for a source size common in `keys`, else OTHER."""
    labels = {key: f"{sizes[key][0]}x{sizes[key][1]}" for key in keys}
    counts = Counter(labels.values())
    common = {label for label, count in counts.items() if count >= max(MIN_IMAGES, MIN_SHARE * len(keys))}
    return {key: label if label in common else OTHER for key, label in labels.items()}


def size_breakdown(rows: Sequence[Mapping], groups: Mapping[str, str]) -> dict[str, dict[str, float]]:
    """Split metrics of each group of per-image rows.

    Args:
        rows: `DetectionScores.per_image()` rows ("image" is the key).
        groups: `size_groups(...)` of those keys.
    Returns:
        {group: {"images", "cleval/hmean", "cleval/precision", "cleval/recall", "iou/hmean",
        "num_split", "num_merge"}}, largest group first (ties by name).
    """
    members: dict[str, list[Mapping]] = {}
    for row in rows:
        members.setdefault(groups[row["image"]], []).append(row)
    out = {}
    for group, group_rows in sorted(members.items(), key=lambda item: (-len(item[1]), item[0])):
        table = detection_table(group_rows)
        scores = {"images": len(group_rows)}
        for name in REPORTED:
            statistic = DETECTION_STATISTICS[name]
            sums = np.array([[table[column].sum() for column in statistic.columns]])
            scores[name] = round(float(statistic.value(sums, len(group_rows))[0]), 6)
        scores["num_split"] = int(sum(row["num_splitted"] for row in group_rows))
        scores["num_merge"] = int(sum(row["num_merged"] for row in group_rows))
        out[group] = scores
    return out
