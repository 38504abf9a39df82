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
echo "created $venv with $("$venv/bin/python" --version)"
