# Sourced by hil/run and hil/ci: a venv with requirements.txt, outside the system Python.
# POSEDGE_HIL_VENV overrides where it lives (default: ~/.cache/posedge/hil-venv-<hash of
# requirements.txt>, so a change of pins makes a fresh one).
hil_venv() {
    local here req hash
    here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    req="$here/requirements.txt"
    hash="$(sha256sum "$req" | cut -c1-12)"
    HIL_VENV="${POSEDGE_HIL_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/posedge/hil-venv-$hash}"
    if [ ! -x "$HIL_VENV/bin/python" ] || [ ! -f "$HIL_VENV/.installed" ]; then
        local py
        py="$(command -v python3.11 || command -v python3)"
        echo "hil: creating venv $HIL_VENV ($("$py" --version))" >&2
        "$py" -m venv "$HIL_VENV" >&2
        "$HIL_VENV/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
        touch "$HIL_VENV/.installed"
    fi
    HIL_PY="$HIL_VENV/bin/python"
}
