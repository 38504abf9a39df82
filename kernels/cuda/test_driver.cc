// Test driver for the CUDA neighbor search (kernels/cuda/neighbor_list.cu).
//
// Every case is a batch of structures built from a seeded RNG. For each case the driver runs
//   * the CPU kernel (kernels/cpu/neighbor_list.cc, compiled into this program) through its C ABI
//     msmm_nl_compute / msmm_nl_fetch / msmm_nl_free, in float64 and float32;
//   * a brute-force reference written here: every pair (i, j) of a structure and every lattice image S in a
//     box bounded with the dual lattice vectors, O(N^2 * images), sharing no code with either kernel;
//   * (GPU build) the CUDA kernel through msmm_nl_cuda (float64, host arrays) and through NeighborListAOT
//     with device buffers in float64 and float32;
// and compares the SETS of (i, j, sx, sy, sz) (both sides sorted), plus the error codes for bad inputs, plus
// the fixed-capacity contract of the AOT entries (overflow: count > C, only C valid distinct pairs written,
// nothing written past C; unused slots 0).
//
// Build modes:
//   default        needs CUDA; exits 77 ("skipped") when no CUDA device is present;
//   -DCPU_SELFTEST  no CUDA at all: CPU kernel vs brute force, and the CPU AOT entry's capacity contract.
// Exit code: 0 all passed, 1 some failed, 77 no CUDA device (GPU build only).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#ifndef CPU_SELFTEST
#include <cuda_runtime.h>
#endif

extern "C" {
// CPU kernel (../cpu/neighbor_list.cc); its NeighborListAOT is renamed at compile time to avoid a clash
void* msmm_nl_compute(const void* positions, const void* cells, const uint8_t* pbc, const int64_t* offsets,
                      int64_t n_structures, double cutoff, int self_interaction, int is_double, int n_threads,
                      int64_t* total);
void msmm_nl_fetch(void* handle, int32_t* idx_i, int32_t* idx_j, int32_t* shifts, int64_t capacity);
void msmm_nl_free(void* handle);
int msmm_cpu_NeighborListAOT(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes,
                             void* stream, void* extra);
#ifndef CPU_SELFTEST
// CUDA kernel (neighbor_list.cu)
int NeighborListAOT(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                    void* extra);
int msmm_nl_cuda(const double* h_positions, const double* h_cells, const uint8_t* h_pbc, const int32_t* h_offsets,
                 int64_t n_structures, int64_t n_atoms, double cutoff, int64_t capacity, int32_t* h_i, int32_t* h_j,
                 int32_t* h_shifts, int32_t* h_count);
#endif
}

namespace {

struct Pair {
  int32_t i, j, sx, sy, sz;
  bool operator<(const Pair& o) const { return std::tie(i, j, sx, sy, sz) < std::tie(o.i, o.j, o.sx, o.sy, o.sz); }
  bool operator==(const Pair& o) const { return i == o.i && j == o.j && sx == o.sx && sy == o.sy && sz == o.sz; }
};

struct Result {
  int64_t count = 0;  // pairs found, or a negative error code
  std::vector<Pair> pairs;  // sorted
};

// A batch of structures (the kernel input), always stored in float64; float32 runs round it.
struct System {
  std::string name;
  std::vector<double> pos;     // [N, 3]
  std::vector<double> cells;   // [S, 3, 3]
  std::vector<uint8_t> pbc;    // [S, 3]
  std::vector<int64_t> offsets;  // [S + 1]
  double cutoff = 0;
  int64_t expect_error = 0;    // expected negative count for error cases, 0 otherwise
  int64_t S() const { return int64_t(offsets.size()) - 1; }
  int64_t N() const { return int64_t(pos.size() / 3); }
};

// ------------------------------------------------------------------------------------------ RNG (portable)
struct Rng {
  std::mt19937_64 gen;
  explicit Rng(uint64_t seed) : gen(seed) {}
  double uniform(double lo, double hi) { return lo + (hi - lo) * (double(gen() >> 11) * (1.0 / 9007199254740992.0)); }
};

void add_structure(System& sys, const double cell[3][3], const bool pbc[3], int n, Rng& rng, double frac_lo = 0.0,
                   double frac_hi = 1.0, double pad = 0.0) {
  if (sys.offsets.empty()) sys.offsets.push_back(int64_t(sys.pos.size() / 3));
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) sys.cells.push_back(cell[r][c]);
  for (int k = 0; k < 3; ++k) sys.pbc.push_back(pbc[k] ? 1 : 0);
  // positions: fractional in [frac_lo, frac_hi) along the rows (a zero row contributes nothing), plus a random
  // cartesian displacement in [-pad, pad) (used to spread atoms along non-periodic axes whose row is zero)
  for (int a = 0; a < n; ++a) {
    double f[3] = {rng.uniform(frac_lo, frac_hi), rng.uniform(frac_lo, frac_hi), rng.uniform(frac_lo, frac_hi)};
    for (int c = 0; c < 3; ++c) {
      double x = f[0] * cell[0][c] + f[1] * cell[1][c] + f[2] * cell[2][c];
      if (pad > 0) x += rng.uniform(-pad, pad);
      sys.pos.push_back(x);
    }
  }
  sys.offsets.push_back(int64_t(sys.pos.size() / 3));
}

void ortho(double cell[3][3], double a, double b, double c) {
  double m[3][3] = {{a, 0, 0}, {0, b, 0}, {0, 0, c}};
  std::memcpy(cell, m, sizeof(m));
}

void tri(double cell[3][3], std::initializer_list<double> v) {
  auto it = v.begin();
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 3; ++c) cell[r][c] = *it++;
}

// ------------------------------------------------------------------------------------------ brute force
// For each structure: periodic rows a_k, Gram matrix G, dual vectors a*_k (a*_k . a_l = delta_kl) within the
// span of the periodic rows. For |d + sum_k S_k a_k| < cutoff, |S_k + a*_k . d| <= |a*_k| cutoff, which bounds
// the images to test for each pair. The distance is evaluated with the same expression as the kernels, so the
// comparison with the strict `< cutoff^2` is exact.
template <typename Real>
Result brute_force(const System& sys) {
  Result res;
  std::vector<Real> pos(sys.pos.begin(), sys.pos.end());
  std::vector<Real> cells(sys.cells.begin(), sys.cells.end());
  const double cutoff = double(Real(sys.cutoff));
  const double cut2 = cutoff * cutoff;
  for (int64_t s = 0; s < sys.S(); ++s) {
    double cell[3][3];
    for (int r = 0; r < 3; ++r)
      for (int c = 0; c < 3; ++c) cell[r][c] = double(cells[9 * s + 3 * r + c]);
    int per[3], m = 0;
    for (int k = 0; k < 3; ++k)
      if (sys.pbc[3 * s + k]) per[m++] = k;
    // Gram matrix and its inverse (m <= 3; Gauss-Jordan)
    double G[3][3] = {}, Gi[3][3] = {};
    for (int p = 0; p < m; ++p)
      for (int q = 0; q < m; ++q) {
        for (int c = 0; c < 3; ++c) G[p][q] += cell[per[p]][c] * cell[per[q]][c];
        Gi[p][q] = p == q ? 1.0 : 0.0;
      }
    for (int col = 0; col < m; ++col) {
      int piv = col;
      for (int r = col + 1; r < m; ++r)
        if (std::fabs(G[r][col]) > std::fabs(G[piv][col])) piv = r;
      for (int c = 0; c < m; ++c) {
        std::swap(G[col][c], G[piv][c]);
        std::swap(Gi[col][c], Gi[piv][c]);
      }
      double d = G[col][col];
      for (int c = 0; c < m; ++c) {
        G[col][c] /= d;
        Gi[col][c] /= d;
      }
      for (int r = 0; r < m; ++r) {
        if (r == col) continue;
        double f = G[r][col];
        for (int c = 0; c < m; ++c) {
          G[r][c] -= f * G[col][c];
          Gi[r][c] -= f * Gi[col][c];
        }
      }
    }
    double dual[3][3] = {};
    for (int p = 0; p < m; ++p)
      for (int q = 0; q < m; ++q)
        for (int c = 0; c < 3; ++c) dual[p][c] += Gi[p][q] * cell[per[q]][c];
    for (int64_t i = sys.offsets[s]; i < sys.offsets[s + 1]; ++i) {
      const double rix = pos[3 * i], riy = pos[3 * i + 1], riz = pos[3 * i + 2];
      for (int64_t j = sys.offsets[s]; j < sys.offsets[s + 1]; ++j) {
        const double d[3] = {double(pos[3 * j]) - rix, double(pos[3 * j + 1]) - riy, double(pos[3 * j + 2]) - riz};
        int64_t lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
        for (int p = 0; p < m; ++p) {
          double center = -(dual[p][0] * d[0] + dual[p][1] * d[1] + dual[p][2] * d[2]);
          double half = std::sqrt(dual[p][0] * dual[p][0] + dual[p][1] * dual[p][1] + dual[p][2] * dual[p][2]) * cutoff;
          lo[per[p]] = int64_t(std::floor(center - half)) - 1;
          hi[per[p]] = int64_t(std::ceil(center + half)) + 1;
        }
        for (int64_t sx = lo[0]; sx <= hi[0]; ++sx)
          for (int64_t sy = lo[1]; sy <= hi[1]; ++sy)
            for (int64_t sz = lo[2]; sz <= hi[2]; ++sz) {
              if (i == j && sx == 0 && sy == 0 && sz == 0) continue;
              const int32_t x = int32_t(sx), y = int32_t(sy), z = int32_t(sz);
              const double dx = double(pos[3 * j]) - rix + x * cell[0][0] + y * cell[1][0] + z * cell[2][0];
              const double dy = double(pos[3 * j + 1]) - riy + x * cell[0][1] + y * cell[1][1] + z * cell[2][1];
              const double dz = double(pos[3 * j + 2]) - riz + x * cell[0][2] + y * cell[1][2] + z * cell[2][2];
              if (dx * dx + dy * dy + dz * dz < cut2) res.pairs.push_back({int32_t(i), int32_t(j), x, y, z});
            }
      }
    }
  }
  std::sort(res.pairs.begin(), res.pairs.end());
  res.count = int64_t(res.pairs.size());
  return res;
}

// ------------------------------------------------------------------------------------------ CPU kernel
template <typename Real>
Result cpu_kernel(const System& sys) {
  std::vector<Real> pos(sys.pos.begin(), sys.pos.end());
  std::vector<Real> cells(sys.cells.begin(), sys.cells.end());
  const bool is_double = sizeof(Real) == 8;
  const double cutoff = double(Real(sys.cutoff));
  int64_t total = 0;
  void* h = msmm_nl_compute(pos.data(), cells.data(), sys.pbc.data(), sys.offsets.data(), sys.S(), cutoff, 0,
                            is_double ? 1 : 0, 0, &total);
  Result res;
  res.count = total;
  if (total > 0) {
    std::vector<int32_t> ii(total), jj(total), sh(3 * total);
    msmm_nl_fetch(h, ii.data(), jj.data(), sh.data(), total);
    for (int64_t k = 0; k < total; ++k) res.pairs.push_back({ii[k], jj[k], sh[3 * k], sh[3 * k + 1], sh[3 * k + 2]});
  }
  msmm_nl_free(h);
  std::sort(res.pairs.begin(), res.pairs.end());
  return res;
}

// ------------------------------------------------------------------------------------------ AOT contract
// Buffers of an AOT call: C slots followed by a guard band filled with a sentinel that must survive.
constexpr int64_t kGuard = 64;
constexpr int32_t kSentinel = 0x7f7f7f7f;  // bytes 0x7f, so cudaMemset can write it

struct AotOut {
  int32_t count = 0;
  std::vector<int32_t> i, j, sh;  // [C + guard], [C + guard], [3 (C + guard)]
};

// Which memory the AOT entry works on.
struct AotBackend {
  const char* name;
  int (*entry)(int, void**, int*, int64_t**, const char**, void*, void*);
  bool device;
};

#ifndef CPU_SELFTEST
#define CUDA_OK(x)                                                                                   \
  do {                                                                                               \
    cudaError_t e_ = (x);                                                                            \
    if (e_ != cudaSuccess) {                                                                         \
      std::fprintf(stderr, "CUDA error %s at %s:%d\n", cudaGetErrorString(e_), __FILE__, __LINE__); \
      std::exit(1);                                                                                  \
    }                                                                                                \
  } while (0)
#endif

// A buffer in host or device memory.
struct Buf {
  void* p = nullptr;
  size_t bytes = 0;
  bool device = false;
  Buf(size_t n, bool dev) : bytes(n > 0 ? n : 1), device(dev) {
#ifndef CPU_SELFTEST
    if (dev) {
      CUDA_OK(cudaMalloc(&p, bytes));
      return;
    }
#endif
    p = std::malloc(bytes);
  }
  ~Buf() {
#ifndef CPU_SELFTEST
    if (device) {
      cudaFree(p);
      return;
    }
#endif
    std::free(p);
  }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
  void upload(const void* src, size_t n) {
    if (n == 0) return;
#ifndef CPU_SELFTEST
    if (device) {
      CUDA_OK(cudaMemcpy(p, src, n, cudaMemcpyHostToDevice));
      return;
    }
#endif
    std::memcpy(p, src, n);
  }
  void download(void* dst, size_t n) const {
    if (n == 0) return;
#ifndef CPU_SELFTEST
    if (device) {
      CUDA_OK(cudaMemcpy(dst, p, n, cudaMemcpyDeviceToHost));
      return;
    }
#endif
    std::memcpy(dst, p, n);
  }
  void fill_sentinel() {
#ifndef CPU_SELFTEST
    if (device) {
      CUDA_OK(cudaMemset(p, 0x7f, bytes));
      return;
    }
#endif
    std::memset(p, 0x7f, bytes);
  }
};

template <typename Real>
int run_aot(const AotBackend& be, const System& sys, int64_t capacity, AotOut& out) {
  std::vector<Real> pos(sys.pos.begin(), sys.pos.end());
  std::vector<Real> cells(sys.cells.begin(), sys.cells.end());
  std::vector<int32_t> off(sys.offsets.begin(), sys.offsets.end());
  Real cut = Real(sys.cutoff);
  const int64_t N = sys.N(), S = sys.S(), C = capacity, CG = capacity + kGuard;
  Buf b_pos(sizeof(Real) * 3 * N, be.device), b_cells(sizeof(Real) * 9 * S, be.device), b_pbc(3 * S, be.device),
      b_off(sizeof(int32_t) * (S + 1), be.device), b_cut(sizeof(Real), be.device),
      b_cap(sizeof(int32_t) * C, be.device), b_i(sizeof(int32_t) * CG, be.device), b_j(sizeof(int32_t) * CG, be.device),
      b_sh(sizeof(int32_t) * 3 * CG, be.device), b_count(sizeof(int32_t) * (1 + kGuard), be.device);
  b_pos.upload(pos.data(), sizeof(Real) * 3 * N);
  b_cells.upload(cells.data(), sizeof(Real) * 9 * S);
  b_pbc.upload(sys.pbc.data(), 3 * S);
  b_off.upload(off.data(), sizeof(int32_t) * (S + 1));
  b_cut.upload(&cut, sizeof(Real));
  b_i.fill_sentinel();
  b_j.fill_sentinel();
  b_sh.fill_sentinel();
  b_count.fill_sentinel();
  b_cap.fill_sentinel();  // capacity_like: only its length may be used
  int64_t s_pos[2] = {N, 3}, s_cells[3] = {S, 3, 3}, s_pbc[2] = {S, 3}, s_off[1] = {S + 1}, s_cut[1] = {1};
  int64_t s_cap[1] = {C}, s_i[1] = {C}, s_j[1] = {C}, s_sh[2] = {C, 3}, s_count[1] = {1};
  int64_t* shapes[10] = {s_pos, s_cells, s_pbc, s_off, s_cut, s_cap, s_i, s_j, s_sh, s_count};
  int ndims[10] = {2, 3, 2, 1, 1, 1, 1, 1, 2, 1};
  const char* real = sizeof(Real) == 8 ? "float64" : "float32";
  const char* dtypes[10] = {real, real, "bool", "int32", real, "int32", "int32", "int32", "int32", "int32"};
  void* params[10] = {b_pos.p, b_cells.p, b_pbc.p, b_off.p, b_cut.p, b_cap.p, b_i.p, b_j.p, b_sh.p, b_count.p};
  int rc = be.entry(10, params, ndims, shapes, dtypes, nullptr, nullptr);
#ifndef CPU_SELFTEST
  if (be.device) CUDA_OK(cudaDeviceSynchronize());
#endif
  out.i.assign(CG, 0);
  out.j.assign(CG, 0);
  out.sh.assign(3 * CG, 0);
  std::vector<int32_t> cnt(1 + kGuard);
  b_i.download(out.i.data(), sizeof(int32_t) * CG);
  b_j.download(out.j.data(), sizeof(int32_t) * CG);
  b_sh.download(out.sh.data(), sizeof(int32_t) * 3 * CG);
  b_count.download(cnt.data(), sizeof(int32_t) * (1 + kGuard));
  out.count = cnt[0];
  for (int64_t g = 1; g <= kGuard; ++g)
    if (cnt[g] != kSentinel) return -1000;  // written past count[0]
  return rc;
}

// Check an AOT output against the full reference set. Returns "" if fine, else a reason.
std::string check_aot(const AotOut& out, int rc, int64_t capacity, const Result& ref) {
  char buf[256];
  if (rc == -1000) return "wrote past count[0]";
  if (rc != 0) {
    std::snprintf(buf, sizeof buf, "entry returned %d", rc);
    return buf;
  }
  if (out.count != int32_t(std::min<int64_t>(ref.count, INT32_MAX))) {
    std::snprintf(buf, sizeof buf, "count %d, expected %lld", out.count, (long long)ref.count);
    return buf;
  }
  const int64_t written = ref.count < 0 ? 0 : std::min<int64_t>(ref.count, capacity);
  std::vector<Pair> got;
  for (int64_t k = 0; k < written; ++k)
    got.push_back({out.i[k], out.j[k], out.sh[3 * k], out.sh[3 * k + 1], out.sh[3 * k + 2]});
  std::sort(got.begin(), got.end());
  if (std::adjacent_find(got.begin(), got.end()) != got.end()) return "duplicate pairs in the output";
  for (const Pair& p : got)
    if (!std::binary_search(ref.pairs.begin(), ref.pairs.end(), p)) {
      std::snprintf(buf, sizeof buf, "pair (%d,%d,%d,%d,%d) not in the reference", p.i, p.j, p.sx, p.sy, p.sz);
      return buf;
    }
  if (written == ref.count && int64_t(got.size()) != ref.count) return "pair set differs";
  for (int64_t k = written; k < capacity; ++k)
    if (out.i[k] != 0 || out.j[k] != 0 || out.sh[3 * k] != 0 || out.sh[3 * k + 1] != 0 || out.sh[3 * k + 2] != 0)
      return "unused slot not zero";
  for (int64_t k = capacity; k < capacity + kGuard; ++k)
    if (out.i[k] != kSentinel || out.j[k] != kSentinel || out.sh[3 * k] != kSentinel ||
        out.sh[3 * k + 1] != kSentinel || out.sh[3 * k + 2] != kSentinel)
      return "wrote past capacity";
  return "";
}

// ------------------------------------------------------------------------------------------ cases
std::vector<System> make_cases() {
  std::vector<System> cases;
  const bool T = true, F = false;
  double cell[3][3];
  auto one = [&](const std::string& name, double cutoff, uint64_t seed, auto&& fill) {
    System sys;
    sys.name = name;
    sys.cutoff = cutoff;
    Rng rng(seed);
    fill(sys, rng);
    cases.push_back(std::move(sys));
  };
  one("ortho_pbc_all", 3.5, 1, [&](System& s, Rng& r) {
    ortho(cell, 10, 11, 12);
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 150, r);
  });
  one("ortho_cutoff_gt_half_cell", 4.0, 2, [&](System& s, Rng& r) {
    ortho(cell, 6, 7, 6.5);
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 60, r);
  });
  one("ortho_cutoff_gt_whole_cell", 5.5, 3, [&](System& s, Rng& r) {
    ortho(cell, 2, 2.5, 3);
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 8, r);
  });
  one("single_atom_sees_own_images", 4.0, 4, [&](System& s, Rng& r) {
    ortho(cell, 1.5, 1.7, 1.9);
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 1, r);
  });
  one("strict_cutoff_on_lattice_point", 4.0, 5, [&](System& s, Rng& r) {
    ortho(cell, 2, 2, 2);  // images at exactly 4.0 must be excluded
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 1, r);
  });
  one("triclinic_skewed", 3.0, 6, [&](System& s, Rng& r) {
    tri(cell, {6, 0, 0, 5.4, 2.2, 0, -4.8, 1.7, 2.5});
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 120, r);
  });
  one("triclinic_skewed_cutoff_gt_cell", 6.0, 7, [&](System& s, Rng& r) {
    tri(cell, {2.5, 0, 0, 2.3, 0.8, 0, 1.9, -2.2, 1.1});
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 9, r);
  });
  one("triclinic_rotated_general", 4.0, 8, [&](System& s, Rng& r) {
    tri(cell, {3.1, 1.2, -0.7, -2.6, 3.3, 1.4, 2.9, 2.8, 3.6});
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 80, r);
  });
  one("atoms_outside_cell", 3.2, 9, [&](System& s, Rng& r) {
    tri(cell, {5, 0, 0, 3.5, 4, 0, -2, 2.5, 4.5});
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 90, r, -3.0, 4.0);
  });
  one("pbc_TFT_triclinic", 3.5, 10, [&](System& s, Rng& r) {
    tri(cell, {6, 0, 0, 1.5, 7, 0.5, 2.5, 1.0, 6.5});
    bool p[3] = {T, F, T};
    add_structure(s, cell, p, 100, r, -0.5, 1.5);
  });
  one("pbc_TFF_cutoff_gt_period", 5.0, 11, [&](System& s, Rng& r) {
    tri(cell, {2.2, 0.9, 0.4, 0, 6, 0, 0, 0, 6});
    bool p[3] = {T, F, F};
    add_structure(s, cell, p, 40, r);
  });
  one("pbc_FTF_zero_rows", 3.0, 12, [&](System& s, Rng& r) {
    tri(cell, {0, 0, 0, 1.5, 4.0, 2.0, 0, 0, 0});  // non-periodic rows zero (as ASE allows)
    bool p[3] = {F, T, F};
    add_structure(s, cell, p, 50, r, 0.0, 1.0, 5.0);
  });
  one("pbc_TTF_zero_row_slab", 3.0, 13, [&](System& s, Rng& r) {
    tri(cell, {5, 0, 0, 2.5, 4.5, 0, 0, 0, 0});
    bool p[3] = {T, T, F};
    add_structure(s, cell, p, 70, r, -1.0, 2.0, 4.0);
  });
  one("pbc_none_cluster", 3.0, 14, [&](System& s, Rng& r) {
    tri(cell, {7, 0, 0, 2, 7, 0, 1, 1, 7});
    bool p[3] = {F, F, F};
    add_structure(s, cell, p, 100, r, -0.2, 1.2);
  });
  one("pbc_none_zero_cell", 2.5, 15, [&](System& s, Rng& r) {
    tri(cell, {0, 0, 0, 0, 0, 0, 0, 0, 0});
    bool p[3] = {F, F, F};
    add_structure(s, cell, p, 60, r, 0.0, 1.0, 6.0);
  });
  one("sparse_large_cell_clusters", 2.5, 16, [&](System& s, Rng& r) {
    // many more candidate bins than atoms (the bin-count reduction path); atoms in small clusters, one
    // cluster straddling the corner of the cell so that its pairs cross the periodic boundary
    ortho(cell, 100, 90, 80);
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 0, r);
    s.offsets.pop_back();
    for (int m = 0; m < 15; ++m) {
      double f[3] = {r.uniform(0, 1), r.uniform(0, 1), r.uniform(0, 1)};
      if (m == 0) f[0] = 0.999, f[1] = 0.0005, f[2] = 0.9995;
      for (int a = 0; a < 3; ++a)
        for (int c = 0; c < 3; ++c) s.pos.push_back(f[c] * cell[c][c] + r.uniform(-1.2, 1.2));
    }
    s.offsets.push_back(int64_t(s.pos.size() / 3));
  });
  one("pbc_FFT_diagonal_vector", 4.0, 22, [&](System& s, Rng& r) {
    tri(cell, {0, 0, 0, 0, 0, 0, 1.7, 1.7, 0.3});  // 1 periodic axis along a diagonal (other basis branch)
    bool p[3] = {F, F, T};
    add_structure(s, cell, p, 30, r, -1.0, 2.0, 3.0);
  });
  one("planar_atoms_nonperiodic", 3.0, 17, [&](System& s, Rng& r) {
    // all atoms share z (zero extent along a non-periodic axis)
    tri(cell, {6, 0, 0, 0, 6, 0, 0, 0, 0});
    bool p[3] = {T, T, F};
    add_structure(s, cell, p, 40, r);
  });
  one("empty_and_single_atom_structures", 4.0, 18, [&](System& s, Rng& r) {
    bool pa[3] = {T, T, T}, pn[3] = {F, F, F};
    ortho(cell, 5, 5, 5);
    add_structure(s, cell, pa, 0, r);
    add_structure(s, cell, pn, 1, r);  // lone atom, no pbc: no pairs
    ortho(cell, 1.8, 2.1, 2.4);
    add_structure(s, cell, pa, 1, r);  // lone atom, small periodic cell: its own images
    tri(cell, {0, 0, 0, 0, 0, 0, 0, 0, 0});
    add_structure(s, cell, pn, 0, r);  // empty, zero cell
  });
  one("batch_mixed", 3.6, 19, [&](System& s, Rng& r) {
    bool pa[3] = {T, T, T}, p1[3] = {T, F, T}, p2[3] = {F, F, T}, pn[3] = {F, F, F};
    ortho(cell, 9, 8, 10);
    add_structure(s, cell, pa, 70, r);
    tri(cell, {5, 0, 0, 4.6, 2.1, 0, -3.9, 1.4, 2.8});
    add_structure(s, cell, pa, 40, r, -1.0, 2.0);
    add_structure(s, cell, pa, 0, r);
    tri(cell, {4.5, 0.3, 0, 0, 0, 0, 1.0, 0.5, 3.7});
    add_structure(s, cell, p1, 35, r, 0.0, 1.0, 3.0);
    ortho(cell, 2.0, 2.0, 2.7);
    add_structure(s, cell, p2, 6, r);
    add_structure(s, cell, pa, 1, r);
    ortho(cell, 6, 6, 6);
    add_structure(s, cell, pn, 30, r);
  });
  one("leading_unused_atoms", 3.0, 20, [&](System& s, Rng& r) {
    // offsets[0] > 0: the first atoms of the positions array belong to no structure
    for (int k = 0; k < 9; ++k) s.pos.push_back(r.uniform(0, 5));
    s.offsets.push_back(3);
    bool pa[3] = {T, T, T};
    ortho(cell, 5, 5, 5);
    add_structure(s, cell, pa, 25, r);
    add_structure(s, cell, pa, 20, r);
  });
  one("dense_multithreaded_cpu", 4.0, 21, [&](System& s, Rng& r) {
    ortho(cell, 28, 30, 29);  // > 2000 atoms: the CPU kernel runs on several threads
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 2400, r, -0.5, 1.5);
  });
  // error cases (expected count)
  auto err = [&](const std::string& name, int64_t code, auto&& fill) {
    one(name, 3.0, 100 + cases.size(), fill);
    cases.back().expect_error = code;
  };
  err("error_nan_position", -1, [&](System& s, Rng& r) {
    ortho(cell, 5, 5, 5);
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 10, r);
    s.pos[3 * 4 + 1] = NAN;
  });
  err("error_inf_cell", -1, [&](System& s, Rng& r) {
    ortho(cell, 5, 5, 5);
    cell[2][0] = INFINITY;
    bool p[3] = {T, T, F};
    add_structure(s, cell, p, 10, r);
  });
  err("error_degenerate_cell", -2, [&](System& s, Rng& r) {
    tri(cell, {4, 0, 0, 8, 0, 0, 0, 0, 4});  // b = 2a
    bool p[3] = {T, T, T};
    add_structure(s, cell, p, 5, r);
  });
  err("error_zero_periodic_row", -2, [&](System& s, Rng& r) {
    tri(cell, {0, 0, 0, 0, 5, 0, 0, 0, 5});
    bool p[3] = {T, F, F};
    add_structure(s, cell, p, 5, r);
  });
  err("degenerate_cell_but_empty_is_ok", 0, [&](System& s, Rng& r) {
    bool pa[3] = {T, T, T};
    tri(cell, {4, 0, 0, 8, 0, 0, 0, 0, 4});
    add_structure(s, cell, pa, 0, r);
    ortho(cell, 5, 5, 5);
    add_structure(s, cell, pa, 10, r);
  });
  err("error_first_structure_wins_degenerate", -2, [&](System& s, Rng& r) {
    bool pa[3] = {T, T, T};
    tri(cell, {4, 0, 0, 8, 0, 0, 0, 0, 4});
    add_structure(s, cell, pa, 3, r);
    ortho(cell, 5, 5, 5);
    add_structure(s, cell, pa, 10, r);
    s.pos[3 * 5] = NAN;
  });
  err("error_first_structure_wins_nan", -1, [&](System& s, Rng& r) {
    bool pa[3] = {T, T, T};
    ortho(cell, 5, 5, 5);
    add_structure(s, cell, pa, 10, r);
    s.pos[3 * 2 + 2] = INFINITY;
    tri(cell, {4, 0, 0, 8, 0, 0, 0, 0, 4});
    add_structure(s, cell, pa, 3, r);
  });
  err("error_nonfinite_cell_in_empty_structure", -1, [&](System& s, Rng& r) {
    bool pa[3] = {T, T, T};
    ortho(cell, 5, 5, 5);
    add_structure(s, cell, pa, 10, r);
    cell[1][1] = NAN;
    add_structure(s, cell, pa, 0, r);
  });
  return cases;
}

std::string compare(const Result& a, const Result& b) {
  char buf[256];
  if (a.count != b.count) {
    std::snprintf(buf, sizeof buf, "count %lld vs %lld", (long long)a.count, (long long)b.count);
    return buf;
  }
  if (a.pairs.size() != b.pairs.size()) return "pair list sizes differ";
  for (size_t k = 0; k < a.pairs.size(); ++k)
    if (!(a.pairs[k] == b.pairs[k])) {
      const Pair& p = a.pairs[k];
      const Pair& q = b.pairs[k];
      std::snprintf(buf, sizeof buf, "first difference at %zu: (%d,%d,%d,%d,%d) vs (%d,%d,%d,%d,%d)", k, p.i, p.j,
                    p.sx, p.sy, p.sz, q.i, q.j, q.sx, q.sy, q.sz);
      return buf;
    }
  return "";
}

int g_passed = 0, g_failed = 0;

void report(const std::string& name, const std::string& what, const std::string& problem, const std::string& detail) {
  if (problem.empty()) {
    ++g_passed;
    std::printf("PASS  %-42s %-22s %s\n", name.c_str(), what.c_str(), detail.c_str());
  } else {
    ++g_failed;
    std::printf("FAIL  %-42s %-22s %s (%s)\n", name.c_str(), what.c_str(), problem.c_str(), detail.c_str());
  }
  std::fflush(stdout);
}

// The capacity contract of one AOT backend on one case: capacity = exact, half (overflow), 0, count + 37.
template <typename Real>
void check_capacities(const AotBackend& be, const System& sys, const Result& ref) {
  const int64_t n = std::max<int64_t>(ref.count, 0);
  const int64_t caps[4] = {n, n / 2, 0, n + 37};
  const char* tags[4] = {"C=count", "C=count/2", "C=0", "C=count+37"};
  for (int t = 0; t < 4; ++t) {
    if (t == 1 && n < 2) continue;
    if (t == 2 && n == 0) continue;
    AotOut out;
    int rc = run_aot<Real>(be, sys, caps[t], out);
    std::string what = std::string(be.name) + (sizeof(Real) == 8 ? "/f64 " : "/f32 ") + tags[t];
    report(sys.name, what, check_aot(out, rc, caps[t], ref), "count=" + std::to_string(out.count));
  }
}

}  // namespace

int main() {
#ifndef CPU_SELFTEST
  int n_dev = 0;
  cudaError_t e = cudaGetDeviceCount(&n_dev);
  if (e != cudaSuccess || n_dev == 0) {
    std::printf("no CUDA device (%s): CUDA neighbor-list tests SKIPPED (exit code 77)\n",
                e != cudaSuccess ? cudaGetErrorString(e) : "device count is 0");
    return 77;
  }
  cudaDeviceProp prop;
  CUDA_OK(cudaGetDeviceProperties(&prop, 0));
  std::printf("CUDA device 0: %s (sm_%d%d)\n", prop.name, prop.major, prop.minor);
  const AotBackend gpu_aot = {"gpu_aot", &NeighborListAOT, true};
#else
  std::printf("CPU self-test: CPU kernel vs brute force (no CUDA)\n");
#endif
  const AotBackend cpu_aot = {"cpu_aot", &msmm_cpu_NeighborListAOT, false};
  for (const System& sys : make_cases()) {
    const Result cpu64 = cpu_kernel<double>(sys);
    const Result cpu32 = cpu_kernel<float>(sys);
    const std::string detail64 = "pairs=" + std::to_string(cpu64.count);
    const std::string detail32 = "pairs=" + std::to_string(cpu32.count);
    if (sys.expect_error < 0) {
      report(sys.name, "cpu/f64 error code", cpu64.count == sys.expect_error ? "" : "unexpected count", detail64);
      report(sys.name, "cpu/f32 error code", cpu32.count == sys.expect_error ? "" : "unexpected count", detail32);
    } else {
      report(sys.name, "cpu/f64 vs brute", compare(cpu64, brute_force<double>(sys)), detail64);
      report(sys.name, "cpu/f32 vs brute", compare(cpu32, brute_force<float>(sys)), detail32);
      if (cpu64.count == 0 && sys.N() > 1 && sys.name.find("empty") == std::string::npos)
        report(sys.name, "case has pairs", "no pairs: the case tests nothing", detail64);
    }
    check_capacities<double>(cpu_aot, sys, cpu64);
#ifndef CPU_SELFTEST
    {
      // host-callable path (float64): full capacity, then overflow
      std::vector<int32_t> off(sys.offsets.begin(), sys.offsets.end());
      for (int pass = 0; pass < 2; ++pass) {
        const int64_t n = std::max<int64_t>(cpu64.count, 0);
        const int64_t cap = pass == 0 ? n : n / 2;
        if (pass == 1 && n < 2) continue;
        AotOut out;
        out.i.assign(cap + kGuard, kSentinel);
        out.j.assign(cap + kGuard, kSentinel);
        out.sh.assign(3 * (cap + kGuard), kSentinel);
        int32_t count = 0;
        int rc = msmm_nl_cuda(sys.pos.data(), sys.cells.data(), sys.pbc.data(), off.data(), sys.S(), sys.N(),
                              sys.cutoff, cap, out.i.data(), out.j.data(), out.sh.data(), &count);
        out.count = count;
        std::string problem = rc ? "msmm_nl_cuda returned " + std::to_string(rc) : check_aot(out, 0, cap, cpu64);
        if (problem.empty() && pass == 0 && cpu64.count >= 0) {
          Result gpu;
          gpu.count = count;
          for (int64_t k = 0; k < std::min<int64_t>(count, cap); ++k)
            gpu.pairs.push_back({out.i[k], out.j[k], out.sh[3 * k], out.sh[3 * k + 1], out.sh[3 * k + 2]});
          std::sort(gpu.pairs.begin(), gpu.pairs.end());
          problem = compare(gpu, cpu64);
        }
        report(sys.name, pass == 0 ? "gpu_host/f64 vs cpu" : "gpu_host/f64 C=count/2", problem,
               "count=" + std::to_string(count));
      }
    }
    check_capacities<double>(gpu_aot, sys, cpu64);
    check_capacities<float>(gpu_aot, sys, cpu32);
#endif
  }
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
