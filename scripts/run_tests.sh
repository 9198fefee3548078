#!/usr/bin/env bash
# Sets up (idempotent) and runs the test suite on the CPU; xvfb, a virtual X display, lets the test of
# tools/visualize.py's interactive window run head-less.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh xvfb
.venv/bin/python -m pytest tests -q --durations=12 "$@"
