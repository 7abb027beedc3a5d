"""Stage `train_detector`: data/processed -> models/detector.pt, checkpoints, dvclive metrics and plots."""
import argparse
from pathlib import Path

from doclab.config import load_params
from doclab.errors import run_stage
from doclab.detection.model_file import NO_DETECTION_DATA, no_detection_data_marker
from doclab.pipeline.train_detector import train_detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--checkpoints", required=True, type=Path)
    parser.add_argument("--live", required=True, type=Path)
    parser.add_argument("--init", type=Path, help="models/pretrain_detector.pt (the pretrain_detector stage's model)")
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = train_detector(params, args.data, args.model, args.checkpoints, args.live, args.init)
    if metrics == no_detection_data_marker():
        print(f"train_detector: {NO_DETECTION_DATA} (no image in {args.data} has text polygons): nothing "
              f"trained, marker outputs -> {args.model}")
    elif metrics:
        print(f"train_detector: best epoch {metrics['best_epoch']}: cleval/hmean {metrics['cleval/hmean']:.4f}, "
              f"iou/hmean {metrics['iou/hmean']:.4f} -> {args.model}")


if __name__ == "__main__":
    run_stage(main)
