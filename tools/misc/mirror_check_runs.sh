#!/usr/bin/env bash
# Depth-mirror diagnostic for runs of tools/misc/run_ablation_seeds.sh:
#   tools/misc/mirror_check_runs.sh CONFIG NAME "0 1 2"
# Writes work_dirs/ablation/NAME_seedS/mirror.json (see tools/analysis/depth_mirror_check.py).
set -euo pipefail
cfg=$1; name=$2; seeds=$3
py=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for s in $seeds; do
  wd=work_dirs/ablation/${name}_seed$s
  ckpt=$(ls -t "$wd"/epoch_*.pth | head -1)
  $py tools/analysis/depth_mirror_check.py "$cfg" "$ckpt" --out "$wd/mirror.json" > /dev/null 2>&1
  echo "$name seed $s: $(tr -d '\n ' < "$wd/mirror.json")"
done
