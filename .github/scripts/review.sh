#!/usr/bin/env bash
# The pull-request review: reproduce this checkout, compare it with BASE, write OUT/review.md.
#
#   bash .github/scripts/review.sh BASE [OUT]      # e.g. bash .github/scripts/review.sh main review
#
# BASE is the revision to compare against: its results/ files are committed, its DVC outputs
# (submission CSV, processed images: the overlays) come from the DVC remote. The script runs the
# same on a laptop as in .github/workflows/review.yml; it needs doclab and dvc on PATH (activate
# the project's venv, or prefix `uv run`). Exit status: non-zero when reproducing or comparing fails.
set -euo pipefail
base="${1:?usage: review.sh BASE [OUT]}"
out="${2:-review}"

if [ -n "$(dvc remote list)" ]; then
  # Outputs the remote holds are pulled, not rebuilt; a stage whose only change is missing data (the
  # git-ignored training checkpoints of a fresh clone) is skipped instead of retrained.
  dvc repro --pull --allow-missing
  # The base's outputs for the side-by-side pictures; without them the report lists the images only.
  dvc fetch --all-branches models/submission data/processed ||
    echo "review: could not fetch ${base}'s DVC outputs: the report will have no pictures of it" >&2
else
  echo "review: no DVC remote configured: reproducing every stage" >&2
  dvc repro
fi
doclab compare "$base" workspace --md "$out"
