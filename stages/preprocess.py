"""Stage `preprocess`: sources in params.yaml -> data/processed + metrics/data.json."""
import argparse
from pathlib import Path

from doclab.config import load_params
from doclab.errors import run_stage
from doclab.pipeline.preprocess import preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    args = parser.parse_args()
    params = load_params(args.params)
    stats = preprocess(params, Path.cwd(), args.out, args.metrics)
    counts = ", ".join(f"{split}={stats[split]['images']}" for split in ("train", "val", "test"))
    print(f"preprocess: {counts} images, {stats['rejected']} rejected -> {args.out}")


if __name__ == "__main__":
    run_stage(main)
