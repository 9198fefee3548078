#!/usr/bin/env bash
# Sets up (idempotent) and runs the test suite on the CPU; xvfb, a virtual X display, lets the test of
# tools/visualize.py's interactive window run head-less.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh xvfb
# two workers (pytest-xdist; an idle one steals queued tests), one thread each (torch's and numba's): the long
# training test runs on one core while the rest run on the other (two processes of two threads on two cores slow
# each other down several times)
export OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1
# mmengine imports yapf, which writes its grammar cache (not atomically) on the first import on a machine: done
# once here, so that the two workers do not read it half-written ("EOFError: Ran out of input")
.venv/bin/python -c "import mmengine.config"
.venv/bin/python -m pytest tests -q -n 2 --dist worksteal --durations=12 "$@"
