#!/usr/bin/env bash
# Create or refresh ./.venv with sweeper and its pinned dependencies (about 2 minutes, 6 GB, the first time).
# Sourced by scripts/sweeper and scripts/test; re-installs only when pyproject.toml changed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.sweeper-installed"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "bootstrap: installing sweeper and its dependencies into $venv (log: $venv/install.log)" >&2
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    if ! "$venv/bin/python" -m pip install -e "$root[dev]" >"$venv/install.log" 2>&1; then
        grep -v "is ignored: it is neither a file nor a directory" "$venv/install.log" | tail -20 >&2
        echo "bootstrap: pip install failed; full log in $venv/install.log" >&2
        exit 1
    fi
    touch "$stamp"
fi
