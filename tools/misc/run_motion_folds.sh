#!/usr/bin/env bash
# Leave-motion-out evaluation: train + test one config on several folds (one seed):
#   tools/misc/run_motion_folds.sh CONFIG NAME "0 1 2 3 4" [SEED]
# CONFIG is one of configs/unsup3d/lmo/*.py (protocol='leave-motion-out'). Each fold goes
# through tools/misc/run_ablation_seeds.sh, which writes
# work_dirs/ablation/NAME_foldF_seedS/{run_info.txt,train.log,test.log,metrics.json}.
# A flat-depth config (name contains "flatdepth") has nothing to train: it is only tested,
# into work_dirs/ablation/NAME_foldF/{test.log,metrics.json}.
# PYTHON and RUN_SEEDS (the per-seed runner) may be overridden, e.g. by the tests.
set -euo pipefail
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: $0 CONFIG NAME \"FOLDS\" [SEED]   (got $# arguments)" >&2; exit 2
fi
cfg=$1; name=$2; folds=$3; seed=${4:-0}
py=${PYTHON:-.venv/bin/python}
run_seeds=${RUN_SEEDS:-tools/misc/run_ablation_seeds.sh}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${OMP_NUM_THREADS:-1}
[ -f "$cfg" ] || { echo "$0: config \"$cfg\" not found" >&2; exit 2; }
[ -n "${folds// /}" ] || { echo "$0: no fold given (FOLDS=\"$folds\")" >&2; exit 2; }
for f in $folds; do  # all checked before the first (long) run starts
  case $f in *[!0-9]*) echo "$0: fold \"$f\" is not a non-negative integer" >&2; exit 2;; esac
done
for f in $folds; do
  # The fold of all three loaders: the test split must be the fold the model did not train on.
  opts=(train_dataloader.dataset.fold=$f val_dataloader.dataset.fold=$f
        test_dataloader.dataset.fold=$f)
  if [[ $(basename "$cfg") == *flatdepth* ]]; then
    wd=work_dirs/ablation/${name}_fold$f
    mkdir -p "$wd"
    # tools/test.py accepts the checkpoint "none" for parameter-free baselines.
    $py tools/test.py "$cfg" none --work-dir "$wd" --out "$wd/metrics.json" \
      --cfg-options "${opts[@]}" > "$wd/test.log" 2>&1
    echo "$name fold $f: $(grep -E '^ALL' "$wd/test.log" || true)"
  else
    "$run_seeds" "$cfg" "${name}_fold$f" "$seed" "${opts[@]}"
  fi
done
