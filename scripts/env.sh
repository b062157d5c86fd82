# Sourced by scripts/demo and scripts/test: make (or reuse) the project's virtual environment.
# Usage: ensure_venv "<extras>"   e.g. ensure_venv "dev,clip"
# Installs only when pyproject.toml or the extras changed since the last install (stamp file).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SRJUDGE_VENV:-$ROOT/.venv}"

ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3}"
    if ! command -v "$python" >/dev/null 2>&1; then
        echo "error: $python not found; install Python 3.11 or newer." >&2
        exit 1
    fi
    if ! "$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
        echo "error: srjudge needs Python >= 3.11; $python is $("$python" --version 2>&1)." >&2
        exit 1
    fi
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating virtual environment in $VENV" >&2
        "$python" -m venv "$VENV"
    fi
    local stamp="$VENV/.srjudge-install"
    local want
    want="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16) [$extras]"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "Installing srjudge[$extras] into $VENV (first run takes a minute or two)" >&2
        "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2
        # torch is pinned to exactly 2.13.0 (a CPU build) in pyproject.toml; any looser pin
        # would pull a multi-GB CUDA build.
        "$VENV/bin/python" -m pip install --quiet -e "$ROOT[$extras]" >&2
        echo "$want" >"$stamp"
    fi
}
