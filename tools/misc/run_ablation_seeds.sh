#!/usr/bin/env bash
# Train + test one config for several seeds, one thread each (two such queues fit 2 cores):
#   tools/misc/run_ablation_seeds.sh CONFIG NAME "0 1 2" [extra --cfg-options...]
# Writes work_dirs/ablation/NAME_seedS/{train.log,test.log,metrics.json}.
set -euo pipefail
cfg=$1; name=$2; seeds=$3; shift 3
py=${PYTHON:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} MKL_NUM_THREADS=${OMP_NUM_THREADS:-1}
for s in $seeds; do
  wd=work_dirs/ablation/${name}_seed$s
  mkdir -p "$wd"
  # Per-seed numbers depend on the CPU and the thread count: record both with the commit.
  { echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)"
    # The model name alone ("AMD EPYC") hid a CPU change between sessions: add the generation.
    echo "cpu_id: family $(grep -m1 '^cpu family' /proc/cpuinfo | cut -d: -f2 | xargs)" \
         "model $(grep -m1 '^model\s' /proc/cpuinfo | cut -d: -f2 | xargs)" \
         "avx512f $(grep -qw avx512f /proc/cpuinfo && echo yes || echo no)"
    echo "threads: $OMP_NUM_THREADS"; echo "commit: $(git rev-parse --short HEAD 2>/dev/null)"
    echo "config: $cfg"; echo "seed: $s"; echo "options: $*"; } > "$wd/run_info.txt"
  start=$(date +%s)
  $py tools/train.py "$cfg" --work-dir "$wd" --cfg-options randomness.seed=$s "$@" > "$wd/train.log" 2>&1
  ckpt=$(ls -t "$wd"/epoch_*.pth | head -1)
  extra=(); [ $# -gt 0 ] && extra=(--cfg-options "$@")
  $py tools/test.py "$cfg" "$ckpt" --work-dir "$wd" --out "$wd/metrics.json" "${extra[@]}" > "$wd/test.log" 2>&1
  echo "wall_s: $(( $(date +%s) - start ))" >> "$wd/run_info.txt"
  echo "$name seed $s: $(grep -E '^ALL' "$wd/test.log")"
done
