#!/usr/bin/env bash
# Sets up (idempotent) and runs the test suite on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m pytest tests -q --durations=12 "$@"
