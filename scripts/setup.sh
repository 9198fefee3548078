#!/usr/bin/env bash
# Idempotent set-up of perception3d on Debian with Python 3.11:
# system libraries for Open3D (head-less rendering included), a virtual
# environment in .venv with the CPU build of torch, and the package itself.
# Arguments name more Debian packages to install (scripts/run_tests.sh: xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS="libusb-1.0-0 libgl1 libegl1 libgomp1 mesa-vulkan-drivers $*"
missing=""
for p in $APT_PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "[setup] installing system packages:$missing"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.perception3d-setup
if [ ! -f "$stamp" ] || [ requirements/cpu.txt -nt "$stamp" ] || [ setup.py -nt "$stamp" ]; then
  echo "[setup] installing Python packages (CPU build of torch)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements/cpu.txt
  .venv/bin/python -m pip install -q --no-build-isolation --no-deps -e .
  touch "$stamp"
fi
