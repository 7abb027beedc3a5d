"""Stage `evaluate`: the detector (tuned post-processing) and the ensemble on the test split."""
import argparse
from pathlib import Path

from doclab.classification.no_data import NO_CLASSIFICATION_DATA
from doclab.config import load_params
from doclab.detection.model_file import NO_DETECTION_DATA
from doclab.errors import run_stage
from doclab.pipeline.evaluate import EvaluatePaths, run_evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    for name in ("data", "detector", "postprocess", "ensemble", "logits", "metrics", "plots", "submission",
                 "results"):
        parser.add_argument(f"--{name}", required=True, type=Path)
    args = parser.parse_args()
    params = load_params(args.params)
    paths = EvaluatePaths(args.data, args.detector, args.postprocess, args.ensemble, args.logits, args.metrics,
                          args.plots, args.submission, args.results)
    metrics = run_evaluate(params, paths)
    if "status" in metrics:
        print(f"evaluate: {metrics['status']} (data.split.test is 0 or the split file lists no test images): "
              f"nothing scored, validation figures are in metrics/tune.json and metrics/ensemble.json")
        return
    detection = (f"detection CLEval H-mean {metrics['detect.cleval.hmean']:.4f} "
                 f"(IoU {metrics['detect.iou.hmean']:.4f}) on {metrics['detect.images']} test images"
                 if "detect.images" in metrics else NO_DETECTION_DATA)
    classification = (f"classification macro-F1 {metrics['classify.macro_f1']:.4f} on {metrics['classify.images']} "
                      "test images" if "classify.images" in metrics else NO_CLASSIFICATION_DATA)
    print(f"evaluate: {detection}, {classification} -> {args.metrics}")


if __name__ == "__main__":
    run_stage(main)
