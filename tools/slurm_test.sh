#!/usr/bin/env bash
# Evaluation on a Slurm cluster (as MMPose's tools/slurm_test.sh): one task per GPU via srun.
#
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS=...] \
#       tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
#
# PYTHON: interpreter on the compute nodes (default: the repo's .venv/bin/python if it exists,
# else `python`). The slurm launcher needs CUDA nodes (MMEngine calls torch.cuda.set_device);
# for CPU-only clusters run tools/dist_test.sh on every node with NNODES/NODE_RANK/MASTER_ADDR.
set -euo pipefail
set -x

if [ "$#" -lt 4 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    exit 2
fi
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
CHECKPOINT=$4
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SRUN_ARGS=${SRUN_ARGS:-""}
# shellcheck source=tools/find_python.sh
source "$(dirname "$0")/find_python.sh"

# SRUN_ARGS is deliberately unquoted: it holds several srun options.
# shellcheck disable=SC2086
PYTHONPATH="$REPO_DIR${PYTHONPATH:+:$PYTHONPATH}" \
srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres=gpu:"$GPUS_PER_NODE" \
    --ntasks="$GPUS" \
    --ntasks-per-node="$GPUS_PER_NODE" \
    --cpus-per-task="$CPUS_PER_TASK" \
    --kill-on-bad-exit=1 \
    ${SRUN_ARGS} \
    "$PYTHON" -u "$TOOLS_DIR/test.py" "$CONFIG" "$CHECKPOINT" --launcher=slurm "${@:5}"
