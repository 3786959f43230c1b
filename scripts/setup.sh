#!/usr/bin/env bash
# Create .venv (Python 3.10: Lava 0.10 refuses newer) and install snnc into it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP="$VENV/.snnc-installed"

find_python310() {
    local cand
    for cand in "${SNNC_PYTHON:-}" python3.10; do
        [ -n "$cand" ] || continue
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
            command -v "$cand"; return 0
        fi
    done
    if command -v pyenv >/dev/null 2>&1; then
        for cand in "$(pyenv root)"/versions/3.10*/bin/python3.10; do
            if [ -x "$cand" ] && "$cand" -c 'import sys; assert sys.version_info[:2] == (3, 10)' >/dev/null 2>&1; then
                echo "$cand"; return 0
            fi
        done
    fi
    return 1
}

if [ ! -x "$VENV/bin/python" ]; then
    if ! PY=$(find_python310); then
        echo "snnc setup: no Python 3.10 found." >&2
        echo "  Lava 0.10 and lava-dl 0.6 run on Python 3.10 only (3.11 fails at import)." >&2
        echo "  Install one (e.g. 'pyenv install 3.10'), put python3.10 on PATH, or set SNNC_PYTHON=/path/to/python3.10." >&2
        exit 1
    fi
    echo "snnc setup: creating $VENV with $PY"
    "$PY" -m venv "$VENV"
fi

# Reinstall only when the project's requirements or its compiled kernels (setup.py builds
# snnc/backends/csrc/kernels.c in place) changed since the last install.
want=$(cat pyproject.toml setup.py snnc/backends/csrc/kernels.c | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    exit 0
fi
echo "snnc setup: installing snnc and its dependencies into $VENV (first time: a few minutes, ~3 GB for torch)"
# (pip's notes about this machine's local package folders are noise: drop them, keep real errors)
quiet() { "$@" 2> >(grep -v "^WARNING: Location 'file://" >&2); }
quiet "$VENV/bin/python" -m pip install --quiet --upgrade "pip<25" >/dev/null
quiet "$VENV/bin/python" -m pip install --quiet -e ".[dev,ray]"
echo "$want" > "$STAMP"
echo "snnc setup: done"
