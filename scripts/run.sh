#!/usr/bin/env bash
# Installs Masklet and starts it: bash scripts/run.sh [VIDEO]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# Keep an already-installed torch (CPU or CUDA); otherwise take 2.13.0.
$PY -c "import torch" 2>/dev/null || $PY -m pip install --quiet "torch==2.13.0"
$PY -m pip install --quiet -e .
exec $PY -m app.headless.cli "$@"
