#!/usr/bin/env bash
# Build the folder a lent GPU machine needs beside the tree (the wheels its Python lacks, the CNN
# weights converted) and check its size; the last line printed is that folder, to carry.
# Options: --no-wheels (no network: the CNN part only), --dest DIR (default .gpu-carry).
# The logic is benchmarks/gpu_prepare.py. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
python=.venv/bin/python
[ -x "$python" ] || python=python3
exec "$python" benchmarks/gpu_prepare.py "$@"
