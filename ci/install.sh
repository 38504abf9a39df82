#!/usr/bin/env bash
# Create a fresh virtual environment at $1 (default .ci-venv) with an up-to-date pip.
# The package itself is installed by the README's test command (ci/test.sh).
set -euo pipefail
venv="${1:-.ci-venv}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
# The [mace] extra's packages, so the suite runs the live comparisons with mace-torch (parity, converting
# .model files). torch 2.13.0 is the CPU build on this machine's disk; numpy<2 as MindSpore needs it.
"$venv/bin/python" -m pip install --quiet "numpy<2" torch==2.13.0 mace-torch==0.3.16
echo "created $venv with $("$venv/bin/python" --version)"
