// The channel-wise tensor-product convolution of MACE/NequIP, fused, for MindSpore's
// ops.Custom(func_type="aot").
//
// One multilinear form over the edges e (sender src[e], receiver dst[e]) ties four arrays together:
//
//   T(h, g, y, w) = sum_e sum_{u, d, s} g[dst[e], u, s] * w[e, path[s], u] * h[src[e], u, d] * y[e, d, s]
//
//   h [A, U, D]  node features of one irrep entry (U channels, D = 2l+1 components), read at senders
//   g [A, U, S]  node array on the receiver side (S = the output components of all paths of that entry)
//   y [E, D, S]  per-edge coupling: the spherical harmonics contracted with the Clebsch-Gordan tensors
//   w [E, P, U]  per-edge path weights (from the radial MLP); path[s] in [0, P) is the path of column s
//
// Each kernel computes one partial derivative of T, from the other three arrays:
//
//   TPConv   (h, y, w) -> dT/dg [A, U, S]   the convolution itself: messages summed at receivers
//   TPGradH  (g, y, w) -> dT/dh [A, U, D]
//   TPGradY  (h, g, w) -> dT/dy [E, D, S]
//   TPGradW  (h, g, y) -> dT/dw [E, P, U]
//
// so the four are closed under differentiation (mindsponge_mm/so3/tp_kernel.py writes each one's
// derivative with the others), and forces and the double backward of a force loss run through them.
// Every entry takes (a, b, c, path [S] int32, path_len [P] int32, src [E] int32, dst [E] int32, out).
// Edges with an index outside [0, A) contribute nothing (per-edge outputs are zero there). float32
// and float64. Large calls use two threads: the node outputs are split by channel u and the per-edge
// outputs by edge, so no two threads write the same value and the result does not depend on the split.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

// Multiply-adds per call from which two threads share the work (as in pair_ops.cc).
constexpr int64_t kThreadedWork = int64_t(1) << 21;

template <typename Body>
void run_split(int64_t n, int64_t work, Body body) {
  if (work < kThreadedWork || n < 2) {
    body(int64_t(0), n);
    return;
  }
  const int64_t half = n / 2;
  std::thread other([&] { body(half, n); });
  body(int64_t(0), half);
  other.join();
}

struct Dims {
  int64_t A, U, D, S, P, E;
};

inline bool valid(int64_t i, int64_t A) { return i >= 0 && i < A; }

// wexp[u * S + s] = w[e, path[s], u] for channels [u0, u1)
template <typename T>
inline void expand_weights(const T* we, const int32_t* path, const Dims& n, int64_t u0, int64_t u1, T* wexp) {
  for (int64_t u = u0; u < u1; ++u) {
    T* row = wexp + u * n.S;
    for (int64_t s = 0; s < n.S; ++s) row[s] = we[int64_t(path[s]) * n.U + u];
  }
}

// out[dst, u, s] += w[e, path[s], u] * sum_d h[src, u, d] * y[e, d, s]
template <typename T>
void tp_conv(const T* h, const T* y, const T* w, const int32_t* path, const int32_t* src, const int32_t* dst,
             T* out, const Dims& n) {
  std::memset(out, 0, sizeof(T) * n.A * n.U * n.S);
  run_split(n.U, n.E * n.U * n.S * (n.D + 1), [&](int64_t u0, int64_t u1) {
    std::vector<T> wexp(n.U * n.S), t(n.S);
    for (int64_t e = 0; e < n.E; ++e) {
      const int64_t m = src[e], r = dst[e];
      if (!valid(m, n.A) || !valid(r, n.A)) continue;
      const T* ye = y + e * n.D * n.S;
      expand_weights(w + e * n.P * n.U, path, n, u0, u1, wexp.data());
      for (int64_t u = u0; u < u1; ++u) {
        const T* hu = h + (m * n.U + u) * n.D;
        std::fill(t.begin(), t.end(), T(0));
        for (int64_t d = 0; d < n.D; ++d) {
          const T hv = hu[d];
          const T* yd = ye + d * n.S;
          for (int64_t s = 0; s < n.S; ++s) t[s] += hv * yd[s];
        }
        T* o = out + (r * n.U + u) * n.S;
        const T* wu = wexp.data() + u * n.S;
        for (int64_t s = 0; s < n.S; ++s) o[s] += wu[s] * t[s];
      }
    }
  });
}

// out[src, u, d] += sum_s g[dst, u, s] * w[e, path[s], u] * y[e, d, s]
template <typename T>
void tp_grad_h(const T* g, const T* y, const T* w, const int32_t* path, const int32_t* src, const int32_t* dst,
               T* out, const Dims& n) {
  std::memset(out, 0, sizeof(T) * n.A * n.U * n.D);
  run_split(n.U, n.E * n.U * n.S * (n.D + 1), [&](int64_t u0, int64_t u1) {
    std::vector<T> wexp(n.U * n.S), q(n.S);
    for (int64_t e = 0; e < n.E; ++e) {
      const int64_t m = src[e], r = dst[e];
      if (!valid(m, n.A) || !valid(r, n.A)) continue;
      const T* ye = y + e * n.D * n.S;
      expand_weights(w + e * n.P * n.U, path, n, u0, u1, wexp.data());
      for (int64_t u = u0; u < u1; ++u) {
        const T* gu = g + (r * n.U + u) * n.S;
        const T* wu = wexp.data() + u * n.S;
        for (int64_t s = 0; s < n.S; ++s) q[s] = gu[s] * wu[s];
        T* o = out + (m * n.U + u) * n.D;
        for (int64_t d = 0; d < n.D; ++d) {
          const T* yd = ye + d * n.S;
          T acc = T(0);
          for (int64_t s = 0; s < n.S; ++s) acc += q[s] * yd[s];
          o[d] += acc;
        }
      }
    }
  });
}

// out[e, d, s] = sum_u h[src, u, d] * g[dst, u, s] * w[e, path[s], u]
template <typename T>
void tp_grad_y(const T* h, const T* g, const T* w, const int32_t* path, const int32_t* src, const int32_t* dst,
               T* out, const Dims& n) {
  run_split(n.E, n.E * n.U * n.S * (n.D + 1), [&](int64_t e0, int64_t e1) {
    std::vector<T> wexp(n.U * n.S), q(n.S);
    for (int64_t e = e0; e < e1; ++e) {
      T* oe = out + e * n.D * n.S;
      std::fill(oe, oe + n.D * n.S, T(0));
      const int64_t m = src[e], r = dst[e];
      if (!valid(m, n.A) || !valid(r, n.A)) continue;
      expand_weights(w + e * n.P * n.U, path, n, 0, n.U, wexp.data());
      for (int64_t u = 0; u < n.U; ++u) {
        const T* gu = g + (r * n.U + u) * n.S;
        const T* wu = wexp.data() + u * n.S;
        for (int64_t s = 0; s < n.S; ++s) q[s] = gu[s] * wu[s];
        const T* hu = h + (m * n.U + u) * n.D;
        for (int64_t d = 0; d < n.D; ++d) {
          const T hv = hu[d];
          T* od = oe + d * n.S;
          for (int64_t s = 0; s < n.S; ++s) od[s] += hv * q[s];
        }
      }
    }
  });
}

// out[e, p, u] = sum_{s: path[s] = p} g[dst, u, s] * sum_d h[src, u, d] * y[e, d, s]
template <typename T>
void tp_grad_w(const T* h, const T* g, const T* y, const int32_t* path, const int32_t* src, const int32_t* dst,
               T* out, const Dims& n) {
  run_split(n.E, n.E * n.U * n.S * (n.D + 1), [&](int64_t e0, int64_t e1) {
    std::vector<T> t(n.S);
    for (int64_t e = e0; e < e1; ++e) {
      T* oe = out + e * n.P * n.U;
      std::fill(oe, oe + n.P * n.U, T(0));
      const int64_t m = src[e], r = dst[e];
      if (!valid(m, n.A) || !valid(r, n.A)) continue;
      const T* ye = y + e * n.D * n.S;
      for (int64_t u = 0; u < n.U; ++u) {
        const T* hu = h + (m * n.U + u) * n.D;
        std::fill(t.begin(), t.end(), T(0));
        for (int64_t d = 0; d < n.D; ++d) {
          const T hv = hu[d];
          const T* yd = ye + d * n.S;
          for (int64_t s = 0; s < n.S; ++s) t[s] += hv * yd[s];
        }
        const T* gu = g + (r * n.U + u) * n.S;
        for (int64_t s = 0; s < n.S; ++s) oe[int64_t(path[s]) * n.U + u] += gu[s] * t[s];
      }
    }
  });
}

bool is(const char* dtype, const char* name) { return std::string(dtype) == name; }

enum class Kind { kConv, kGradH, kGradY, kGradW };

// Reads the dimensions from the three float inputs (their roles depend on the kind) and checks them.
bool read_dims(Kind kind, int* ndims, int64_t** shapes, Dims* n) {
  for (int i = 0; i < 3; ++i)
    if (ndims[i] != 3) return false;
  for (int i = 3; i < 7; ++i)
    if (ndims[i] != 1) return false;
  const int64_t* a = shapes[0];
  const int64_t* b = shapes[1];
  const int64_t* c = shapes[2];
  n->S = shapes[3][0];
  n->P = shapes[4][0];
  n->E = shapes[5][0];
  switch (kind) {
    case Kind::kConv:  // h [A,U,D], y [E,D,S], w [E,P,U]
      n->A = a[0], n->U = a[1], n->D = a[2];
      return b[0] == n->E && b[1] == n->D && b[2] == n->S && c[0] == n->E && c[1] == n->P && c[2] == n->U;
    case Kind::kGradH:  // g [A,U,S], y [E,D,S], w [E,P,U]
      n->A = a[0], n->U = a[1], n->D = b[1];
      return a[2] == n->S && b[0] == n->E && b[2] == n->S && c[0] == n->E && c[1] == n->P && c[2] == n->U;
    case Kind::kGradY:  // h [A,U,D], g [A,U,S], w [E,P,U]
      n->A = a[0], n->U = a[1], n->D = a[2];
      return b[0] == n->A && b[1] == n->U && b[2] == n->S && c[0] == n->E && c[1] == n->P && c[2] == n->U;
    case Kind::kGradW:  // h [A,U,D], g [A,U,S], y [E,D,S]
      n->A = a[0], n->U = a[1], n->D = a[2];
      return b[0] == n->A && b[1] == n->U && b[2] == n->S && c[0] == n->E && c[1] == n->D && c[2] == n->S;
  }
  return false;
}

template <typename T>
int dispatch(Kind kind, void** params, const Dims& n) {
  const auto* a = static_cast<const T*>(params[0]);
  const auto* b = static_cast<const T*>(params[1]);
  const auto* c = static_cast<const T*>(params[2]);
  const auto* path = static_cast<const int32_t*>(params[3]);
  const auto* src = static_cast<const int32_t*>(params[5]);
  const auto* dst = static_cast<const int32_t*>(params[6]);
  auto* out = static_cast<T*>(params[7]);
  for (int64_t s = 0; s < n.S; ++s)
    if (path[s] < 0 || path[s] >= n.P) return 4;
  switch (kind) {
    case Kind::kConv: tp_conv(a, b, c, path, src, dst, out, n); break;
    case Kind::kGradH: tp_grad_h(a, b, c, path, src, dst, out, n); break;
    case Kind::kGradY: tp_grad_y(a, b, c, path, src, dst, out, n); break;
    case Kind::kGradW: tp_grad_w(a, b, c, path, src, dst, out, n); break;
  }
  return 0;
}

// Returns 0, or 1 (arity), 2 (shapes), 3 (dtypes), 4 (a path index out of range).
int run(Kind kind, int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes) {
  if (nparam != 8) return 1;
  Dims n{};
  if (!read_dims(kind, ndims, shapes, &n)) return 2;
  if (!is(dtypes[0], dtypes[1]) || !is(dtypes[0], dtypes[2]) || !is(dtypes[0], dtypes[7])) return 3;
  for (int i = 3; i < 7; ++i)
    if (!is(dtypes[i], "int32")) return 3;
  if (is(dtypes[0], "float64")) return dispatch<double>(kind, params, n);
  if (is(dtypes[0], "float32")) return dispatch<float>(kind, params, n);
  return 3;
}

}  // namespace

extern "C" {

int TPConv(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream, void* extra) {
  (void)stream;
  (void)extra;
  return run(Kind::kConv, nparam, params, ndims, shapes, dtypes);
}

int TPGradH(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream, void* extra) {
  (void)stream;
  (void)extra;
  return run(Kind::kGradH, nparam, params, ndims, shapes, dtypes);
}

int TPGradY(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream, void* extra) {
  (void)stream;
  (void)extra;
  return run(Kind::kGradY, nparam, params, ndims, shapes, dtypes);
}

int TPGradW(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream, void* extra) {
  (void)stream;
  (void)extra;
  return run(Kind::kGradW, nparam, params, ndims, shapes, dtypes);
}

}  // extern "C"
