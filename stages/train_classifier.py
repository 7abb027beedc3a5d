"""Stage `train_classifier@<member>`: data/processed -> models/classifier/<member>.pt and .npz, metrics, dvclive."""
import argparse
from pathlib import Path

from doclab.config import load_params
from doclab.errors import run_stage
from doclab.classification.no_data import NO_CLASSIFICATION_DATA, no_classification_data_marker
from doclab.pipeline.train_classifier import train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--member", required=True, help="a timm model name listed in classifier.members")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--logits", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--checkpoints", required=True, type=Path)
    parser.add_argument("--live", required=True, type=Path)
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = train_classifier(params, args.member, args.data, args.model, args.logits, args.metrics,
                               args.checkpoints, args.live)
    if metrics == no_classification_data_marker():
        print(f"train_classifier: {args.member}: {NO_CLASSIFICATION_DATA} (no image in {args.data} has a "
              f"document-type label): nothing trained, marker outputs -> {args.model}, {args.logits}")
    elif metrics:
        print(f"train_classifier: {args.member}: val accuracy {metrics['val']['accuracy']:.4f}, "
              f"macro_f1 {metrics['val']['macro_f1']:.4f} -> {args.model}, {args.logits}")


if __name__ == "__main__":
    run_stage(main)
