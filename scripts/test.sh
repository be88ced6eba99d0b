#!/usr/bin/env bash
# Installs everything the tests need (the sam2==1.1.0 oracle included) and runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# The CPU build first: a bare torch requirement would pull several GB of CUDA packages.
$PY -m pip install --quiet "torch==2.13.0"
$PY -m pip install --quiet -e ".[test,cluster]"
# The oracle is installed without its deps (torchvision is not needed by its model code).
SAM2_BUILD_CUDA=0 $PY -m pip install --quiet --no-deps --no-build-isolation "sam2==1.1.0"
$PY -m ruff check app model tests scripts
lint-imports --no-cache
QT_QPA_PLATFORM=offscreen $PY -m pytest "$@"
