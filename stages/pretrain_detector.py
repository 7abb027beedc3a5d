"""Stage `pretrain_detector`: `pretrain` data -> models/pretrain_detector.pt, checkpoints, dvclive metrics and
plots (the "no pretraining" marker with `pretrain.source: none`)."""
import argparse
from pathlib import Path

from doclab.config import load_params
from doclab.detection.model_file import no_pretraining_marker
from doclab.errors import run_stage
from doclab.pipeline.pretrain_detector import pretrain_detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--checkpoints", required=True, type=Path)
    parser.add_argument("--live", required=True, type=Path)
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = pretrain_detector(params, Path.cwd(), args.model, args.checkpoints, args.live)
    if metrics == no_pretraining_marker():
        print(f"pretrain_detector: pretraining is off (pretrain.source: none): marker -> {args.model}")
    elif metrics:
        print(f"pretrain_detector: best epoch {metrics['best_epoch']}: cleval/hmean {metrics['cleval/hmean']:.4f} "
              f"on {params.pretrain.source} val -> {args.model}")


if __name__ == "__main__":
    run_stage(main)
