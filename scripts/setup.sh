#!/usr/bin/env bash
# Create .venv with the CPU build of torch and this project (editable, with test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# torch first and pinned, so pip never resolves an unpinned torch to a multi-GB CUDA build.
# Elsewhere than our lab machines add: --index-url https://download.pytorch.org/whl/cpu
.venv/bin/pip install -q --disable-pip-version-check ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "torch==2.13.0"
.venv/bin/pip install -q --disable-pip-version-check -e ".[dev]"
