#!/bin/sh
# Runs the four stages of pipeline.yaml in pipeline order, from this directory.
#
# This script only stands in until `reftool run` exists: it runs every stage
# every time, records nothing (no pipeline.lock) and never skips a stage whose
# inputs are unchanged. Keep the commands identical to the `cmd` of each stage.
set -e
cd "$(dirname "$0")"

python src/prepare.py
python src/featurize.py
python src/train.py
python src/evaluate.py
