// CUDA cell-list neighbor search for many structures at once, with full periodic boundary conditions.
//
// This is the GPU twin of kernels/cpu/neighbor_list.cc: the same semantics (those of
// ase.neighborlist.neighbor_list("ijS"): full list i->j and j->i, integer cell shifts S with
// r_ij = R[j] - R[i] + S @ cell, pairs with |r_ij| < cutoff strictly, no self pair i == j with S == 0),
// the same binning algorithm, the same MindSpore AOT signature and the same fixed-capacity contract.
//
// Entry points:
//   * NeighborListAOT: MindSpore ops.Custom(func_type="aot") on GPU. params are DEVICE pointers and
//     `stream` is the cudaStream_t MindSpore runs the op on;
//   * msmm_nl_cuda: host-callable (host arrays in and out, float64), used by the test driver.
//
// Pipeline (all on `stream`; nothing is copied to the host, nothing waits for the device):
//   K1 nl_setup_kernel      one thread per structure: offsets check, cell finite check, binning basis B
//                           (periodic rows = lattice vectors, non-periodic rows = unit vectors completing
//                           the basis), B^-1, face-to-face thickness;
//   K2 nl_atoms_kernel      one thread per atom: finite check, fractional coordinates s = r B^-1, wrap into
//                           [0, 1) along periodic axes (remembering the integer part m), min/max of s along
//                           non-periodic axes (atomic CAS on doubles; min/max is exact so order-independent);
//   K3 nl_grid_kernel       one thread per structure: bins per axis, the "at most max(27, 2n) bins" reduction,
//                           bin widths, search ranges, exactly as the CPU kernel; first failing structure;
//   K4 nl_bin_kernel        one thread per atom: bin of the atom, bin counts by atomicAdd (the returned old
//                           value is the atom's rank inside its bin);
//   K5 cub::DeviceScan::ExclusiveSum over all bin counts -> bin starts;
//   K6 nl_scatter_kernel    one thread per atom: bin_atoms[bin_start + rank] = atom;
//   K7 nl_search_kernel     one thread per atom: scan the neighbor bins (with their lattice images), test the
//                           distance, append pairs with a warp-aggregated atomicAdd on a 64-bit counter,
//                           writing a pair only when its slot < C;
//   K8 nl_finalize_kernel   one thread: count = error code of the first failing structure, else
//                           min(#pairs, INT32_MAX).
//
// Differences from the CPU kernel (by design):
//   * Pair ORDER: slots are handed out by atomics, so the order of pairs in the output is not deterministic
//     and not sorted by i (the CPU output is ordered by i). The SET of pairs is the same. On overflow
//     (count > C) WHICH C pairs are written is therefore also not deterministic (the CPU writes the first C
//     in its order).
//   * Extra error code -3 (GPU only): offsets not non-decreasing or outside [0, N]. The CPU kernel does not
//     check offsets (undefined behaviour there); on the GPU an out-of-range index would corrupt device
//     memory, so it is refused. A non-finite cutoff gives -1 here (the CPU kernel has undefined behaviour:
//     float->int conversion of inf/NaN); on the GPU it could otherwise loop for ever.
//   * Bit-for-bit agreement of the floating-point steps with the CPU kernel requires no FMA contraction on
//     either side: the Makefile builds this file with -fmad=false (and the CPU reference with
//     -ffp-contract=off). With contraction, results can differ only for pairs at |r_ij| == cutoff to within
//     rounding, or atoms exactly on a bin boundary (which changes nothing in the pair set).
//
// Temporary device memory (bin arrays, fractional coordinates, CUB scratch) comes from the stream-ordered
// allocator (cudaMallocAsync/cudaFreeAsync on `stream`), so no host synchronisation is needed. On a device
// without memory-pool support it falls back to cudaMalloc + cudaStreamSynchronize + cudaFree (one sync; this
// is the only place where the host waits for the device).
//
// Sizes known on the host without looking at device data: N (atoms), S (structures), C (capacity). Each
// structure s gets a private bin range starting at 27 * s + 2 * (offsets[s] - offsets[0]); the CPU kernel
// guarantees n_bins(s) <= max(27, 2 * n_s), so 27 * S + 2 * N bins are enough for any input.
#include <cuda_runtime.h>
#include <cooperative_groups.h>
#include <cub/device/device_scan.cuh>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cg = cooperative_groups;

namespace {

constexpr int kErrNonFinite = -1;   // a position, cell entry or the cutoff is NaN or inf
constexpr int kErrDegenerate = -2;  // a periodic lattice vector is zero or the periodic vectors are dependent
constexpr int kErrOffsets = -3;     // GPU only: offsets decreasing or outside [0, N]
constexpr int kNoError = INT_MAX;   // value of first_err when no structure failed
constexpr int kBlock = 256;

struct D3 {
  double x, y, z;
};

__device__ __forceinline__ D3 cross3(const D3& a, const D3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
__device__ __forceinline__ double dot3(const D3& a, const D3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
__device__ __forceinline__ double norm3(const D3& a) { return sqrt(dot3(a, a)); }
__device__ __forceinline__ D3 scale3(const D3& a, double s) { return {a.x * s, a.y * s, a.z * s}; }

__device__ __forceinline__ int64_t floor_div64(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// double -> int64 without undefined behaviour for huge values (identical to the plain cast where the cast is defined)
__device__ __forceinline__ int64_t to_i64(double x) {
  const double lim = 4.0e18;
  if (x >= lim) return int64_t(4000000000000000000LL);
  if (x <= -lim) return -int64_t(4000000000000000000LL);
  if (x != x) return 0;
  return int64_t(x);
}

// a * b * c > m for positive a, b, c, m, without overflow
__device__ __forceinline__ bool product_exceeds(int64_t a, int64_t b, int64_t c, int64_t m) {
  if (c > m) return true;
  if (b > m / c) return true;
  return a > m / (b * c);
}

// Everything the search of one structure needs (device memory, one per structure).
struct StructInfo {
  double cell[9];      // the real cell, rows
  double inv[9];       // columns of B^-1: inv[3 * k + c] is component c of column k
  double thickness[3];
  double lo[3], hi[3]; // min / max of the fractional coordinate along each non-periodic axis
  double width[3];
  int64_t first, count, bin_base;
  int64_t nbin[3], range[3];
  int pbc[3];
  int status;
};

__device__ void atomic_min_double(double* addr, double v) {
  unsigned long long* p = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *reinterpret_cast<volatile unsigned long long*>(p);
  while (v < __longlong_as_double(static_cast<long long>(old))) {
    unsigned long long assumed = old;
    old = atomicCAS(p, assumed, static_cast<unsigned long long>(__double_as_longlong(v)));
    if (old == assumed) break;
  }
}

__device__ void atomic_max_double(double* addr, double v) {
  unsigned long long* p = reinterpret_cast<unsigned long long*>(addr);
  unsigned long long old = *reinterpret_cast<volatile unsigned long long*>(p);
  while (v > __longlong_as_double(static_cast<long long>(old))) {
    unsigned long long assumed = old;
    old = atomicCAS(p, assumed, static_cast<unsigned long long>(__double_as_longlong(v)));
    if (old == assumed) break;
  }
}

// Unit vectors completing the periodic rows to a basis (rows of B for non-periodic axes). Same as the CPU.
__device__ int binning_basis_dev(const double cell[9], const int pbc[3], D3 basis[3]) {
  D3 rows[3];
  for (int k = 0; k < 3; ++k) rows[k] = {cell[3 * k], cell[3 * k + 1], cell[3 * k + 2]};
  int periodic[3] = {0, 0, 0}, n_periodic = 0;
  for (int k = 0; k < 3; ++k)
    if (pbc[k]) periodic[n_periodic++] = k;
  for (int k = 0; k < 3; ++k) basis[k] = rows[k];
  if (n_periodic == 3) {
    double vol = fabs(dot3(rows[0], cross3(rows[1], rows[2])));
    double scale_ = norm3(rows[0]) * norm3(rows[1]) * norm3(rows[2]);
    return (scale_ > 0 && vol > 1e-12 * scale_) ? 0 : kErrDegenerate;
  }
  if (n_periodic == 2) {
    D3 n = cross3(rows[periodic[0]], rows[periodic[1]]);
    double len = norm3(n);
    if (!(len > 1e-12 * norm3(rows[periodic[0]]) * norm3(rows[periodic[1]])) || len == 0) return kErrDegenerate;
    for (int k = 0; k < 3; ++k)
      if (!pbc[k]) basis[k] = scale3(n, 1.0 / len);
    return 0;
  }
  if (n_periodic == 1) {
    D3 a = rows[periodic[0]];
    double len = norm3(a);
    if (!(len > 0)) return kErrDegenerate;
    D3 unit = scale3(a, 1.0 / len);
    D3 e = fabs(unit.x) < 0.6 ? D3{1, 0, 0} : (fabs(unit.y) < 0.6 ? D3{0, 1, 0} : D3{0, 0, 1});
    D3 u = cross3(unit, e);
    u = scale3(u, 1.0 / norm3(u));
    D3 v = cross3(unit, u);
    int filled = 0;
    for (int k = 0; k < 3; ++k)
      if (!pbc[k]) basis[k] = (filled++ == 0) ? u : v;
    return 0;
  }
  basis[0] = {1, 0, 0};
  basis[1] = {0, 1, 0};
  basis[2] = {0, 0, 1};
  return 0;
}

template <typename Real>
__device__ __forceinline__ double read_cutoff(const Real* cutoff) {
  return double(cutoff[0]);
}

// K1: per-structure setup.
template <typename Real>
__global__ void nl_setup_kernel(const Real* __restrict__ cells, const uint8_t* __restrict__ pbc,
                                const int32_t* __restrict__ offsets, const Real* __restrict__ cutoff_p, int64_t S,
                                int64_t N, StructInfo* __restrict__ info, int* __restrict__ first_err,
                                unsigned long long* __restrict__ counter) {
  const int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s == 0) {
    *first_err = kNoError;
    *counter = 0ULL;
  }
  if (s >= S) return;
  StructInfo& g = info[s];
  const int64_t first = offsets[s], end = offsets[s + 1], base0 = offsets[0];
  g.first = first;
  g.count = end - first;
  g.bin_base = 27 * s + 2 * (first - base0);
  g.status = 0;
  for (int k = 0; k < 3; ++k) {
    g.nbin[k] = 1;
    g.range[k] = 0;
    g.lo[k] = INFINITY;
    g.hi[k] = -INFINITY;
    g.width[k] = 0;
    g.thickness[k] = 0;
  }
  if (first < 0 || end < first || end > N || first < base0) {
    g.status = kErrOffsets;
    g.count = 0;
    return;
  }
  const double cutoff = read_cutoff(cutoff_p);
  if (!isfinite(cutoff)) {
    g.status = kErrNonFinite;
    return;
  }
  for (int r = 0; r < 3; ++r) {
    for (int c = 0; c < 3; ++c) {
      g.cell[3 * r + c] = double(cells[9 * s + 3 * r + c]);
      if (!isfinite(g.cell[3 * r + c])) {
        g.status = kErrNonFinite;
        return;
      }
    }
    g.pbc[r] = pbc[3 * s + r] ? 1 : 0;
  }
  if (g.count == 0) return;  // empty structure: no grid (and, as on the CPU, no degenerate-cell check)
  D3 basis[3];
  int status = binning_basis_dev(g.cell, g.pbc, basis);
  if (status) {
    g.status = status;
    return;
  }
  D3 c0 = cross3(basis[1], basis[2]), c1 = cross3(basis[2], basis[0]), c2 = cross3(basis[0], basis[1]);
  double det = dot3(basis[0], c0);
  D3 inv_cols[3] = {scale3(c0, 1.0 / det), scale3(c1, 1.0 / det), scale3(c2, 1.0 / det)};
  g.thickness[0] = fabs(det) / norm3(c0);
  g.thickness[1] = fabs(det) / norm3(c1);
  g.thickness[2] = fabs(det) / norm3(c2);
  for (int k = 0; k < 3; ++k) {
    g.inv[3 * k] = inv_cols[k].x;
    g.inv[3 * k + 1] = inv_cols[k].y;
    g.inv[3 * k + 2] = inv_cols[k].z;
  }
}

// Structure of atom a (offsets[s] <= a < offsets[s + 1]), or -1 if a belongs to none.
__device__ __forceinline__ int64_t structure_of(const int32_t* __restrict__ offsets, int64_t S, int64_t a) {
  if (a < offsets[0] || a >= offsets[S]) return -1;
  int64_t lo = 0, hi = S;  // find the last s with offsets[s] <= a
  while (hi - lo > 1) {
    int64_t mid = (lo + hi) / 2;
    if (offsets[mid] <= a)
      lo = mid;
    else
      hi = mid;
  }
  return (offsets[lo] <= a && a < offsets[lo + 1]) ? lo : -1;
}

// K2: fractional coordinates, wrap, min/max along non-periodic axes.
template <typename Real>
__global__ void nl_atoms_kernel(const Real* __restrict__ positions, const int32_t* __restrict__ offsets, int64_t S,
                                int64_t N, StructInfo* __restrict__ info, int32_t* __restrict__ sid,
                                double* __restrict__ frac, int32_t* __restrict__ wrap) {
  const int64_t a = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= N) return;
  const int64_t s = structure_of(offsets, S, a);
  sid[a] = int32_t(s);
  if (s < 0) return;
  StructInfo& g = info[s];
  if (g.status) return;
  const Real* r = positions + 3 * a;
  D3 p = {double(r[0]), double(r[1]), double(r[2])};
  if (!isfinite(p.x) || !isfinite(p.y) || !isfinite(p.z)) {
    g.status = kErrNonFinite;  // every writer writes the same value
    return;
  }
  for (int k = 0; k < 3; ++k) {
    D3 col = {g.inv[3 * k], g.inv[3 * k + 1], g.inv[3 * k + 2]};
    double sk = dot3(p, col);
    int32_t w = 0;
    if (g.pbc[k]) {
      double m = floor(sk);
      sk -= m;
      if (sk >= 1.0) {  // rounding of a value just below an integer
        sk -= 1.0;
        m += 1.0;
      }
      w = int32_t(m);
    } else {
      atomic_min_double(&g.lo[k], sk);
      atomic_max_double(&g.hi[k], sk);
    }
    frac[3 * a + k] = sk;
    wrap[3 * a + k] = w;
  }
}

// K3: bins and search ranges (same arithmetic as the CPU kernel), and the first failing structure.
template <typename Real>
__global__ void nl_grid_kernel(const Real* __restrict__ cutoff_p, int64_t S, StructInfo* __restrict__ info,
                               int* __restrict__ first_err) {
  const int64_t s = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (s >= S) return;
  StructInfo& g = info[s];
  if (g.status) {
    atomicMin(first_err, int(s));
    return;
  }
  if (g.count == 0) return;
  const double cutoff = read_cutoff(cutoff_p);
  for (int k = 0; k < 3; ++k) {
    double extent = g.pbc[k] ? g.thickness[k] : (g.hi[k] - g.lo[k]);
    int64_t nb = (extent > cutoff) ? to_i64(extent / cutoff) : 1;
    g.nbin[k] = nb > 1 ? nb : 1;
  }
  const int64_t max_bins = 2 * g.count > 27 ? 2 * g.count : 27;
  while (product_exceeds(g.nbin[0], g.nbin[1], g.nbin[2], max_bins)) {
    int k = 0;  // first axis with the largest count (std::max_element)
    if (g.nbin[1] > g.nbin[k]) k = 1;
    if (g.nbin[2] > g.nbin[k]) k = 2;
    int64_t h = g.nbin[k] / 2;
    g.nbin[k] = h > 1 ? h : 1;
  }
  for (int k = 0; k < 3; ++k) {
    double extent = g.pbc[k] ? g.thickness[k] : (g.hi[k] - g.lo[k]);
    g.width[k] = extent / double(g.nbin[k]);
    int64_t r = (g.width[k] > 0) ? to_i64(ceil(cutoff / g.width[k])) : 0;
    if (!g.pbc[k]) r = r < g.nbin[k] - 1 ? r : g.nbin[k] - 1;
    const int64_t floor_r = g.pbc[k] ? 1 : 0;
    g.range[k] = r > floor_r ? r : floor_r;
  }
}

// K4: bin of each atom and bin counts.
__global__ void nl_bin_kernel(int64_t N, const StructInfo* __restrict__ info, const int* __restrict__ first_err,
                              const int32_t* __restrict__ sid, const double* __restrict__ frac,
                              int32_t* __restrict__ bin_of, int32_t* __restrict__ rank,
                              int32_t* __restrict__ bin_count) {
  const int64_t a = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= N || *first_err != kNoError) return;
  const int s = sid[a];
  if (s < 0) return;
  const StructInfo& g = info[s];
  int64_t b[3];
  for (int k = 0; k < 3; ++k) {
    const double f = frac[3 * a + k];
    double u = g.pbc[k] ? f : (g.width[k] > 0 ? (f - g.lo[k]) / (g.hi[k] - g.lo[k]) : 0.0);
    int64_t idx = to_i64(u * double(g.nbin[k]));
    idx = idx > 0 ? idx : 0;
    b[k] = idx < g.nbin[k] - 1 ? idx : g.nbin[k] - 1;
  }
  const int32_t lin = int32_t((b[0] * g.nbin[1] + b[1]) * g.nbin[2] + b[2]);
  bin_of[a] = lin;
  rank[a] = atomicAdd(&bin_count[g.bin_base + lin], 1);
}

// K6: counting sort, scatter step.
__global__ void nl_scatter_kernel(int64_t N, const StructInfo* __restrict__ info, const int* __restrict__ first_err,
                                  const int32_t* __restrict__ sid, const int32_t* __restrict__ bin_of,
                                  const int32_t* __restrict__ rank, const int32_t* __restrict__ bin_start,
                                  int32_t* __restrict__ bin_atoms) {
  const int64_t a = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= N || *first_err != kNoError) return;
  const int s = sid[a];
  if (s < 0) return;
  bin_atoms[bin_start[info[s].bin_base + bin_of[a]] + rank[a]] = int32_t(a);
}

// Append one pair: one atomicAdd per group of converged lanes (warp-aggregated), write only below capacity.
__device__ __forceinline__ void emit_pair(unsigned long long* counter, int64_t capacity, int32_t i, int32_t j,
                                          int32_t sx, int32_t sy, int32_t sz, int32_t* __restrict__ idx_i,
                                          int32_t* __restrict__ idx_j, int32_t* __restrict__ shifts) {
  cg::coalesced_group grp = cg::coalesced_threads();
  unsigned long long base = 0;
  if (grp.thread_rank() == 0) base = atomicAdd(counter, static_cast<unsigned long long>(grp.size()));
  base = grp.shfl(base, 0) + grp.thread_rank();
  if (base < static_cast<unsigned long long>(capacity)) {
    idx_i[base] = i;
    idx_j[base] = j;
    shifts[3 * base] = sx;
    shifts[3 * base + 1] = sy;
    shifts[3 * base + 2] = sz;
  }
}

// The bins (and their lattice image w) visited along one axis, in the CPU order: offsets -range..range.
struct AxisWalk {
  int64_t bin, wrap, steps;  // current bin, current image, number of bins to visit
};

__device__ __forceinline__ AxisWalk axis_start(int64_t b, int64_t range, int64_t n, int periodic) {
  AxisWalk w;
  if (periodic) {
    int64_t bb = b - range;
    w.wrap = floor_div64(bb, n);
    w.bin = bb - w.wrap * n;
    w.steps = 2 * range + 1;
  } else {  // out-of-range bins are skipped by the CPU; visit only the valid ones
    int64_t lo = b - range > 0 ? b - range : 0;
    int64_t hi = b + range < n - 1 ? b + range : n - 1;
    w.wrap = 0;
    w.bin = lo;
    w.steps = hi >= lo ? hi - lo + 1 : 0;
  }
  return w;
}

__device__ __forceinline__ void axis_next(AxisWalk& w, int64_t n) {
  if (++w.bin == n) {
    w.bin = 0;
    ++w.wrap;
  }
}

// K7: pair search, one thread per atom.
template <typename Real>
__global__ void nl_search_kernel(const Real* __restrict__ positions, const Real* __restrict__ cutoff_p, int64_t N,
                                 const StructInfo* __restrict__ info, const int* __restrict__ first_err,
                                 const int32_t* __restrict__ sid, const int32_t* __restrict__ bin_of,
                                 const int32_t* __restrict__ wrap, const int32_t* __restrict__ bin_start,
                                 const int32_t* __restrict__ bin_atoms, unsigned long long* __restrict__ counter,
                                 int64_t capacity, int32_t* __restrict__ idx_i, int32_t* __restrict__ idx_j,
                                 int32_t* __restrict__ shifts) {
  const int64_t a = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (a >= N || *first_err != kNoError) return;
  const int s = sid[a];
  if (s < 0) return;
  const StructInfo& g = info[s];
  const double cutoff = read_cutoff(cutoff_p);
  const double cut2 = cutoff * cutoff;
  const int64_t nx = g.nbin[0], ny = g.nbin[1], nz = g.nbin[2];
  const int64_t lin = bin_of[a];
  const int64_t b0 = lin / (ny * nz), b1 = (lin / nz) % ny, b2 = lin % nz;
  const double rix = positions[3 * a], riy = positions[3 * a + 1], riz = positions[3 * a + 2];
  const int32_t wax = wrap[3 * a], way = wrap[3 * a + 1], waz = wrap[3 * a + 2];
  const double c00 = g.cell[0], c01 = g.cell[1], c02 = g.cell[2];
  const double c10 = g.cell[3], c11 = g.cell[4], c12 = g.cell[5];
  const double c20 = g.cell[6], c21 = g.cell[7], c22 = g.cell[8];
  const int32_t* __restrict__ starts = bin_start + g.bin_base;

  AxisWalk wx = axis_start(b0, g.range[0], nx, g.pbc[0]);
  for (int64_t ix = 0; ix < wx.steps; ++ix, axis_next(wx, nx)) {
    AxisWalk wy = axis_start(b1, g.range[1], ny, g.pbc[1]);
    for (int64_t iy = 0; iy < wy.steps; ++iy, axis_next(wy, ny)) {
      AxisWalk wz = axis_start(b2, g.range[2], nz, g.pbc[2]);
      for (int64_t iz = 0; iz < wz.steps; ++iz, axis_next(wz, nz)) {
        const int64_t nb = (wx.bin * ny + wy.bin) * nz + wz.bin;
        const int32_t t_end = starts[nb + 1];
        for (int32_t t = starts[nb]; t < t_end; ++t) {
          const int64_t c = bin_atoms[t];
          const int32_t sx = int32_t(wx.wrap) + wax - wrap[3 * c];
          const int32_t sy = int32_t(wy.wrap) + way - wrap[3 * c + 1];
          const int32_t sz = int32_t(wz.wrap) + waz - wrap[3 * c + 2];
          if (c == a && sx == 0 && sy == 0 && sz == 0) continue;
          const Real* rj = positions + 3 * c;
          const double dx = double(rj[0]) - rix + sx * c00 + sy * c10 + sz * c20;
          const double dy = double(rj[1]) - riy + sx * c01 + sy * c11 + sz * c21;
          const double dz = double(rj[2]) - riz + sx * c02 + sy * c12 + sz * c22;
          if (dx * dx + dy * dy + dz * dz < cut2)
            emit_pair(counter, capacity, int32_t(a), int32_t(c), sx, sy, sz, idx_i, idx_j, shifts);
        }
      }
    }
  }
}

// K8: the count output.
__global__ void nl_finalize_kernel(const StructInfo* __restrict__ info, const int* __restrict__ first_err,
                                   const unsigned long long* __restrict__ counter, int32_t* __restrict__ count) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  const int fe = *first_err;
  if (fe != kNoError) {
    count[0] = info[fe].status;
    return;
  }
  const unsigned long long total = *counter;
  count[0] = total > static_cast<unsigned long long>(INT32_MAX) ? INT32_MAX : int32_t(total);
}

size_t align_up(size_t x) { return (x + 255) & ~size_t(255); }

inline unsigned grid_for(int64_t n) { return unsigned((n + kBlock - 1) / kBlock); }

// Temporary device memory on `stream`: stream-ordered when the device supports memory pools.
struct Workspace {
  void* ptr = nullptr;
  bool async = false;
};

cudaError_t workspace_alloc(Workspace& ws, size_t bytes, cudaStream_t stream) {
  int device = 0, pools = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  if (cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device) != cudaSuccess) pools = 0;
  ws.async = pools != 0;
  if (ws.async) return cudaMallocAsync(&ws.ptr, bytes, stream);
  return cudaMalloc(&ws.ptr, bytes);
}

cudaError_t workspace_free(Workspace& ws, cudaStream_t stream) {
  if (!ws.ptr) return cudaSuccess;
  cudaError_t err;
  if (ws.async) {
    err = cudaFreeAsync(ws.ptr, stream);
  } else {
    err = cudaStreamSynchronize(stream);  // the only host wait, and only without memory-pool support
    cudaError_t err2 = cudaFree(ws.ptr);
    if (err == cudaSuccess) err = err2;
  }
  ws.ptr = nullptr;
  return err;
}

// The whole search on device arrays. Returns 0 or a CUDA error code (> 0); the result (pairs or a negative
// error code) is in the output arrays once `stream` has finished.
template <typename Real>
int nl_launch(const Real* positions, const Real* cells, const uint8_t* pbc, const int32_t* offsets,
              const Real* cutoff, int64_t S, int64_t N, int64_t capacity, int32_t* idx_i, int32_t* idx_j,
              int32_t* shifts, int32_t* count, cudaStream_t stream) {
  if (S < 0 || N < 0 || capacity < 0) return int(cudaErrorInvalidValue);
  // outputs: unused slots are 0
  cudaError_t err = cudaSuccess;
  if (capacity > 0) {
    if ((err = cudaMemsetAsync(idx_i, 0, sizeof(int32_t) * size_t(capacity), stream)) != cudaSuccess) return int(err);
    if ((err = cudaMemsetAsync(idx_j, 0, sizeof(int32_t) * size_t(capacity), stream)) != cudaSuccess) return int(err);
    if ((err = cudaMemsetAsync(shifts, 0, 3 * sizeof(int32_t) * size_t(capacity), stream)) != cudaSuccess)
      return int(err);
  }
  if ((err = cudaMemsetAsync(count, 0, sizeof(int32_t), stream)) != cudaSuccess) return int(err);
  if (S == 0) return 0;  // no structures: no pairs (as on the CPU)

  const int64_t n_bins = 27 * S + 2 * N;  // upper bound on the bins of all structures together
  if (N > INT32_MAX || n_bins + 1 > INT32_MAX || S > INT32_MAX) return int(cudaErrorInvalidValue);

  size_t scan_bytes = 0;
  err = cub::DeviceScan::ExclusiveSum(nullptr, scan_bytes, static_cast<const int32_t*>(nullptr),
                                      static_cast<int32_t*>(nullptr), int(n_bins + 1), stream);
  if (err != cudaSuccess) return int(err);

  // workspace layout
  size_t off = 0;
  const size_t o_info = off;      off += align_up(sizeof(StructInfo) * size_t(S));
  const size_t o_ctrl = off;      off += align_up(sizeof(unsigned long long) + sizeof(int) * 2);
  const size_t o_sid = off;       off += align_up(sizeof(int32_t) * size_t(N));
  const size_t o_frac = off;      off += align_up(sizeof(double) * 3 * size_t(N));
  const size_t o_wrap = off;      off += align_up(sizeof(int32_t) * 3 * size_t(N));
  const size_t o_binof = off;     off += align_up(sizeof(int32_t) * size_t(N));
  const size_t o_rank = off;      off += align_up(sizeof(int32_t) * size_t(N));
  const size_t o_atoms = off;     off += align_up(sizeof(int32_t) * size_t(N));
  const size_t o_count = off;     off += align_up(sizeof(int32_t) * size_t(n_bins + 1));
  const size_t o_start = off;     off += align_up(sizeof(int32_t) * size_t(n_bins + 1));
  const size_t o_scan = off;      off += align_up(scan_bytes > 0 ? scan_bytes : 1);

  Workspace ws;
  if ((err = workspace_alloc(ws, off, stream)) != cudaSuccess) return int(err);
  char* base = static_cast<char*>(ws.ptr);
  StructInfo* info = reinterpret_cast<StructInfo*>(base + o_info);
  unsigned long long* counter = reinterpret_cast<unsigned long long*>(base + o_ctrl);
  int* first_err = reinterpret_cast<int*>(base + o_ctrl + sizeof(unsigned long long));
  int32_t* sid = reinterpret_cast<int32_t*>(base + o_sid);
  double* frac = reinterpret_cast<double*>(base + o_frac);
  int32_t* wrap = reinterpret_cast<int32_t*>(base + o_wrap);
  int32_t* bin_of = reinterpret_cast<int32_t*>(base + o_binof);
  int32_t* rank = reinterpret_cast<int32_t*>(base + o_rank);
  int32_t* bin_atoms = reinterpret_cast<int32_t*>(base + o_atoms);
  int32_t* bin_count = reinterpret_cast<int32_t*>(base + o_count);
  int32_t* bin_start = reinterpret_cast<int32_t*>(base + o_start);
  void* scan_tmp = base + o_scan;

  do {
    if ((err = cudaMemsetAsync(bin_count, 0, sizeof(int32_t) * size_t(n_bins + 1), stream)) != cudaSuccess) break;
    nl_setup_kernel<Real><<<grid_for(S), kBlock, 0, stream>>>(cells, pbc, offsets, cutoff, S, N, info, first_err,
                                                                counter);
    if (N > 0)
      nl_atoms_kernel<Real><<<grid_for(N), kBlock, 0, stream>>>(positions, offsets, S, N, info, sid, frac, wrap);
    nl_grid_kernel<Real><<<grid_for(S), kBlock, 0, stream>>>(cutoff, S, info, first_err);
    if (N > 0)
      nl_bin_kernel<<<grid_for(N), kBlock, 0, stream>>>(N, info, first_err, sid, frac, bin_of, rank, bin_count);
    if ((err = cudaGetLastError()) != cudaSuccess) break;
    err = cub::DeviceScan::ExclusiveSum(scan_tmp, scan_bytes, bin_count, bin_start, int(n_bins + 1), stream);
    if (err != cudaSuccess) break;
    if (N > 0) {
      nl_scatter_kernel<<<grid_for(N), kBlock, 0, stream>>>(N, info, first_err, sid, bin_of, rank, bin_start,
                                                            bin_atoms);
      nl_search_kernel<Real><<<grid_for(N), kBlock, 0, stream>>>(positions, cutoff, N, info, first_err, sid, bin_of,
                                                                 wrap, bin_start, bin_atoms, counter, capacity, idx_i,
                                                                 idx_j, shifts);
    }
    nl_finalize_kernel<<<1, 32, 0, stream>>>(info, first_err, counter, count);
    err = cudaGetLastError();
  } while (false);
  cudaError_t err_free = workspace_free(ws, stream);
  if (err == cudaSuccess) err = err_free;
  return int(err);
}

}  // namespace

extern "C" {

// ---------------------------------------------------------------------------- MindSpore AOT (GPU)
// Inputs:  positions [N, 3] float32|float64, cells [S, 3, 3] same dtype, pbc [S, 3] bool (1 byte),
//          offsets [S + 1] int32 (atoms of structure s are offsets[s]..offsets[s+1]), cutoff [1] same dtype,
//          capacity_like [C] int32 (only its length is used: it fixes the output capacity C; never read).
// Outputs: idx_i [C] int32, idx_j [C] int32, shifts [C, 3] int32, count [1] int32.
// All pointers are device pointers; everything runs asynchronously on `stream` (a cudaStream_t).
// count is the number of pairs found; when it exceeds the capacity C only C of them are written (overflow).
// Negative counts are errors: -1 non-finite input, -2 degenerate periodic cell, -3 (GPU only) bad offsets.
// Unused slots are 0. Pair order is not deterministic (see the header comment).
// Returns 0 on success, 1 for a bad call (parameter count, dtype), or a CUDA error code.
int NeighborListAOT(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                    void* extra) {
  (void)ndims;
  (void)extra;
  if (nparam != 10) return 1;
  const bool is_double = std::strcmp(dtypes[0], "float64") == 0;
  if (!is_double && std::strcmp(dtypes[0], "float32") != 0) return 1;
  const int64_t n_atoms = shapes[0][0];
  const int64_t n_structures = shapes[1][0];
  const int64_t capacity = shapes[5][0];  // length of capacity_like (== length of idx_i), as on the CPU
  cudaStream_t st = static_cast<cudaStream_t>(stream);
  const uint8_t* pbc = static_cast<const uint8_t*>(params[2]);
  const int32_t* offsets = static_cast<const int32_t*>(params[3]);
  int32_t* idx_i = static_cast<int32_t*>(params[6]);
  int32_t* idx_j = static_cast<int32_t*>(params[7]);
  int32_t* shifts = static_cast<int32_t*>(params[8]);
  int32_t* count = static_cast<int32_t*>(params[9]);
  if (is_double)
    return nl_launch(static_cast<const double*>(params[0]), static_cast<const double*>(params[1]), pbc, offsets,
                     static_cast<const double*>(params[4]), n_structures, n_atoms, capacity, idx_i, idx_j, shifts,
                     count, st);
  return nl_launch(static_cast<const float*>(params[0]), static_cast<const float*>(params[1]), pbc, offsets,
                   static_cast<const float*>(params[4]), n_structures, n_atoms, capacity, idx_i, idx_j, shifts, count,
                   st);
}

// ---------------------------------------------------------------------------- host-callable (float64)
// Host arrays in and out: positions [n_atoms, 3], cells [n_structures, 3, 3], pbc [n_structures, 3],
// offsets [n_structures + 1] int32, outputs h_i [capacity], h_j [capacity], h_shifts [capacity, 3], h_count [1]
// with the NeighborListAOT contract. Synchronous. Returns 0, or a CUDA error code (> 0).
int msmm_nl_cuda(const double* h_positions, const double* h_cells, const uint8_t* h_pbc, const int32_t* h_offsets,
                 int64_t n_structures, int64_t n_atoms, double cutoff, int64_t capacity, int32_t* h_i, int32_t* h_j,
                 int32_t* h_shifts, int32_t* h_count) {
  if (n_structures < 0 || n_atoms < 0 || capacity < 0) return int(cudaErrorInvalidValue);
  double *d_pos = nullptr, *d_cells = nullptr, *d_cut = nullptr;
  uint8_t* d_pbc = nullptr;
  int32_t *d_off = nullptr, *d_i = nullptr, *d_j = nullptr, *d_sh = nullptr, *d_count = nullptr;
  const size_t n_pos = size_t(n_atoms) * 3, n_cell = size_t(n_structures) * 9, n_pbc = size_t(n_structures) * 3;
  const size_t n_off = size_t(n_structures) + 1, cap = size_t(capacity);
  cudaError_t err = cudaSuccess;
  auto alloc = [&](void** p, size_t bytes) {
    if (err == cudaSuccess) err = cudaMalloc(p, bytes > 0 ? bytes : 1);
  };
  alloc(reinterpret_cast<void**>(&d_pos), sizeof(double) * n_pos);
  alloc(reinterpret_cast<void**>(&d_cells), sizeof(double) * n_cell);
  alloc(reinterpret_cast<void**>(&d_cut), sizeof(double));
  alloc(reinterpret_cast<void**>(&d_pbc), n_pbc);
  alloc(reinterpret_cast<void**>(&d_off), sizeof(int32_t) * n_off);
  alloc(reinterpret_cast<void**>(&d_i), sizeof(int32_t) * cap);
  alloc(reinterpret_cast<void**>(&d_j), sizeof(int32_t) * cap);
  alloc(reinterpret_cast<void**>(&d_sh), sizeof(int32_t) * 3 * cap);
  alloc(reinterpret_cast<void**>(&d_count), sizeof(int32_t));
  auto up = [&](void* dst, const void* src, size_t bytes) {
    if (err == cudaSuccess && bytes > 0) err = cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice);
  };
  up(d_pos, h_positions, sizeof(double) * n_pos);
  up(d_cells, h_cells, sizeof(double) * n_cell);
  up(d_cut, &cutoff, sizeof(double));
  up(d_pbc, h_pbc, n_pbc);
  up(d_off, h_offsets, sizeof(int32_t) * n_off);
  if (err == cudaSuccess) {
    int rc = nl_launch<double>(d_pos, d_cells, d_pbc, d_off, d_cut, n_structures, n_atoms, capacity, d_i, d_j, d_sh,
                               d_count, cudaStream_t(0));
    if (rc != 0) err = cudaError_t(rc);
  }
  if (err == cudaSuccess) err = cudaDeviceSynchronize();
  auto down = [&](void* dst, const void* src, size_t bytes) {
    if (err == cudaSuccess && bytes > 0) err = cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost);
  };
  down(h_i, d_i, sizeof(int32_t) * cap);
  down(h_j, d_j, sizeof(int32_t) * cap);
  down(h_shifts, d_sh, sizeof(int32_t) * 3 * cap);
  down(h_count, d_count, sizeof(int32_t));
  cudaFree(d_pos);
  cudaFree(d_cells);
  cudaFree(d_cut);
  cudaFree(d_pbc);
  cudaFree(d_off);
  cudaFree(d_i);
  cudaFree(d_j);
  cudaFree(d_sh);
  cudaFree(d_count);
  return int(err);
}

int msmm_nl_cuda_abi_version() { return 1; }

}  // extern "C"
