"""Stage `ensemble`: models/classifier/<member>.npz -> models/ensemble.json, metrics/ensemble.json, plots/ensemble."""
import argparse
from pathlib import Path

from doclab.classification.no_data import NO_CLASSIFICATION_DATA, no_classification_data_marker
from doclab.config import load_params
from doclab.errors import run_stage
from doclab.pipeline.ensemble import run_ensemble


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--logits", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    args = parser.parse_args()
    params = load_params(args.params)
    metrics = run_ensemble(params, args.logits, args.model, args.metrics, args.plots)
    if metrics == no_classification_data_marker():
        print(f"ensemble: {NO_CLASSIFICATION_DATA} (the members' logits files say so): marker outputs -> {args.model}")
        return
    chosen = metrics["chosen"]
    test = f"test macro-F1 {metrics['test'][chosen]['macro_f1']:.4f}" if metrics["test"] else "no test split"
    print(f"ensemble: {chosen}: val macro-F1 {metrics['val'][chosen]['macro_f1']:.4f}, {test} -> {args.model}")


if __name__ == "__main__":
    run_stage(main)
