#!/usr/bin/env bash
# Multi-process training: tools/dist_train.sh CONFIG NPROC_PER_NODE [train.py args ...]
# Several machines: set NNODES, NODE_RANK and MASTER_ADDR (and MASTER_PORT) on each, the same command on all.
# The world size is NNODES × NPROC_PER_NODE, from the launcher, never from the local GPU count.
set -euo pipefail
CONFIG=$1
NPROC=$2
shift 2
cd "$(dirname "$0")/.."
exec python -m torch.distributed.run --nnodes="${NNODES:-1}" --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${MASTER_PORT:-29500}" --nproc_per_node="$NPROC" \
    tools/train.py "$CONFIG" --launcher pytorch "$@"
