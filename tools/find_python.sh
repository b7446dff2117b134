# Sourced by tools/{dist,slurm}_{train,test}.sh: sets TOOLS_DIR, REPO_DIR and PYTHON.
# PYTHON: kept if set; else the repo's .venv/bin/python (what `make` sets up) if it exists,
# else `python` on PATH.
TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[1]}")" && pwd)
REPO_DIR=$(dirname "$TOOLS_DIR")
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$REPO_DIR/.venv/bin/python" ]; then
        PYTHON="$REPO_DIR/.venv/bin/python"
    else
        PYTHON=python
    fi
fi
