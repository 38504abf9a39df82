#!/usr/bin/env bash
# Run the README's test command inside the virtual environment $1 (default .ci-venv).
set -euo pipefail
venv="${1:-.ci-venv}"
source "$venv/bin/activate"
export GLOG_v=3
start=$(date +%s)
pip install -e ".[test]" && pytest -q
echo "ci/test.sh: install + tests took $(( $(date +%s) - start )) s"
