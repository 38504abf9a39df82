"""Compile and cache the package's C++ kernels (``kernels/cpu/*.cc``) with g++.

A kernel is compiled on first use into the user cache directory
(``$XDG_CACHE_HOME/mindsponge_mm/kernels/<hash>/``). The hash covers the source, the compiler
flags and the CPU, so a changed source or another machine rebuilds it. The library is written to
a temporary name and renamed, so concurrent ranks never load a half-written file.
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

from .errors import UserError

# -ffp-contract=off: no fused multiply-add, so results (pairs at the cutoff, sums) do not depend on the CPU
CXX_FLAGS = ["-O3", "-march=native", "-ffp-contract=off", "-std=c++17", "-shared", "-fPIC", "-pthread"]


class KernelBuildError(UserError):
    """A C++ kernel could not be compiled (no compiler, or a compiler error)."""


def find_source(name: str) -> Path | None:
    """``name`` (e.g. ``pair_ops.cc``): installed beside the package, or in the repository's ``kernels/cpu``."""
    for path in (Path(__file__).resolve().parent / "_kernels" / "cpu" / name,
                 Path(__file__).resolve().parents[1] / "kernels" / "cpu" / name):
        if path.exists():
            return path
    return None


def _cpu_tag() -> str:
    model = platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "flags")):
                model += line
    except OSError:
        pass
    return model


def library_path(source: Path, library_name: str) -> Path:
    """Where the library built from ``source`` with the current flags and CPU lives in the cache."""
    from .io_utils import cache_dir

    key = hashlib.sha1(source.read_bytes() + " ".join(CXX_FLAGS).encode() + _cpu_tag().encode()).hexdigest()[:16]
    return cache_dir() / "kernels" / key / library_name


def compile_library(source: Path, library_name: str, what: str, fallback: str) -> Path:
    """Build ``source`` into the cache unless it is there already; return the library path.

    ``what`` names the kernel and ``fallback`` the way around it, for the error messages.
    """
    lib = library_path(source, library_name)
    if lib.exists():
        return lib
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if not compiler:
        raise KernelBuildError(f"no C++ compiler found to build the {what}; install g++ (e.g. apt-get install g++) "
                               f"or {fallback}")
    lib.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=lib.parent)
    os.close(fd)
    try:
        proc = subprocess.run([compiler, *CXX_FLAGS, "-o", tmp, str(source)], capture_output=True, text=True)
        if proc.returncode != 0:
            first = next((l for l in proc.stderr.splitlines() if "error" in l), proc.stderr.strip()[:200])
            raise KernelBuildError(f"compiling the {what} failed ({first}); {fallback}")
        os.replace(tmp, lib)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib


def kernel_switched_on(env_switch: str, load, slower: str) -> bool:
    """Whether a CPU kernel family is used: the ``env_switch`` variable is not 0/off/false/no, the
    MindSpore target is the CPU, and ``load()`` (which compiles and loads the kernels) succeeds; a
    build failure warns that ``slower`` (e.g. "message passing") uses MindSpore ops instead."""
    if os.environ.get(env_switch, "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    import mindspore as ms

    if ms.get_context("device_target") != "CPU":
        return False
    try:
        load()
    except KernelBuildError as err:
        warnings.warn(f"{err}; {slower} uses MindSpore ops (slower on the CPU)", stacklevel=3)
        return False
    return True
