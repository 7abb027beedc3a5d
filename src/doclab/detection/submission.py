"""The competition submission format: `filename,polygons`, polygons 'x y x y ...' joined by '|'."""
from __future__ import annotations

from doclab.detection.postprocess import Detection


def submission_rows(detections: dict[str, list[Detection]]) -> list[tuple[str, str]]:
    """Competition CSV rows: (filename, polygons) with polygons 'x y x y ...' joined by '|'."""
    return [(key, "|".join(" ".join(f"{x:.0f} {y:.0f}" for x, y in d.points) for d in found))
            for key, found in detections.items()]
