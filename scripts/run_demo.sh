#!/usr/bin/env bash
# The main job on the embedded default: create the synthetic nuScenes-format world
# (v1.0-mini, 10 scenes) with its infos and GT database, and print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python tools/create_data.py synthetic --out data/synthetic --version v1.0-mini
