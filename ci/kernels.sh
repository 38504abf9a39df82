#!/usr/bin/env bash
# Build and test the native kernels with their own drivers (no MindSpore involved):
#  - the C++ kernel against a brute-force reference (always; needs g++);
#  - the Ascend C kernel in a host emulation (g++ against a mock of the Ascend C API; no CANN here);
#  - the CUDA kernel when nvcc is present: compile, then run its driver (exit 77 = no GPU, skipped).
set -euo pipefail
cd "$(dirname "$0")/../kernels/cuda"
make --no-print-directory selftest | tail -n 1
(cd ../ascend/test/host_emulation && python3 run_emulation.py --quick | tail -n 1)
if command -v nvcc >/dev/null; then
  make --no-print-directory all >/dev/null
  echo "kernels: CUDA kernel compiled with $(nvcc --version | tail -n 1)"
  set +e
  ./build/test_driver > build/driver.log 2>&1
  rc=$?
  set -e
  tail -n 1 build/driver.log
  if [ "$rc" -eq 77 ]; then
    echo "kernels: no CUDA device here; the CUDA driver test was skipped"
  elif [ "$rc" -ne 0 ]; then
    echo "kernels: CUDA driver test FAILED"; exit 1
  fi
else
  echo "kernels: nvcc not found; CUDA kernel not compiled"
fi
