// Fused gather-multiply-scatter kernels over atom pairs, for MindSpore's ops.Custom(func_type="aot").
//
//   PairConv:    y[dst[p], f] += x[src[p], f] * w[p, f]     x [A, F], w [P, F], src/dst [P] int32 -> y [A, F]
//   PairProduct: h[p, f] = a[ia[p], f] * b[ib[p], f]        a [A, F], b [A, F], ia/ib [P] int32 -> h [P, F]
//
// The two are closed under differentiation (see mindsponge_mm/nn/pair_ops.py), so forces and the
// double backward of a force loss run through them too. Indices outside [0, A) are skipped, as
// MindSpore's UnsortedSegmentSum does. float32 and float64; large calls split the work over two
// threads (PairConv by feature columns, PairProduct by pairs), so no two threads write the same value
// and the result does not depend on the thread count.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>

namespace {

// P * F from which two threads share a call. Measured on 2 cores: below about 2^21 starting the thread costs
// more than it saves (SchNet train step on 10 ethanol 27 -> 22 ms single-threaded); 864-atom Cu (4.7e6) gains 5-10 %.
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

template <typename T>
void pair_conv(const T* x, const T* w, const int32_t* src, const int32_t* dst, T* y, int64_t A, int64_t P,
               int64_t F) {
  std::memset(y, 0, sizeof(T) * A * F);
  run_split(F, P * F, [&](int64_t f0, int64_t f1) {
    for (int64_t p = 0; p < P; ++p) {
      const int64_t s = src[p], d = dst[p];
      if (s < 0 || s >= A || d < 0 || d >= A) continue;
      const T* xr = x + s * F;
      const T* wr = w + p * F;
      T* yr = y + d * F;
      for (int64_t f = f0; f < f1; ++f) yr[f] += xr[f] * wr[f];
    }
  });
}

template <typename T>
void pair_product(const T* a, const T* b, const int32_t* ia, const int32_t* ib, T* h, int64_t A, int64_t P,
                  int64_t F) {
  run_split(P, P * F, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t i = ia[p], j = ib[p];
      T* hr = h + p * F;
      if (i < 0 || i >= A || j < 0 || j >= A) {
        std::fill(hr, hr + F, T(0));
        continue;
      }
      const T* ar = a + i * F;
      const T* br = b + j * F;
      for (int64_t f = 0; f < F; ++f) hr[f] = ar[f] * br[f];
    }
  });
}

bool is(const char* dtype, const char* name) { return std::string(dtype) == name; }

// Calls op(first, second, index0, index1, out) with the float type of params 0, 1 and 4 (params 2 and 3
// are int32 index vectors). Returns 3 on a dtype mismatch.
template <typename Op>
int with_dtypes(void** params, const char** dtypes, Op op) {
  if (!is(dtypes[0], dtypes[1]) || !is(dtypes[2], "int32") || !is(dtypes[3], "int32")) return 3;
  const auto* i0 = static_cast<const int32_t*>(params[2]);
  const auto* i1 = static_cast<const int32_t*>(params[3]);
  if (is(dtypes[0], "float64")) {
    op(static_cast<const double*>(params[0]), static_cast<const double*>(params[1]), i0, i1,
       static_cast<double*>(params[4]));
  } else if (is(dtypes[0], "float32")) {
    op(static_cast<const float*>(params[0]), static_cast<const float*>(params[1]), i0, i1,
       static_cast<float*>(params[4]));
  } else {
    return 3;
  }
  return 0;
}

}  // namespace

extern "C" {

// params: x, w, src, dst, y. Returns non-zero on a shape or dtype mismatch (MindSpore raises).
int PairConv(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
             void* extra) {
  (void)stream;
  (void)extra;
  if (nparam != 5 || ndims[0] != 2 || ndims[1] != 2) return 1;
  const int64_t A = shapes[0][0], F = shapes[0][1], P = shapes[1][0];
  if (shapes[1][1] != F || shapes[2][0] != P || shapes[3][0] != P) return 2;
  return with_dtypes(params, dtypes, [&](auto x, auto w, auto src, auto dst, auto y) {
    pair_conv(x, w, src, dst, y, A, P, F);
  });
}

// params: a, b, ia, ib, h.
int PairProduct(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void* stream,
                void* extra) {
  (void)stream;
  (void)extra;
  if (nparam != 5 || ndims[0] != 2 || ndims[1] != 2) return 1;
  const int64_t A = shapes[0][0], F = shapes[0][1], P = shapes[2][0];
  if (shapes[1][0] != A || shapes[1][1] != F || shapes[3][0] != P) return 2;
  return with_dtypes(params, dtypes, [&](auto a, auto b, auto ia, auto ib, auto h) {
    pair_product(a, b, ia, ib, h, A, P, F);
  });
}

}  // extern "C"
