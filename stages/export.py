"""Stage `export`: models/ -> models/deploy/ (ONNX models + deploy.json), metrics/export.json (parity on val)."""
import argparse
from pathlib import Path

from doclab.config import load_params
from doclab.errors import run_stage
from doclab.pipeline.export import run_export


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--models", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    args = parser.parse_args()
    metrics = run_export(load_params(args.params), args.data, args.models, args.out, args.metrics)
    parts = []
    if "detector" in metrics:
        detector = metrics["detector"]
        parts.append(f"max |dp| {detector['max_prob_diff']:.2g}, CLEval H-mean torch "
                     f"{detector['torch']['cleval/hmean']:.4f} / onnx {detector['onnx']['cleval/hmean']:.4f}")
    if "classifier" in metrics:
        classifier = metrics["classifier"]
        parts.append(f"document type top-1 agreement {classifier['images'] - classifier['top1_disagreements']}"
                     f"/{classifier['images']}")
    print(f"export: {args.out}; val parity: {', '.join(parts)}")


if __name__ == "__main__":
    run_stage(main)
