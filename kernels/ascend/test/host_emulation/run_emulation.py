"""Host emulation of the Ascend C NeighborList operator, compared with the CPU kernel.

What this is: op_host/neighbor_list.cpp and op_kernel/neighbor_list.cpp compiled with g++ against
the mock Ascend C API in mock/ (one std::thread per vector core, std::barrier for SyncAll, DMA as a
bounds-checked memcpy), run on test structures, and compared
  * with the CPU kernel kernels/cpu/neighbor_list.cc (same fixed-capacity outputs, same order), and
  * with a brute-force enumeration of lattice images (same pair set; this also checks the CPU kernel).
What this is not: a CANN build or an NPU run. It cannot see bisheng compile errors, API misuse the
mock tolerates, pipe/event ordering bugs (the mock's DMA completes at once), cache effects or
performance. See ../../README.md.

Usage: python3 run_emulation.py [--quick] [--sanitize] [--contract] [--keep BUILD_DIR]
(about 8 minutes on 2 cores; --quick about 10 seconds)
Needs g++ (C++20) and numpy; does not need MindSpore, CANN or an NPU.
"""
from __future__ import annotations

import argparse
import ctypes
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ASCEND = HERE.parents[1]
CPU_SOURCE = ASCEND.parent / "cpu" / "neighbor_list.cc"


# ------------------------------------------------------------------------------------------ build
def build(out: Path, sanitize: bool, contract: bool = False) -> tuple[ctypes.CDLL, ctypes.CDLL]:
    flags = ["-std=c++20", "-O1", "-g", "-fPIC", "-shared", "-pthread", "-Wall", "-Wextra"]
    if sanitize:
        flags += ["-fsanitize=undefined", "-fno-sanitize-recover=undefined"]
    if contract:  # let the compiler fuse multiply-adds, as an NPU compiler may
        flags += ["-mfma", "-ffp-contract=fast"]
    emu = out / "libemu.so"
    subprocess.run(
        ["g++", *flags, f"-I{HERE / 'mock'}", f"-I{ASCEND / 'op_host'}", f"-I{ASCEND / 'op_kernel'}",
         str(ASCEND / "op_host" / "neighbor_list.cpp"), str(ASCEND / "op_kernel" / "neighbor_list.cpp"),
         str(HERE / "emu_driver.cc"), "-o", str(emu)],
        check=True,
    )
    cpu = out / "libcpu.so"
    subprocess.run(["g++", "-std=c++17", "-O2", "-fPIC", "-shared", "-pthread", str(CPU_SOURCE), "-o", str(cpu)],
                   check=True)
    e, c = ctypes.CDLL(str(emu)), ctypes.CDLL(str(cpu))
    P = ctypes.c_void_p
    e.emu_neighbor_list.restype = ctypes.c_int
    e.emu_neighbor_list.argtypes = [P, ctypes.c_int64, P, P, P, ctypes.c_int64, ctypes.c_float, ctypes.c_int64,
                                    ctypes.c_int, P, P, P, P, P]
    c.msmm_nl_compute.restype = P
    c.msmm_nl_compute.argtypes = [P, P, P, P, ctypes.c_int64, ctypes.c_double, ctypes.c_int, ctypes.c_int,
                                  ctypes.c_int, ctypes.POINTER(ctypes.c_int64)]
    c.msmm_nl_fetch.restype = None
    c.msmm_nl_fetch.argtypes = [P, P, P, P, ctypes.c_int64]
    c.msmm_nl_free.restype = None
    c.msmm_nl_free.argtypes = [P]
    return e, c


# ------------------------------------------------------------------------------------------ runners
class Batch:
    def __init__(self, positions, cells, pbc, offsets, cutoff):
        self.positions = np.ascontiguousarray(positions, np.float32).reshape(-1, 3)
        self.cells = np.ascontiguousarray(cells, np.float32).reshape(-1, 3, 3)
        self.pbc = np.ascontiguousarray(pbc, np.uint8).reshape(-1, 3)
        self.offsets = np.ascontiguousarray(offsets, np.int32)
        self.cutoff = float(cutoff)


def run_emu(lib, b: Batch, capacity: int, cores: int):
    c = max(capacity, 0)
    ii, jj = np.empty(c, np.int32), np.empty(c, np.int32)
    ss, cnt, info = np.empty((c, 3), np.int32), np.empty(1, np.int32), np.zeros(4, np.int64)
    rc = lib.emu_neighbor_list(b.positions.ctypes.data, len(b.positions), b.cells.ctypes.data, b.pbc.ctypes.data,
                               b.offsets.ctypes.data, len(b.cells), b.cutoff, capacity, cores, ii.ctypes.data,
                               jj.ctypes.data, ss.ctypes.data, cnt.ctypes.data, info.ctypes.data)
    if rc != 0:
        raise RuntimeError(f"host side of the emulation refused the inputs (code {rc})")
    return ii, jj, ss, int(cnt[0]), info


def run_cpu_full(lib, b: Batch):
    total = ctypes.c_int64(0)
    off64 = b.offsets.astype(np.int64)
    h = lib.msmm_nl_compute(b.positions.ctypes.data, b.cells.ctypes.data, b.pbc.ctypes.data, off64.ctypes.data,
                            len(b.cells), b.cutoff, 0, 0, 0, ctypes.byref(total))
    try:
        n = total.value
        if n < 0:
            return n, None
        ii, jj, ss = np.empty(n, np.int32), np.empty(n, np.int32), np.empty((n, 3), np.int32)
        lib.msmm_nl_fetch(h, ii.ctypes.data, jj.ctypes.data, ss.ctypes.data, n)
        return n, (ii, jj, ss)
    finally:
        lib.msmm_nl_free(h)


def expected_fixed(total, full, capacity):
    """The CPU kernel's NeighborListAOT outputs for capacity C, from its full list."""
    ii, jj, ss = np.zeros(capacity, np.int32), np.zeros(capacity, np.int32), np.zeros((capacity, 3), np.int32)
    if total < 0:
        return ii, jj, ss, total
    k = min(total, capacity)
    ii[:k], jj[:k], ss[:k] = full[0][:k], full[1][:k], full[2][:k]
    return ii, jj, ss, min(total, 2**31 - 1)


# ------------------------------------------------------------------------------------------ brute force
def binning_basis(cell, pbc):
    rows = cell.astype(np.float64)
    basis = rows.copy()
    per = [k for k in range(3) if pbc[k]]
    if len(per) == 2:
        n = np.cross(rows[per[0]], rows[per[1]])
        for k in range(3):
            if not pbc[k]:
                basis[k] = n / np.linalg.norm(n)
    elif len(per) == 1:
        a = rows[per[0]] / np.linalg.norm(rows[per[0]])
        e = np.eye(3)[0] if abs(a[0]) < 0.6 else (np.eye(3)[1] if abs(a[1]) < 0.6 else np.eye(3)[2])
        u = np.cross(a, e)
        u /= np.linalg.norm(u)
        v = np.cross(a, u)
        free = [k for k in range(3) if not pbc[k]]
        basis[free[0]], basis[free[1]] = u, v
    elif len(per) == 0:
        basis = np.eye(3)
    return basis


def brute_force(b: Batch):
    """Set of (i, j, sx, sy, sz) with |r_j - r_i + S cell| < cutoff, enumerating lattice images."""
    out = set()
    for s in range(len(b.cells)):
        o0, o1 = int(b.offsets[s]), int(b.offsets[s + 1])
        if o1 == o0:
            continue
        r = b.positions[o0:o1].astype(np.float64)
        cell = b.cells[s].astype(np.float64)
        pbc = b.pbc[s].astype(bool)
        basis = binning_basis(cell, pbc)
        frac = r @ np.linalg.inv(basis)
        thick = 1.0 / np.linalg.norm(np.linalg.inv(basis), axis=0)
        axes = []
        for k in range(3):
            if pbc[k]:
                K = int(math.ceil(b.cutoff / thick[k] + frac[:, k].max() - frac[:, k].min())) + 1
                axes.append(np.arange(-K, K + 1))
            else:
                axes.append(np.zeros(1, np.int64))
        shifts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        # keep images that can hold a pair: |S cell| <= cutoff + largest |r_j - r_i|
        span = np.linalg.norm(r.max(0) - r.min(0))
        shifts = shifts[np.linalg.norm(shifts @ cell, axis=1) <= b.cutoff + span + 1e-9]
        diff = r[None, :, :] - r[:, None, :]  # [i, j, 3]
        for c0 in range(0, len(shifts), 512):
            chunk = shifts[c0:c0 + 512]
            d = diff[:, :, None, :] + (chunk @ cell)[None, None, :, :]
            ii, jj, kk = np.nonzero(np.einsum("ijkc,ijkc->ijk", d, d) < b.cutoff * b.cutoff)
            for i, j, k in zip(ii.tolist(), jj.tolist(), kk.tolist()):
                sx, sy, sz = chunk[k].tolist()
                if i == j and sx == 0 and sy == 0 and sz == 0:
                    continue
                out.add((o0 + i, o0 + j, sx, sy, sz))
    return out


# ------------------------------------------------------------------------------------------ cases
def random_cell(rng, scale, skew):
    cell = np.diag(rng.uniform(0.7, 1.3, 3) * scale)
    cell += rng.uniform(-skew, skew, (3, 3)) * scale * (1 - np.eye(3))
    return cell


def make_batch(rng, sizes, scale=8.0, skew=0.4, pbc_mode="random", cutoff=3.5, unwrap=3, density=None):
    pos, cells, pbcs, offsets = [], [], [], [0]
    for n in sizes:
        cell = random_cell(rng, scale, skew)
        if pbc_mode == "random":
            p = rng.integers(0, 2, 3).astype(bool)
        elif pbc_mode == "all":
            p = np.ones(3, bool)
        else:
            p = np.zeros(3, bool)
        frac = rng.uniform(0, 1, (n, 3))
        if unwrap:
            frac[:, p] += rng.integers(-unwrap, unwrap + 1, (n, int(p.sum())))
        r = frac @ cell
        if not p.all() and rng.uniform() < 0.5:
            cell[~p] = 0.0  # molecules and slabs often carry zero rows along open axes
        pos.append(r)
        cells.append(cell)
        pbcs.append(p)
        offsets.append(offsets[-1] + n)
    return Batch(np.concatenate(pos) if pos else np.zeros((0, 3)), np.array(cells), np.array(pbcs),
                 np.array(offsets), cutoff)


def check_case(name, emu, cpu, b: Batch, capacities, cores_list, brute=False, expect_code=None, stats=None):
    total, full = run_cpu_full(cpu, b)
    if expect_code is not None and total != expect_code:
        raise AssertionError(f"{name}: CPU kernel returned {total}, expected {expect_code}")
    if brute and total >= 0:
        ref = brute_force(b)
        got = set(zip(full[0].tolist(), full[1].tolist(), *(full[2][:, k].tolist() for k in range(3))))
        if got != ref:
            raise AssertionError(f"{name}: CPU kernel differs from brute force: missing {len(ref - got)}, "
                                 f"extra {len(got - ref)}")
    for cap in capacities(total):
        for cores in cores_list:
            ii, jj, ss, cnt, info = run_emu(emu, b, cap, cores)
            ei, ej, es, ec = expected_fixed(total, full, cap)
            if cnt != ec or not (np.array_equal(ii, ei) and np.array_equal(jj, ej) and np.array_equal(ss, es)):
                k = min(max(total, 0), cap)
                first = next((t for t in range(k) if (ii[t], jj[t], *ss[t]) != (ei[t], ej[t], *es[t])), None)
                raise AssertionError(f"{name}: capacity {cap}, {cores} cores (blockDim {info[0]}): count {cnt} vs "
                                     f"{ec}, first differing slot {first}")
            if stats is not None:
                stats.append((name, cap, cores, int(info[0]), ec))
    print(f"  {name}: {total} pairs, ok", flush=True)
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sanitize", action="store_true", help="build with -fsanitize=undefined")
    ap.add_argument("--contract", action="store_true", help="build the kernel with -mfma -ffp-contract=fast")
    ap.add_argument("--quick", action="store_true", help="fewer and smaller cases (for CI)")
    ap.add_argument("--keep", type=Path, help="build directory to keep")
    args = ap.parse_args()
    out = args.keep or Path(tempfile.mkdtemp(prefix="msmm_ascend_emu_"))
    out.mkdir(parents=True, exist_ok=True)
    emu, cpu = build(out, args.sanitize, args.contract)
    rng = np.random.default_rng(20240611)
    stats = []

    def caps_basic(total):
        if total < 0:
            return [0, 16]
        return sorted({0, 1, max(total - 7, 0), total, total + 13, 2 * total + 100})

    cores = [40, 7, 1]
    # small systems, checked against brute force too
    q = args.quick
    for t in range(4 if q else 12):
        sizes = rng.integers(0, 40, rng.integers(1, 6)).tolist()
        b = make_batch(rng, sizes, scale=rng.uniform(3.0, 9.0), skew=0.5, cutoff=rng.uniform(2.0, 7.0))
        check_case(f"small-{t}", emu, cpu, b, caps_basic, cores, brute=True, stats=stats)
    # cutoff much larger than the cell, triclinic, unwrapped
    b = make_batch(rng, [12, 7], scale=2.5, skew=0.6, pbc_mode="all", cutoff=6.0, unwrap=5)
    check_case("cutoff>>cell", emu, cpu, b, caps_basic, cores, brute=True, stats=stats)
    # isolated molecule, zero cell
    b = make_batch(rng, [60], scale=12.0, pbc_mode="none", cutoff=4.0)
    b.cells[:] = 0.0
    check_case("molecule", emu, cpu, b, caps_basic, cores, brute=True, stats=stats)
    # big batches: several cores, structures split across cores
    for t in range(1 if q else 4):
        sizes = rng.integers(0, 400, 25).tolist()
        b = make_batch(rng, sizes, scale=rng.uniform(8.0, 14.0), skew=0.3, cutoff=rng.uniform(3.0, 5.0))
        check_case(f"batch-{t}", emu, cpu, b, caps_basic, [40, 13], stats=stats)
    # one large periodic structure over many cores
    nbulk = 1500 if q else 6000
    b = make_batch(rng, [nbulk], scale=38.0 * (nbulk / 6000) ** (1 / 3), skew=0.2, pbc_mode="all", cutoff=4.5)
    check_case(f"bulk-{nbulk}", emu, cpu, b, lambda t: [t, t - 1000, t + 1], [40], stats=stats)
    # spill: dense structure first, dilute after, capacity exactly the total
    nd, nl = (500, 1000) if q else (1500, 3000)
    dense = make_batch(rng, [nd], scale=12.0 * (nd / 1500) ** (1 / 3), pbc_mode="all", cutoff=5.0)
    dilute = make_batch(rng, [nl], scale=80.0 * (nl / 3000) ** (1 / 3), pbc_mode="all", cutoff=5.0)
    b = Batch(np.concatenate([dense.positions, dilute.positions]), np.concatenate([dense.cells, dilute.cells]),
              np.concatenate([dense.pbc, dilute.pbc]), np.array([0, nd, nd + nl]), 5.0)
    check_case("spill", emu, cpu, b, lambda t: [t, t // 2, t + 5], [40, 9], stats=stats)

    # errors: the first failing structure decides, cell before lattice before positions
    def errcase(name, mutate, code):
        bb = make_batch(rng, [30, 0, 40, 25, 50, 300, 20], scale=7.0, pbc_mode="all", cutoff=3.0)
        mutate(bb)
        check_case(name, emu, cpu, bb, lambda t: [0, 64], [40, 3], expect_code=code, stats=stats)

    def nan_pos(s, k=0):
        return lambda bb: bb.positions.__setitem__((bb.offsets[s] + k, 1), np.nan)

    def degenerate(s):
        def f(bb):
            bb.cells[s][2] = bb.cells[s][0] * 2.0
        return f

    def nan_cell(s):
        return lambda bb: bb.cells[s].__setitem__((1, 1), np.inf)

    errcase("nan-position", nan_pos(3, 4), -1)
    errcase("degenerate", degenerate(4), -2)
    errcase("nan-first-then-degenerate", lambda bb: (nan_pos(2)(bb), degenerate(4)(bb)), -1)
    errcase("degenerate-first-then-nan", lambda bb: (degenerate(2)(bb), nan_pos(5, 250)(bb)), -2)
    errcase("nan-cell-of-empty-structure", lambda bb: (nan_cell(1)(bb), degenerate(4)(bb)), -1)
    errcase("degenerate-empty-structure-is-fine", degenerate(1), None)
    errcase("nan-in-last-atom-of-big-structure", nan_pos(5, 299), -1)

    # nearly flat cell (volume ratio ~1e-7): the CPU kernel accepts it (threshold 1e-12; with a face
    # thickness of ~1e-6 A its search range is millions of bins, so it is not run here), the NPU
    # kernel refuses it (threshold 1e-5, float32 geometry) -- a documented difference
    flat = make_batch(rng, [20], scale=6.0, pbc_mode="all", cutoff=3.0)
    flat.cells[0][2] = flat.cells[0][0] + 1e-7 * flat.cells[0][1]
    assert run_emu(emu, flat, 16, 40)[3] == -2

    # argument errors (-3): cutoff not finite and positive, offsets decreasing or beyond N
    b = make_batch(rng, [30, 40], scale=7.0, pbc_mode="all", cutoff=3.0)
    for cut in (0.0, -2.0, float("nan"), float("inf")):
        check_case(f"cutoff={cut}", emu, cpu, Batch(b.positions, b.cells, b.pbc, b.offsets, cut),
                   lambda t: [0, 32], [40], expect_code=-3, stats=stats)
    check_case("offsets-decreasing", emu, cpu, Batch(b.positions, b.cells, b.pbc, np.array([0, 50, 40]), 3.0),
               lambda t: [0, 32], [40], expect_code=-3, stats=stats)
    check_case("offsets-negative", emu, cpu, Batch(b.positions, b.cells, b.pbc, np.array([-1, 30, 70]), 3.0),
               lambda t: [0, 32], [40], expect_code=-3, stats=stats)
    # offsets beyond N: the ctypes entry of the CPU kernel cannot see N, its AOT entry returns -3 too
    r = run_emu(emu, Batch(b.positions, b.cells, b.pbc, np.array([0, 30, 71]), 3.0), 32, 40)
    assert r[3] == -3 and not r[0].any() and not r[2].any(), r[3]
    # no structures at all
    check_case("no-structures", emu, cpu, Batch(np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 3)),
                                                 np.array([0]), 3.0), lambda t: [0, 8], [40], stats=stats)

    runs = len(stats)
    pairs = sum(s[4] for s in stats if s[4] > 0)
    blocks = sorted({s[3] for s in stats})
    print(f"host emulation OK: {runs} runs, {pairs} pairs compared, block dims used {blocks}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
