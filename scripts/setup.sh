#!/usr/bin/env bash
# Create .venv and install what the app needs. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first: 2.13.0 is the CPU build on this platform's local disk; a bare "torch" would pull CUDA.
.venv/bin/python -m pip install -q torch==2.13.0
.venv/bin/python -m pip install -q -r "${1:-requirements.txt}"
