"""Stage `tune_postprocess`: models/detector.pt + data/processed -> models/postprocess.json, metrics/tune.json, plots/tune."""
import argparse
from pathlib import Path

from doclab.config import load_params
from doclab.pipeline.tune_postprocess import tune_postprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--model", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--plots", required=True, type=Path)
    parser.add_argument("--results", required=True, type=Path)
    args = parser.parse_args()
    params = load_params(args.params)
    result = tune_postprocess(params, args.data, args.model, args.out, args.metrics, args.plots, args.results)
    if result is None:
        print(f"tune_postprocess: {args.model} says no detection data: nothing tuned, marker outputs -> {args.out}")
        return
    tuned = ", ".join(f"{name}={value:g}" if not isinstance(value, bool) else f"{name}={value}"
                      for name, value in result.best_params.items())
    print(f"tune_postprocess: {result.metric} {result.best[result.metric]:.4f} tuned vs "
          f"{result.untuned[result.metric]:.4f} untuned ({tuned}); {result.candidates} candidates: maps cached in "
          f"{result.cache_seconds:.1f} s, search {result.search_seconds:.1f} s "
          f"({1000 * result.search_seconds / result.candidates:.0f} ms/candidate) -> {args.out}")


if __name__ == "__main__":
    # Imported here, not at the top: spawned search workers re-import this script, and
    # doclab.errors imports torch (seconds per worker) that they never use.
    from doclab.errors import run_stage

    run_stage(main)
