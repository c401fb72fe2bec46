#!/usr/bin/env bash
# The GPU figures in one go (within 8 minutes): install the carried wheels without a network,
# then run benchmarks/gpu_check.py, which writes OUTDIR/gpu-report.md, gpu-report.json and logs.
#   bash scripts/gpu-check.sh OUTDIR                # on the GPU machine
#   CPU_SMOKE=1 bash scripts/gpu-check.sh OUTDIR    # dry run on a CPU, tiny models (< 3 minutes)
# GPU_CARRY: the folder scripts/gpu-prepare.sh built (default .gpu-carry); without one, the
# installed packages are used as they are (a GPU owner with a network: pip install -r requirements.txt).
set -euo pipefail
started=$(date +%s)
out=${1:?usage: scripts/gpu-check.sh OUTDIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "$0")/.."
root=$(pwd)
carry=${GPU_CARRY:-.gpu-carry}
[ -d "$carry" ] && carry=$(cd "$carry" && pwd)
smoke=()
case "${CPU_SMOKE:-0}" in 0|"") ;; *) smoke=(--smoke) ;; esac
# The GPU machine's python3 holds torch with CUDA; here (smoke) the project's venv.
python=${PYTHON:-python3}
[ ${#smoke[@]} -gt 0 ] && [ -z "${PYTHON:-}" ] && [ -x .venv/bin/python ] && python=$root/.venv/bin/python
# A dry run shares a small CPU with other work: one torch thread per process, idle OpenMP threads
# sleep (a spinning one holds the core a late thread needs; under load that made the run 3x slower).
[ ${#smoke[@]} -gt 0 ] && export CNAPS_CPU_THREADS=${CNAPS_CPU_THREADS:-1} OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
site=$(mktemp -d "${TMPDIR:-/tmp}/cnaps-gpu-site.XXXXXX")
path=$site:$root
if compgen -G "$carry/wheels/*.whl" >/dev/null; then
  # --no-deps: the wheels are exactly what the machine lacks; torch and the rest stay the machine's.
  "$python" -m pip install --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
    --target "$site" "$carry"/wheels/*.whl >"$out/install.log" 2>&1 \
    || echo "gpu-check: installing the carried wheels failed (see install.log); going on with what is installed" >&2
fi
[ -d "$carry/ncnn-models" ] && path=$path:$carry/ncnn-models
[ -d "$carry/cache" ] && export CNAPS_CACHE_DIR=$carry/cache
export PYTHONPATH=$path${PYTHONPATH:+:$PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
status=0
"$python" benchmarks/gpu_check.py --out "$out" --started "$started" --carry "$carry" ${smoke[@]+"${smoke[@]}"} || status=$?
rm -rf "$site"
exit $status
