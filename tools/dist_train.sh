#!/usr/bin/env bash
# Distributed training with torchrun (one process per GPU, or per CPU "slot" without CUDA).
#
#   tools/dist_train.sh CONFIG GPUS [train.py args...]
#
# Environment (as in OpenMMLab's scripts):
#   NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500): multi-node rendezvous;
#   PYTHON: the interpreter that runs torch.distributed.run. Default: the repo's
#   .venv/bin/python (what `make` sets up) if it exists, else `python` on PATH.
# Without CUDA, tools/train.py switches the process group to gloo and DDP to device_ids=None
# (mmunsup3d.engine.launch.prepare_launch), so the same command runs on CPU-only machines.
# See docs/distributed.md.
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 CONFIG GPUS [train.py args...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
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
    "$TOOLS_DIR/train.py" \
    "$CONFIG" \
    --launcher pytorch "${@:3}"
