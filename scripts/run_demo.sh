#!/usr/bin/env bash
# The main job on the embedded default, all on the CPU (25 to 29 minutes on 2 cores):
#   1. create the synthetic nuScenes-format world (v1.0-mini, 10 scenes) with its infos and GT database;
#   2. train VoxelNeXt-tiny on its 8 mini_train scenes (checkpoints in work_dirs/voxelnext_tiny_synthetic/);
#   3. test it on the 2 mini_val scenes with the nuScenes devkit's metrics (metrics_summary.json; our fast
#      evaluation, checked number for number against the devkit itself) and draw each frame.
# Run it again after an interruption: the world is kept, training resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
CONFIG=configs/voxelnext/voxelnext_tiny_synthetic.py
WORK=work_dirs/voxelnext_tiny_synthetic
start=$(date +%s)

echo "== 1/3 synthetic world"
$PY tools/create_data.py synthetic --out data/synthetic --version v1.0-mini

echo "== 2/3 training on the CPU (loss and ETA every 20 iterations)"
$PY tools/train.py "$CONFIG" --work-dir "$WORK" --seed 0 --resume

echo "== 3/3 testing with the nuScenes devkit"
checkpoint=$(cat "$WORK/last_checkpoint")
$PY tools/test.py "$CONFIG" "$checkpoint" --work-dir "$WORK" --show-dir "$WORK/show" --eval-backend both

picture=$(ls "$WORK"/show/*.png | head -n 1)
echo
echo "done in $(( ($(date +%s) - start) / 60 )) min"
echo "metrics:  $WORK/eval/metrics_summary.json (per class in metrics_details.json; the devkit's own in eval/devkit/)"
echo "picture:  $picture (one per frame in $WORK/show/)"
echo "track it: .venv/bin/python tools/track.py $WORK/results.pkl --data-root data/synthetic"
