#!/usr/bin/env bash
# Distributed evaluation with torchrun (one process per GPU, or per CPU "slot" without CUDA).
#
#   tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py args...]
#
# Environment (as in OpenMMLab's scripts):
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500): multi-node rendezvous;
#   PYTHON: the interpreter that runs torch.distributed.run. Default: the repo's
#   .venv/bin/python (what `make` sets up) if it exists, else `python` on PATH.
# Rank 0 prints the metric table (N-MPJPE / P-MPJPE / MPJPE in mm). See docs/distributed.md.
set -euo pipefail

if [ "$#" -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT GPUS [test.py args...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
GPUS=$3
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}
# shellcheck source=tools/find_python.sh
source "$(dirname "$0")/find_python.sh"

PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}" \
exec "$PYTHON" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$GPUS" \
    --master_port="$PORT" \
    "$TOOLS_DIR/test.py" \
    "$CONFIG" \
    "$CHECKPOINT" \
    --launcher pytorch "${@:4}"
