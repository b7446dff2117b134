#!/usr/bin/env bash
# Create (or reuse) .venv at the repository root and install the verified OpenMMLab stack.
#
# Idempotent: a stamp file records the hash of this script and of requirements/*.txt;
# when it matches, nothing is done. Compiled wheels (mmcv with ops, xtcocotools) are cached
# outside the repo, keyed by Python and torch versions, so a rebuild of .venv takes minutes.
#
# Environment:
#   MMUNSUP3D_CACHE   wheel cache root (default: ~/.cache/mmunsup3d)
#   PYTHON            interpreter used to create the venv (default: python3)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"
PY_BOOT="${PYTHON:-python3}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
XTCOCO_VERSION=1.14.3
CACHE_ROOT="${MMUNSUP3D_CACHE:-$HOME/.cache/mmunsup3d}"

step() { CURRENT_STEP="$1"; echo "[bootstrap] $1"; }
fail() {
  local rc=$?
  echo "[bootstrap] FAILED at step: ${CURRENT_STEP:-?} (exit $rc)." >&2
  [ -n "${STEP_LOG:-}" ] && [ -f "$STEP_LOG" ] && { echo "[bootstrap] last lines of $STEP_LOG:" >&2; tail -n 30 "$STEP_LOG" >&2; }
  exit "$rc"
}
trap fail ERR

stamp_inputs() { cat "$ROOT/tools/env/bootstrap.sh" "$ROOT"/requirements/*.txt "$ROOT/setup.py" | sha256sum | cut -c1-16; }
STAMP="$VENV/.mmunsup3d-stamp"
WANT="$(stamp_inputs)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ]; then
  exit 0
fi

step "create virtual environment $VENV"
[ -x "$VENV/bin/python" ] || "$PY_BOOT" -m venv "$VENV"
PY="$VENV/bin/python"
# pip's "Location ... is ignored" notes about this machine's local indexes are noise: drop them.
pipi() { "$PY" -m pip install --disable-pip-version-check -q "$@" 2>&1 | { grep -v "is ignored: it is neither" || true; }; return "${PIPESTATUS[0]}"; }
PYTAG="$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')"
WHEELS="$CACHE_ROOT/wheels/$PYTAG-torch$TORCH_VERSION"
mkdir -p "$WHEELS"
LOGDIR="$CACHE_ROOT/logs"; mkdir -p "$LOGDIR"

step "install build tools"
pipi --upgrade pip wheel 'cython<4' ninja

step "install torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION"
pipi "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"

step "install pure-Python and binary dependencies (requirements/runtime.txt, tests.txt)"
pipi -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt"

# ---- mmcv with ops, built once per (python, torch) -------------------------------------
MMCV_WHL="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$MMCV_WHL" ]; then
  step "pin setuptools<70 for the build (mmcv's setup.py imports pkg_resources)"
  # Build-time only, undone right after the build (setuptools>=77 below). --no-deps (setuptools
  # has no dependencies) also skips pip's check of the installed set, which would report
  # torch's setuptools>=77 requirement as a conflict for the length of the build.
  pipi --no-deps 'setuptools<70'
  step "build mmcv $MMCV_VERSION with ops from the PyPI sdist (about 10 min on 2 cores)"
  BUILD="$(mktemp -d)"; STEP_LOG="$LOGDIR/mmcv-build.log"
  "$PY" -m pip download --disable-pip-version-check -q --no-deps --no-binary :all: \
      --no-build-isolation "mmcv==$MMCV_VERSION" -d "$BUILD" >"$STEP_LOG" 2>&1
  tar -xzf "$BUILD"/mmcv-"$MMCV_VERSION".tar.gz -C "$BUILD"
  # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes c++14/17.
  sed -i -e 's/-std=c++14/-std=c++20/g' -e 's/-std=c++17/-std=c++20/g' "$BUILD/mmcv-$MMCV_VERSION/setup.py"
  ( cd "$BUILD/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="$(nproc)" \
      "$PY" -m pip wheel --no-deps --no-build-isolation -w "$BUILD/out" . ) >>"$STEP_LOG" 2>&1
  # Write to the cache atomically: a half-built wheel must never look complete.
  src="$(ls "$BUILD"/out/mmcv-*.whl)"; mv "$src" "$WHEELS/.tmp-$(basename "$src")"
  mv "$WHEELS/.tmp-$(basename "$src")" "$WHEELS/$(basename "$src")"
  rm -rf "$BUILD"; MMCV_WHL="$(ls "$WHEELS"/mmcv-"$MMCV_VERSION"-*.whl | head -n1)"; STEP_LOG=
fi
step "setuptools>=77 (torch 2.14) and <81 (mmengine's mmpose:: config scopes import pkg_resources)"
pipi 'setuptools>=77,<81'
step "install cached mmcv wheel $(basename "$MMCV_WHL")"
pipi --no-deps "$MMCV_WHL"

# ---- xtcocotools against the installed NumPy (the PyPI wheel is built for NumPy 1) -----
NPVER="$("$PY" -c 'import numpy; print(numpy.__version__)')"
XT_DIR="$WHEELS/xtcocotools-np$NPVER"; mkdir -p "$XT_DIR"
XT_WHL="$(ls "$XT_DIR"/xtcocotools-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$XT_WHL" ]; then
  step "build xtcocotools $XTCOCO_VERSION from source against NumPy $NPVER"
  BUILD="$(mktemp -d)"; STEP_LOG="$LOGDIR/xtcocotools-build.log"
  "$PY" -m pip wheel --disable-pip-version-check --no-deps --no-build-isolation --no-binary xtcocotools \
      "xtcocotools==$XTCOCO_VERSION" -w "$BUILD" >"$STEP_LOG" 2>&1
  src="$(ls "$BUILD"/xtcocotools-*.whl)"; mv "$src" "$XT_DIR/.tmp-$(basename "$src")"
  mv "$XT_DIR/.tmp-$(basename "$src")" "$XT_DIR/$(basename "$src")"
  rm -rf "$BUILD"; XT_WHL="$(ls "$XT_DIR"/xtcocotools-*.whl | head -n1)"; STEP_LOG=
fi
step "install cached xtcocotools wheel"
pipi --no-deps "$XT_WHL"

step "install mmdet 3.2.0 and mmpose 1.3.2 without their pinned deps (no chumpy)"
pipi --no-deps -r "$ROOT/requirements/openmmlab.txt"

step "install mmunsup3d in editable mode"
STEP_LOG="$LOGDIR/editable-install.log"
pipi --no-deps --no-build-isolation -e "$ROOT" >"$STEP_LOG" 2>&1  # setuptools' notices: log only
STEP_LOG=

step "check imports"
"$PY" - <<'PYCHECK'
import mmcv.ops  # noqa: F401  (compiled ops are required by mmpose.models)
import mmpose.models, mmpose.datasets, mmpose.evaluation, mmpose.visualization  # noqa
import mmunsup3d  # noqa
PYCHECK

echo "$WANT" >"$STAMP"
echo "[bootstrap] environment ready: $VENV"
