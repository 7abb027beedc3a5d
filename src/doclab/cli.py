"""The `doclab` command: tools around the DVC pipeline (the pipeline itself runs with `dvc repro`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from doclab.config import ConfigError, load_params
from doclab.data.records import DataError


def _check_params(args: argparse.Namespace) -> int:
    params = load_params(args.params)
    print(f"{args.params}: ok (model={params.model}, image_size={params.image_size}, "
          f"batch_size={params.batch_size}, data.source={params.data.source})")
    return 0


def _eval_det(args: argparse.Namespace) -> int:
    from doclab.metrics.evaluate_files import evaluate_ufo

    metrics = evaluate_ufo(args.gt, args.pred, mode=args.mode)
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        width = max(len(k) for k in metrics)
        for key in sorted(metrics):
            value = metrics[key]
            print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from doclab.report import write_report

    out = Path(args.out) if args.out else Path(args.repo) / "experiments.md"
    rows = write_report(args.repo, out, all_commits=args.all_commits)
    print(f"{out}: table of {len(rows)} experiments")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from doclab.predict import predict

    failures = predict(args.paths, args.out, args.models, batch_size=args.batch_size, device=args.device,
                       overlays=not args.no_overlays)
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    print(f"{args.out}: predictions.json, submission.csv{', classes.csv' if (args.out / 'classes.csv').exists() else ''}"
          f"{', overlays/' if not args.no_overlays else ''} ({len(failures)} input(s) failed)")
    return 1 if failures else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="doclab", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check-params", help="validate params.yaml and print a one-line summary")
    check.add_argument("params", nargs="?", default="params.yaml")
    check.set_defaults(handler=_check_params)

    evaluate = commands.add_parser("eval-det", help="score detections (UFO JSON) with CLEval and IoU H-mean")
    evaluate.add_argument("gt", help="ground-truth UFO JSON")
    evaluate.add_argument("pred", help="predicted UFO JSON")
    evaluate.add_argument("--mode", choices=("competition", "cleval"), default="competition",
                          help="competition: polygons, pseudo character counts; cleval: the cleval package's rules")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.set_defaults(handler=_eval_det)

    report = commands.add_parser("report", help="rewrite the generated table of experiments.md from `dvc exp show`")
    report.add_argument("--repo", default=".", help="the DVC project (a git work tree with dvc.yaml)")
    report.add_argument("--out", help="the Markdown file (default: <repo>/experiments.md)")
    report.add_argument("--all-commits", action="store_true",
                        help="also the experiments of every commit, not only HEAD's (dvc exp show -A)")
    report.set_defaults(handler=_report)

    run = commands.add_parser("predict", help="detect text and classify documents in images or folders")
    run.add_argument("paths", nargs="+", type=Path, help="image files and/or folders (searched recursively)")
    run.add_argument("--out", required=True, type=Path, help="output folder")
    run.add_argument("--models", type=Path, default=Path("models"),
                     help="folder with detector.pt, postprocess.json, ensemble.json and classifier/ (dvc repro)")
    run.add_argument("--batch-size", type=int, default=4)
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    run.set_defaults(handler=_predict)
    return parser


def _checkpoint_error() -> type[Exception]:
    """CheckpointError, imported only once an exception is being handled (it pulls in torch)."""
    from doclab.engine.checkpoint import CheckpointError

    return CheckpointError


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `doclab` console script; bad input exits 2 with one `error:` line."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, DataError, FileNotFoundError, _checkpoint_error()) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
