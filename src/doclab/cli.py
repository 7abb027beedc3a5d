"""The `doclab` command: tools around the DVC pipeline (the pipeline itself runs with `dvc repro`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from doclab.config import ConfigError, load_params
from doclab.errors import exit_on_error
from doclab.experiments.profile import run_profile


def _check_params(args: argparse.Namespace) -> int:
    params = load_params(args.params)  # the schema: no torch, well under a second
    from doclab.detection.backbone import feature_levels  # only the model names need timm (and torch)
    from doclab.engine.timm_models import check_known

    try:
        feature_levels(params.model)
        for member in params.classifier.members:
            check_known(member, "classifier.members")
    except ConfigError as exc:
        raise ConfigError(f"{args.params}: {exc}") from None
    print(f"{args.params}: ok (model={params.model}, image_size={params.image_size}, "
          f"batch_size={params.batch_size}, data.source={params.data.source})")
    return 0


def _eval_det(args: argparse.Namespace) -> int:
    from doclab.metrics.bootstrap import comparison_lines
    from doclab.metrics.ufo_scores import compare_ufo, evaluate_ufo

    notes: list[str] = []
    comparison = None
    if args.vs:
        metrics, comparison = compare_ufo(args.gt, args.pred, args.vs, args.mode, args.resamples, args.seed, notes)
    else:
        metrics = evaluate_ufo(args.gt, args.pred, mode=args.mode, notes=notes)
    for line in notes:
        print(f"warning: {line}", file=sys.stderr)
    if args.json:
        print(json.dumps({**metrics, "compare": comparison} if comparison else metrics, indent=2, sort_keys=True))
        return 0
    width = max(len(k) for k in metrics)
    for key in sorted(metrics):
        value = metrics[key]
        print(f"{key:<{width}}  {value:.4f}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    if comparison:
        print(f"\n{args.vs} (B) against {args.pred} (A): paired bootstrap over images, {args.resamples} resamples, "
              f"seed {args.seed}")
        print("\n".join(comparison_lines(comparison)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from doclab.experiments.compare import compare_experiments
    from doclab.experiments.compare_text import comparison_text

    comparison = compare_experiments(args.repo, _revs(args.a), _revs(args.b), args.split, args.resamples, args.seed)
    print(json.dumps(comparison.to_json(), indent=2, sort_keys=True) if args.json else comparison_text(comparison),
          flush=True)
    if args.md:
        from doclab.experiments.review import write_review

        path = write_review(args.repo, comparison, Path(args.md))
        print(f"{path}: review report", file=sys.stderr)
    return 0


def _revs(text: str) -> list[str]:
    revs = [rev.strip() for rev in text.split(",") if rev.strip()]
    if not revs:
        raise ConfigError(f"{text!r}: expected a revision, or several separated by commas")
    return revs


def _report(args: argparse.Namespace) -> int:
    from doclab.experiments.report import write_report

    out = Path(args.out) if args.out else Path(args.repo) / "experiments.md"
    rows = write_report(args.repo, out, all_commits=args.all_commits)
    print(f"{out}: table of {len(rows)} experiments")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from doclab.predict import NOTHING_WRITTEN, predict

    failures = predict(args.paths, args.out, args.models, batch_size=args.batch_size, device=args.device,
                       overlays=not args.no_overlays, runtime=args.runtime)
    for line in failures:
        print(f"error: {line}", file=sys.stderr)
    if not any(line.endswith(NOTHING_WRITTEN) for line in failures):
        written = [name for name in ("predictions.json", "submission.csv", "classes.csv", "overlays/")
                   if (args.out / name).exists()]
        print(f"{args.out}: {', '.join(written)} ({len(failures)} input(s) failed)")
    return 1 if failures else 0


def _sweep(args: argparse.Namespace) -> int:
    from doclab.engine.pruning import MedianRule
    from doclab.experiments.report import check_project
    from doclab.experiments.sweep.settings import SweepSettings
    from doclab.experiments.sweep.space import load_space
    from doclab.experiments.sweep.study import best_commands, run_sweep

    check_project(Path(args.repo).resolve())  # before the space: 'not a git repository' beats 'no params.yaml'
    space = load_space(args.space, Path(args.repo) / "params.yaml")
    settings = SweepSettings(space=space, name=args.name or Path(args.space).stem, trials=args.trials,
                             jobs=args.jobs, sampler=args.sampler, metric=args.metric, direction=args.direction,
                             prune=MedianRule(args.prune_warmup, args.prune_min_trials) if args.prune == "median"
                             else None, seed=args.seed, storage=args.storage, push=args.push,
                             heartbeat=args.heartbeat)
    result = run_sweep(args.repo, settings)
    done = [t for t in result.trials if t.state == "complete"]
    print(f"sweep {result.name}: {len(done)} complete, {len(result.trials) - len(done)} failed "
          f"({result.queued} queued by this run), trials in sweeps/{result.name}/trials.json")
    if result.best is None:
        print("no trial finished with the metric: see `dvc queue logs <trial>`", file=sys.stderr)
        return 1
    print(f"best: {result.best.experiment} {args.metric} {result.best.value:.4f}; {_significance_text(result)}")
    print("\n".join(best_commands(result)))
    return 0


def _significance_text(result) -> str:
    """'against the runner-up t002: +0.0040 [-0.0010, +0.0090] within noise; against the baseline HEAD: ...'."""
    parts = []
    for role in ("runner-up", "baseline"):
        if role not in result.significance:
            continue
        name, found = result.significance[role]
        parts.append(f"against the {role} {name}: " + (
            f"{found['diff']:+.4f} [{found['ci95'][0]:+.4f}, {found['ci95'][1]:+.4f}] {found['verdict']}"
            if found else "no per-image validation results to compare"))
    return f"val {result.statistic} per image, paired bootstrap: " + "; ".join(parts)


def _import(args: argparse.Namespace) -> int:
    from doclab.data.formats.importer import import_dataset

    summary = import_dataset(args.format, args.src, args.dst, args.annotations, args.on_bad)
    for problem in summary.skipped:
        print(f"skipped: {problem.line()}", file=sys.stderr)
    splits = ", ".join(f"{split}={count}" for split, count in summary.splits.items())
    how = f"{summary.copied} copied" if summary.copied else "hard links"
    print(f"{args.dst}: {summary.images} images{f' ({splits})' if splits else ''}, {summary.words} words "
          f"({summary.dont_care} don't care), {len(summary.skipped)} skipped -> annotations.json"
          f"{', splits.json' if splits else ''}, images/ ({how})")
    print(f"params.yaml, under data.sources:\n  - name: {args.format}\n    format: ufo\n"
          f"    images: {args.dst / 'images'}\n    annotations: {args.dst / 'annotations.json'}"
          + (f"\nand the set's split: data.split.file: {args.dst / 'splits.json'}" if splits else ""))
    return 0


def _deps(args: argparse.Namespace) -> int:
    from doclab.experiments.stage_deps import check_stage_deps

    stale = check_stage_deps(args.repo, write=args.write)
    if not stale:
        print("dvc.yaml: every stage's code deps are its import closure")
        return 0
    verb = "rewrote" if args.write else "stale (run `doclab deps --write`)"
    print(f"dvc.yaml: {verb}: code deps of {', '.join(stale)}", file=sys.stdout if args.write else sys.stderr)
    return 0 if args.write else 1


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _add_sweep(commands: argparse._SubParsersAction) -> None:
    from doclab.experiments.sweep.trials import DEFAULT_METRIC, HEARTBEAT_SECONDS

    sweep = commands.add_parser("sweep", help="search params with Optuna, every trial a queued `dvc exp run`")
    sweep.add_argument("space", help="space file: params.yaml keys -> {choice|uniform|log_uniform|int: ...}")
    sweep.add_argument("--trials", type=_positive, required=True, help="trials the sweep holds when done")
    sweep.add_argument("--jobs", type=_positive, default=1,
                       help="trials run at a time (dvc queue start -j), each on its own GPU where there are several")
    sweep.add_argument("--sampler", choices=("tpe", "random"), default="tpe")
    sweep.add_argument("--metric", default=DEFAULT_METRIC,
                       help="a dotted metric key, or FILE:KEY (default: the tuned validation CLEval H-mean)")
    sweep.add_argument("--direction", choices=("max", "min"), default="max")
    sweep.add_argument("--name", help="sweep name: sweeps/<name>/, experiments <name>-tNNN (default: space file stem)")
    sweep.add_argument("--repo", default=".", help="the DVC project (a git work tree with dvc.yaml)")
    sweep.add_argument("--prune", choices=("median", "none"), default="median",
                       help="stop a trial's training when it falls below the median of the others")
    sweep.add_argument("--prune-warmup", type=int, default=1, help="epochs never pruned")
    sweep.add_argument("--prune-min-trials", type=_positive, default=2,
                       help="other trials needed at an epoch before pruning")
    sweep.add_argument("--seed", type=int, default=0, help="sampler seed")
    sweep.add_argument("--storage", metavar="URL",
                       help="the study's database, shared by workers in other clones and machines, e.g. "
                            "postgresql://user:password@host:5432/db (any SQLAlchemy URL Optuna takes; "
                            "default: sweeps/<name>/study.db, this clone's alone)")
    sweep.add_argument("--push", metavar="GIT_REMOTE",
                       help="push each finished trial there (dvc exp push; outputs to the default DVC remote)")
    sweep.add_argument("--heartbeat", type=_positive, default=HEARTBEAT_SECONDS, metavar="SECONDS",
                       help="with --storage: a worker silent for twice this long has its trials failed and re-asked")
    sweep.set_defaults(handler=_sweep)


def _add_import(commands: argparse._SubParsersAction) -> None:
    from doclab.data.formats.registry import IMPORT_FORMATS

    command = commands.add_parser("import", help="convert a public set (CORD, FUNSD, ICDAR 2015, SROIE, labelme, "
                                  "PPOCRLabel) into a UFO folder, with its own split as splits.json")
    command.add_argument("format", choices=IMPORT_FORMATS)
    command.add_argument("src", type=Path,
                         help="the set's root (CORD, FUNSD, ICDAR 2015, SROIE layouts) or image folder")
    command.add_argument("dst", type=Path,
                         help="output folder: images/, annotations.json, splits.json (replaced whole)")
    command.add_argument("--annotations", type=Path, help="txt folder (icdar/sroie/icdar2015), JSON folder (labelme) "
                         "or Label.txt (ppocrlabel), where not in the format's own place under SRC")
    command.add_argument("--on-bad", choices=("error", "skip"), default="error",
                         help="error: stop, write nothing; skip: drop bad words/images, list them in rejected.json")
    command.set_defaults(handler=_import)


def _add_profile(commands: argparse._SubParsersAction) -> None:
    profile = commands.add_parser("profile", help="run `dvc exp run` with profiles/*.yaml as -S arguments")
    profile.add_argument("profile", type=Path, help="YAML of dotted params keys -> values")
    profile.add_argument("--params", type=Path, default=Path("params.yaml"), help="the params file it modifies")
    profile.add_argument("command", nargs=argparse.REMAINDER, help="e.g. dvc exp run -n receipts (its -S values win)")
    profile.set_defaults(handler=lambda args: run_profile(args.profile, args.params, args.command))


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
    evaluate.add_argument("--vs", metavar="B.json", help="a second prediction file: bootstrap B against PRED "
                          "(difference, 95%% interval, verdict per metric)")
    evaluate.add_argument("--resamples", type=_positive, default=10_000, help="bootstrap resamples (with --vs)")
    evaluate.add_argument("--seed", type=int, default=0, help="bootstrap seed (with --vs)")
    evaluate.set_defaults(handler=_eval_det)

    compare = commands.add_parser("compare", help="B against A with bootstrap intervals: is the difference real?")
    compare.add_argument("a", help="a git rev, experiment name or 'workspace'; several runs (seeds) joined by commas")
    compare.add_argument("b", help="the other side, as A")
    compare.add_argument("--split", choices=("test", "val"), default="test")
    compare.add_argument("--md", metavar="DIR", help="also write DIR/review.md with overlays of the images that moved")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.add_argument("--resamples", type=_positive, default=10_000, help="bootstrap resamples")
    compare.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    compare.add_argument("--repo", default=".", help="the DVC project")
    compare.set_defaults(handler=_compare)

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
                     help="models/ of `dvc repro` (detector.pt, ..., deploy/) or an exported deploy folder")
    run.add_argument("--runtime", choices=("auto", "onnx", "torch"), default="auto",
                     help="onnx: the exported models (onnxruntime, no torch); torch: the .pt models; "
                          "auto: onnx when models/deploy/deploy.json exists")
    run.add_argument("--batch-size", type=_positive, default=4)
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    run.set_defaults(handler=_predict)
    _add_profile(commands)
    _add_sweep(commands)
    _add_import(commands)

    deps = commands.add_parser("deps", help="check (or --write) each dvc.yaml stage's code deps against its imports")
    deps.add_argument("--repo", default=".", help="the folder with dvc.yaml")
    deps.add_argument("--write", action="store_true", help="rewrite the stale deps")
    deps.set_defaults(handler=_deps)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `doclab` console script; bad input exits 2 with one `error:` line."""
    args = build_parser().parse_args(argv)
    return exit_on_error(lambda: args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
