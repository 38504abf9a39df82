// Cell-list neighbor search for many structures at once, with full periodic boundary conditions.
//
// Semantics are those of ase.neighborlist.neighbor_list("ijS"): the full list (i->j and j->i),
// integer cell shifts S with r_ij = R[j] - R[i] + S @ cell, pairs with |r_ij| < cutoff (strict),
// self pairs (i == j, S == 0) only on request. Output is ordered by i, deterministic for any
// number of threads.
//
// Two entry points share one implementation:
//   * NeighborListAOT: MindSpore ops.Custom(func_type="aot") signature, fixed-capacity outputs;
//   * msmm_nl_compute / msmm_nl_fetch / msmm_nl_free: a C ABI for ctypes (variable-size output).
//
// Algorithm (per structure), O(N):
//   1. Binning basis B: periodic rows are the lattice vectors; each non-periodic row is replaced
//      by a unit vector orthogonal to the other rows (shifts along it are always 0).
//   2. Fractional coordinates s = r B^-1; along periodic axes they are wrapped into [0, 1) and the
//      integer part m is remembered, so S = w + m_i - m_j for a neighbor image w.
//   3. Bins along axis k are at least cutoff thick measured perpendicular to the other two rows
//      (face distance), so a search range of ceil(cutoff / thickness) bins finds every neighbor,
//      for skewed cells and for cutoffs larger than the cell (the range then wraps many times).
//   4. Atoms are counting-sorted into bins; each atom scans its neighbor bins.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr int kErrNonFinite = -1;   // a position or cell entry is NaN or inf
constexpr int kErrDegenerate = -2;  // a periodic lattice vector is zero or the periodic vectors are dependent
constexpr int kErrArguments = -3;   // cutoff not finite and positive, or offsets not increasing within [0, N]
constexpr int kErrMemory = -4;      // the cell list did not fit in memory
constexpr int64_t kMaxBinsPerAxis = int64_t(1) << 20;

struct Pair {
  int32_t i, j, sx, sy, sz;
};

struct Vec3 {
  double x, y, z;
};

inline Vec3 cross(const Vec3& a, const Vec3& b) {
  return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}
inline double dot(const Vec3& a, const Vec3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
inline double norm(const Vec3& a) { return std::sqrt(dot(a, a)); }
inline Vec3 scale(const Vec3& a, double s) { return {a.x * s, a.y * s, a.z * s}; }

inline int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Everything the pair search of one structure needs.
struct Grid {
  int64_t first = 0, count = 0;  // atoms [first, first + count)
  double cell[3][3];             // the real cell (rows)
  bool pbc[3];
  int64_t nbin[3] = {1, 1, 1};
  int64_t range[3] = {0, 0, 0};
  std::vector<int32_t> bin_of;     // [count] linear bin of each atom
  std::vector<int32_t> wrap;       // [count * 3] integer part m removed along periodic axes
  std::vector<int64_t> bin_start;  // [n_bins + 1]
  std::vector<int32_t> bin_atoms;  // [count] atom indices (local) sorted by bin
};

// Unit vectors completing the periodic rows to a basis (rows of B for non-periodic axes).
int binning_basis(const double cell[3][3], const bool pbc[3], Vec3 basis[3]) {
  Vec3 rows[3];
  for (int k = 0; k < 3; ++k) rows[k] = {cell[k][0], cell[k][1], cell[k][2]};
  int periodic[3], n_periodic = 0;
  for (int k = 0; k < 3; ++k)
    if (pbc[k]) periodic[n_periodic++] = k;
  for (int k = 0; k < 3; ++k) basis[k] = rows[k];
  if (n_periodic == 3) {
    double vol = std::fabs(dot(rows[0], cross(rows[1], rows[2])));
    double scale_ = norm(rows[0]) * norm(rows[1]) * norm(rows[2]);
    return (scale_ > 0 && vol > 1e-12 * scale_) ? 0 : kErrDegenerate;
  }
  if (n_periodic == 2) {
    Vec3 n = cross(rows[periodic[0]], rows[periodic[1]]);
    double len = norm(n);
    if (!(len > 1e-12 * norm(rows[periodic[0]]) * norm(rows[periodic[1]])) || len == 0) return kErrDegenerate;
    for (int k = 0; k < 3; ++k)
      if (!pbc[k]) basis[k] = scale(n, 1.0 / len);
    return 0;
  }
  if (n_periodic == 1) {
    Vec3 a = rows[periodic[0]];
    double len = norm(a);
    if (!(len > 0)) return kErrDegenerate;
    Vec3 unit = scale(a, 1.0 / len);
    // the standard axis least aligned with a
    Vec3 e = std::fabs(unit.x) < 0.6 ? Vec3{1, 0, 0} : (std::fabs(unit.y) < 0.6 ? Vec3{0, 1, 0} : Vec3{0, 0, 1});
    Vec3 u = cross(unit, e);
    u = scale(u, 1.0 / norm(u));
    Vec3 v = cross(unit, u);
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
int build_grid(Grid& g, const Real* positions, double cutoff) {
  Vec3 basis[3];
  int status = binning_basis(g.cell, g.pbc, basis);
  if (status) return status;
  // inverse of B (rows), so that s = r B^-1: columns of B^-1 are (b1 x b2, b2 x b0, b0 x b1) / det
  Vec3 c0 = cross(basis[1], basis[2]), c1 = cross(basis[2], basis[0]), c2 = cross(basis[0], basis[1]);
  double det = dot(basis[0], c0);
  Vec3 inv_cols[3] = {scale(c0, 1.0 / det), scale(c1, 1.0 / det), scale(c2, 1.0 / det)};
  // thickness of the unit cell of B perpendicular to each pair of the other rows
  double thickness[3];
  thickness[0] = std::fabs(det) / norm(c0);
  thickness[1] = std::fabs(det) / norm(c1);
  thickness[2] = std::fabs(det) / norm(c2);

  const int64_t n = g.count;
  std::vector<double> frac(n * 3);
  double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    lo[k] = INFINITY;
    hi[k] = -INFINITY;
  }
  g.wrap.assign(n * 3, 0);
  for (int64_t a = 0; a < n; ++a) {
    const Real* r = positions + 3 * (g.first + a);
    Vec3 p = {double(r[0]), double(r[1]), double(r[2])};
    if (!std::isfinite(p.x) || !std::isfinite(p.y) || !std::isfinite(p.z)) return kErrNonFinite;
    for (int k = 0; k < 3; ++k) {
      double s = dot(p, inv_cols[k]);
      if (g.pbc[k]) {
        double m = std::floor(s);
        s -= m;
        if (s >= 1.0) {  // rounding of a value just below an integer
          s -= 1.0;
          m += 1.0;
        }
        g.wrap[3 * a + k] = int32_t(m);
      }
      frac[3 * a + k] = s;
      lo[k] = std::min(lo[k], s);
      hi[k] = std::max(hi[k], s);
    }
  }
  // bins per axis, and how many neighbor bins to scan on each side
  double width[3];  // bin thickness in Å (perpendicular)
  for (int k = 0; k < 3; ++k) {
    double extent = g.pbc[k] ? thickness[k] : (hi[k] - lo[k]);  // non-periodic rows are unit vectors
    double nb = (extent > cutoff) ? std::floor(extent / cutoff) : 1.0;
    g.nbin[k] = int64_t(std::min<double>(std::max(nb, 1.0), double(kMaxBinsPerAxis)));
  }
  // keep the grid no larger than a few bins per atom (sparse systems)
  const int64_t max_bins = std::max<int64_t>(27, 2 * n);
  while (double(g.nbin[0]) * double(g.nbin[1]) * double(g.nbin[2]) > double(max_bins)) {
    int k = int(std::max_element(g.nbin, g.nbin + 3) - g.nbin);
    g.nbin[k] = std::max<int64_t>(1, g.nbin[k] / 2);
  }
  for (int k = 0; k < 3; ++k) {
    double extent = g.pbc[k] ? thickness[k] : (hi[k] - lo[k]);
    width[k] = extent / double(g.nbin[k]);
    // a relative slack of 1e-9 keeps pairs within rounding of the cutoff when extent/cutoff is an integer
    int64_t r = (width[k] > 0) ? int64_t(std::ceil(cutoff / width[k] * (1.0 + 1e-9))) : 0;
    if (!g.pbc[k]) r = std::min<int64_t>(r, g.nbin[k] - 1);
    g.range[k] = std::max<int64_t>(r, g.pbc[k] ? 1 : 0);
  }
  // counting sort of atoms into bins
  const int64_t n_bins = g.nbin[0] * g.nbin[1] * g.nbin[2];
  g.bin_of.resize(n);
  g.bin_start.assign(n_bins + 1, 0);
  for (int64_t a = 0; a < n; ++a) {
    int64_t b[3];
    for (int k = 0; k < 3; ++k) {
      double u = g.pbc[k] ? frac[3 * a + k] : (width[k] > 0 ? (frac[3 * a + k] - lo[k]) / (hi[k] - lo[k]) : 0.0);
      int64_t idx = int64_t(u * double(g.nbin[k]));
      b[k] = std::min<int64_t>(std::max<int64_t>(idx, 0), g.nbin[k] - 1);
    }
    int32_t lin = int32_t((b[0] * g.nbin[1] + b[1]) * g.nbin[2] + b[2]);
    g.bin_of[a] = lin;
    g.bin_start[lin + 1]++;
  }
  for (int64_t b = 0; b < n_bins; ++b) g.bin_start[b + 1] += g.bin_start[b];
  std::vector<int64_t> fill(g.bin_start.begin(), g.bin_start.end() - 1);
  g.bin_atoms.resize(n);
  for (int64_t a = 0; a < n; ++a) g.bin_atoms[fill[g.bin_of[a]]++] = int32_t(a);
  return 0;
}

// Pairs of local atoms [a_begin, a_end) of one grid, appended to out.
template <typename Real>
void search(const Grid& g, const Real* positions, double cutoff, bool self_interaction, int64_t a_begin,
            int64_t a_end, std::vector<Pair>& out) {
  const double cut2 = cutoff * cutoff;
  const int64_t nx = g.nbin[0], ny = g.nbin[1], nz = g.nbin[2];
  for (int64_t a = a_begin; a < a_end; ++a) {
    const int64_t lin = g.bin_of[a];
    const int64_t b[3] = {lin / (ny * nz), (lin / nz) % ny, lin % nz};
    const Real* ri = positions + 3 * (g.first + a);
    const double rix = ri[0], riy = ri[1], riz = ri[2];
    for (int64_t ox = -g.range[0]; ox <= g.range[0]; ++ox) {
      int64_t bx = b[0] + ox, wx = 0;
      if (g.pbc[0]) {
        wx = floor_div(bx, nx);
        bx -= wx * nx;
      } else if (bx < 0 || bx >= nx) {
        continue;
      }
      for (int64_t oy = -g.range[1]; oy <= g.range[1]; ++oy) {
        int64_t by = b[1] + oy, wy = 0;
        if (g.pbc[1]) {
          wy = floor_div(by, ny);
          by -= wy * ny;
        } else if (by < 0 || by >= ny) {
          continue;
        }
        for (int64_t oz = -g.range[2]; oz <= g.range[2]; ++oz) {
          int64_t bz = b[2] + oz, wz = 0;
          if (g.pbc[2]) {
            wz = floor_div(bz, nz);
            bz -= wz * nz;
          } else if (bz < 0 || bz >= nz) {
            continue;
          }
          const int64_t nb = (bx * ny + by) * nz + bz;
          for (int64_t t = g.bin_start[nb]; t < g.bin_start[nb + 1]; ++t) {
            const int64_t c = g.bin_atoms[t];
            const int32_t sx = int32_t(wx) + g.wrap[3 * a] - g.wrap[3 * c];
            const int32_t sy = int32_t(wy) + g.wrap[3 * a + 1] - g.wrap[3 * c + 1];
            const int32_t sz = int32_t(wz) + g.wrap[3 * a + 2] - g.wrap[3 * c + 2];
            if (c == a && sx == 0 && sy == 0 && sz == 0 && !self_interaction) continue;
            const Real* rj = positions + 3 * (g.first + c);
            const double dx = double(rj[0]) - rix + sx * g.cell[0][0] + sy * g.cell[1][0] + sz * g.cell[2][0];
            const double dy = double(rj[1]) - riy + sx * g.cell[0][1] + sy * g.cell[1][1] + sz * g.cell[2][1];
            const double dz = double(rj[2]) - riz + sx * g.cell[0][2] + sy * g.cell[1][2] + sz * g.cell[2][2];
            if (dx * dx + dy * dy + dz * dz < cut2)
              out.push_back({int32_t(g.first + a), int32_t(g.first + c), sx, sy, sz});
          }
        }
      }
    }
  }
}

int thread_count(int64_t n_atoms, int requested) {
  if (requested > 0) return requested;
  if (const char* env = std::getenv("MSMM_NUM_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) return v;
  }
  if (n_atoms < 256) return 1;  // thread start-up (~50 us) costs more than it saves
  unsigned hw = std::thread::hardware_concurrency();
  return int(std::max(1u, std::min(hw, 64u)));
}

// The result of one search: pairs of each thread, in order.
struct Result {
  std::vector<std::vector<Pair>> parts;
  int64_t total = 0;
  int status = 0;
};

template <typename Real, typename Bool, typename Index>
void run(Result& res, const Real* positions, const Real* cells, const Bool* pbc, const Index* offsets,
         int64_t n_structures, double cutoff, bool self_interaction, int requested_threads, int64_t n_atoms_total) {
  if (!std::isfinite(cutoff) || !(cutoff > 0)) {
    res.status = kErrArguments;
    return;
  }
  for (int64_t s = 0; s < n_structures; ++s) {
    if (offsets[s] < 0 || offsets[s + 1] < offsets[s] || (n_atoms_total >= 0 && int64_t(offsets[s + 1]) > n_atoms_total)) {
      res.status = kErrArguments;
      return;
    }
  }
  std::vector<Grid> grids(n_structures);
  int64_t n_atoms = n_structures ? int64_t(offsets[n_structures]) - int64_t(offsets[0]) : 0;
  for (int64_t s = 0; s < n_structures; ++s) {
    Grid& g = grids[s];
    g.first = offsets[s];
    g.count = int64_t(offsets[s + 1]) - int64_t(offsets[s]);
    for (int r = 0; r < 3; ++r) {
      for (int c = 0; c < 3; ++c) {
        g.cell[r][c] = double(cells[9 * s + 3 * r + c]);
        if (!std::isfinite(g.cell[r][c])) {
          res.status = kErrNonFinite;
          return;
        }
      }
      g.pbc[r] = bool(pbc[3 * s + r]);
    }
    if (g.count == 0) continue;
    int status = build_grid(g, positions, cutoff);
    if (status) {
      res.status = status;
      return;
    }
  }
  // split all atoms into contiguous chunks, one per thread; chunk boundaries may cut structures
  const int n_threads = int(std::min<int64_t>(thread_count(n_atoms, requested_threads), std::max<int64_t>(n_atoms, 1)));
  res.parts.assign(n_threads, {});
  auto work = [&](int t) {
    const int64_t begin = n_atoms * t / n_threads, end = n_atoms * (t + 1) / n_threads;
    std::vector<Pair>& out = res.parts[t];
    out.reserve(size_t((end - begin) * 48));
    for (int64_t s = 0; s < n_structures; ++s) {
      const Grid& g = grids[s];
      const int64_t lo = std::max<int64_t>(begin, g.first - offsets[0]), hi = std::min<int64_t>(end, g.first - offsets[0] + g.count);
      if (lo < hi) search(g, positions, cutoff, self_interaction, lo - (g.first - offsets[0]), hi - (g.first - offsets[0]), out);
    }
  };
  if (n_threads == 1) {
    work(0);
  } else {
    std::vector<std::thread> pool;
    for (int t = 1; t < n_threads; ++t) pool.emplace_back(work, t);
    work(0);
    for (auto& th : pool) th.join();
  }
  for (auto& p : res.parts) res.total += int64_t(p.size());
}

template <typename... Args>
void safe_run(Result& res, Args... args) {
  try {
    run(res, args...);
  } catch (const std::bad_alloc&) {
    res.parts.clear();
    res.total = 0;
    res.status = kErrMemory;
  }
}

void copy_out(const Result& res, int32_t* idx_i, int32_t* idx_j, int32_t* shifts, int64_t capacity) {
  int64_t k = 0;
  for (const auto& part : res.parts) {
    for (const Pair& p : part) {
      if (k >= capacity) return;
      idx_i[k] = p.i;
      idx_j[k] = p.j;
      shifts[3 * k] = p.sx;
      shifts[3 * k + 1] = p.sy;
      shifts[3 * k + 2] = p.sz;
      ++k;
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------- C ABI (ctypes)
extern "C" {

// Search; returns an opaque handle. *total receives the pair count, or a negative error code.
void* msmm_nl_compute(const void* positions, const void* cells, const uint8_t* pbc, const int64_t* offsets,
                      int64_t n_structures, double cutoff, int self_interaction, int is_double, int n_threads,
                      int64_t* total) {
  Result* res = new Result();
  if (is_double)
    safe_run(*res, static_cast<const double*>(positions), static_cast<const double*>(cells), pbc, offsets, n_structures,
             cutoff, self_interaction != 0, n_threads, int64_t(-1));
  else
    safe_run(*res, static_cast<const float*>(positions), static_cast<const float*>(cells), pbc, offsets, n_structures,
             cutoff, self_interaction != 0, n_threads, int64_t(-1));
  *total = res->status ? res->status : res->total;
  return res;
}

void msmm_nl_fetch(void* handle, int32_t* idx_i, int32_t* idx_j, int32_t* shifts, int64_t capacity) {
  copy_out(*static_cast<Result*>(handle), idx_i, idx_j, shifts, capacity);
}

void msmm_nl_free(void* handle) { delete static_cast<Result*>(handle); }

int msmm_nl_abi_version() { return 1; }

// ---------------------------------------------------------------------------- MindSpore AOT
// Inputs:  positions [N, 3] float32|float64, cells [S, 3, 3] same dtype, pbc [S, 3] bool,
//          offsets [S + 1] int32 (atoms of structure s are offsets[s]..offsets[s+1]), cutoff [1] same dtype,
//          capacity_like [C] int32 (only its length is read: it fixes the output capacity C).
// Outputs: idx_i [C] int32, idx_j [C] int32, shifts [C, 3] int32, count [1] int32.
// count is the number of pairs found; when it exceeds the capacity C only C are written (overflow).
// Negative counts are errors: -1 non-finite input, -2 degenerate periodic cell, -3 bad cutoff or offsets,
// -4 out of memory. Unused slots are 0.
int NeighborListAOT(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                    void* extra) {
  (void)ndims;  // shapes are read directly
  (void)stream;
  (void)extra;
  if (nparam != 10) return 1;
  const int64_t n_structures = shapes[1][0];
  const int64_t capacity = shapes[5][0];
  const bool is_double = std::string(dtypes[0]) == "float64";
  double cutoff = is_double ? static_cast<const double*>(params[4])[0] : double(static_cast<const float*>(params[4])[0]);
  const int32_t* offsets = static_cast<const int32_t*>(params[3]);
  const int64_t n_atoms = shapes[0][0];
  if (std::string(dtypes[1]) != dtypes[0] || std::string(dtypes[3]) != "int32") return 2;
  Result res;
  if (is_double)
    safe_run(res, static_cast<const double*>(params[0]), static_cast<const double*>(params[1]),
             static_cast<const uint8_t*>(params[2]), offsets, n_structures, cutoff, false, 0, n_atoms);
  else
    safe_run(res, static_cast<const float*>(params[0]), static_cast<const float*>(params[1]),
             static_cast<const uint8_t*>(params[2]), offsets, n_structures, cutoff, false, 0, n_atoms);
  int32_t* idx_i = static_cast<int32_t*>(params[6]);
  int32_t* idx_j = static_cast<int32_t*>(params[7]);
  int32_t* shifts = static_cast<int32_t*>(params[8]);
  int32_t* count = static_cast<int32_t*>(params[9]);
  std::memset(idx_i, 0, sizeof(int32_t) * capacity);
  std::memset(idx_j, 0, sizeof(int32_t) * capacity);
  std::memset(shifts, 0, sizeof(int32_t) * 3 * capacity);
  if (res.status) {
    count[0] = res.status;
    return 0;
  }
  copy_out(res, idx_i, idx_j, shifts, capacity);
  count[0] = int32_t(std::min<int64_t>(res.total, INT32_MAX));
  return 0;
}

}  // extern "C"
