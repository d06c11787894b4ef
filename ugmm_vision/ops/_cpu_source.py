"""C++ source of the fused CPU uGMM kernels, compiled at first use by :mod:`ugmm_vision.ops.cpu`.

Plain C++17 with GCC/Clang vector extensions (64-byte vectors: one AVX-512 register, two AVX2 ones, …) and
OpenMP threads; no PyTorch headers, so the build takes about a second. The exported functions take raw
pointers to contiguous, padded tensors (see :mod:`ugmm_vision.ops.cpu` for the layout).
"""

CPP_SOURCE = r"""// Fused uGMM log-density kernels for the CPU (forward and recomputing backward).
// Portable SIMD through GCC/Clang vector extensions; OpenMP threads when built with -fopenmp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#define UGMM_INLINE inline __attribute__((always_inline))

namespace {

template <typename T> struct Vec;
template <> struct Vec<float> {
  typedef float V __attribute__((vector_size(64)));
  typedef int32_t M __attribute__((vector_size(64)));
  typedef int32_t MS;  // scalar mask element
  static constexpr int W = 16;
};
template <> struct Vec<double> {
  typedef double V __attribute__((vector_size(64)));
  typedef int64_t M __attribute__((vector_size(64)));
  typedef int64_t MS;
  static constexpr int W = 8;
};

template <typename V, typename P> UGMM_INLINE V load(const P* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}
template <typename V, typename P> UGMM_INLINE void store(P* p, const V& v) { std::memcpy(p, &v, sizeof(V)); }
template <typename V, typename T> UGMM_INLINE V splat(T s) { return V{} + s; }

template <typename T, typename V> UGMM_INLINE T hmax(const V& v) {
  T a[sizeof(V) / sizeof(T)];
  std::memcpy(a, &v, sizeof(V));
  T m = a[0];
  for (size_t i = 1; i < sizeof(V) / sizeof(T); ++i) m = a[i] > m ? a[i] : m;
  return m;
}
template <typename T, typename V> UGMM_INLINE T hsum(const V& v) {
  T a[sizeof(V) / sizeof(T)];
  std::memcpy(a, &v, sizeof(V));
  T s = 0;
  for (size_t i = 0; i < sizeof(V) / sizeof(T); ++i) s += a[i];
  return s;
}

// exp(x), Cody-Waite reduction + Cephes polynomial (float, ~1 ulp) / degree-13 Taylor (double).
// Arguments below the normal range give exactly 0 (so exp(-inf) = 0); NaN propagates.
UGMM_INLINE Vec<float>::V vexp(Vec<float>::V x) {
  typedef Vec<float>::V V;
  typedef Vec<float>::M M;
  const V lo = splat<V>(-87.0f), hi = splat<V>(88.0f), magic = splat<V>(12582912.0f);
  V xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  V n = (xc * 1.44269504088896341f + magic) - magic;
  V r = xc - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  V p = splat<V>(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  M e = (__builtin_convertvector(n, M) + 127) << 23;
  V scale;
  std::memcpy(&scale, &e, sizeof(V));
  p = p * scale;
  return x < lo ? splat<V>(0.0f) : p;
}

UGMM_INLINE Vec<double>::V vexp(Vec<double>::V x) {
  typedef Vec<double>::V V;
  typedef Vec<double>::M M;
  const V lo = splat<V>(-708.0), hi = splat<V>(709.0), magic = splat<V>(6755399441055744.0);
  V xc = x < lo ? lo : x;
  xc = xc > hi ? hi : xc;
  V n = (xc * 1.4426950408889634074 + magic) - magic;
  V r = xc - n * 6.93145751953125e-1;
  r = r - n * 1.42860682030941723212e-6;
  V p = splat<V>(1.0 / 6227020800.0);  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  M e = (__builtin_convertvector(n, M) + 1023) << 52;
  V scale;
  std::memcpy(&scale, &e, sizeof(V));
  p = p * scale;
  return x < lo ? splat<V>(0.0) : p;
}

constexpr int kRows = 4;      // forward: rows of x per work item (B is padded to a multiple)
constexpr int kBlock = 512;   // forward: components buffered per logsumexp block
constexpr int kTileVecs = 2;  // backward: vectors of components per work item (I is padded to a multiple)

// y[b, j] = logsumexp_k t[b, j, k], t = a[j,k] - (sc[j,k] (x[b,k] - mu[j,k]))^2, or lp[j,k] where mask[b,k].
// Shapes: x, mask (B, I); mu (O, I) with row stride mu_stride (0: tied); a, sc, lp (O, I); y (B, O).
template <typename T, bool MASK>
void forward(int64_t B, int64_t O, int64_t I, const T* x, const typename Vec<T>::MS* mask, const T* mu,
             int64_t mu_stride, const T* a, const T* sc, const T* lp, T* y, int nthreads) {
  typedef typename Vec<T>::V V;
  typedef typename Vec<T>::M M;
  constexpr int W = Vec<T>::W;
  const T ninf = -std::numeric_limits<T>::infinity();
  const int64_t row_tiles = B / kRows;
  const int64_t units = O * row_tiles;
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t j = u / row_tiles, b0 = (u % row_tiles) * kRows;
    const T *muj = mu + j * mu_stride, *aj = a + j * I, *scj = sc + j * I, *lpj = lp + j * I;
    alignas(64) T buf[kRows][kBlock];
    T run_max[kRows], run_sum[kRows];
    for (int r = 0; r < kRows; ++r) run_max[r] = ninf, run_sum[r] = 0;
    for (int64_t k0 = 0; k0 < I; k0 += kBlock) {
      const int64_t kb = std::min<int64_t>(kBlock, I - k0);
      V vmax[kRows];
      for (int r = 0; r < kRows; ++r) vmax[r] = splat<V>(ninf);
      for (int64_t k = 0; k < kb; k += W) {
        const V m_ = load<V>(muj + k0 + k), s_ = load<V>(scj + k0 + k), a_ = load<V>(aj + k0 + k);
        V l_ = {};
        if (MASK) l_ = load<V>(lpj + k0 + k);
#pragma GCC unroll 4
        for (int r = 0; r < kRows; ++r) {
          const int64_t off = (b0 + r) * I + k0 + k;
          const V z = (load<V>(x + off) - m_) * s_;
          V t = a_ - z * z;
          if (MASK) t = load<M>(mask + off) != 0 ? l_ : t;
          store(&buf[r][k], t);
          vmax[r] = vmax[r] > t ? vmax[r] : t;
        }
      }
      for (int r = 0; r < kRows; ++r) {
        const T new_max = std::max(run_max[r], hmax<T>(vmax[r]));
        if (new_max == ninf) continue;  // every component so far dropped
        if (new_max > run_max[r]) {
          run_sum[r] *= std::exp(run_max[r] - new_max);
          run_max[r] = new_max;
        }
        const V shift = splat<V>(new_max);
        V acc = {};
        for (int64_t k = 0; k < kb; k += W) acc += vexp(load<V>(&buf[r][k]) - shift);
        run_sum[r] += hsum<T>(acc);
      }
    }
    for (int r = 0; r < kRows; ++r) y[(b0 + r) * O + j] = run_max[r] + std::log(run_sum[r]);
  }
}

// Recomputing backward. p = g exp(t - y) is the responsibility-weighted upstream gradient;
// with z = sc (x - mu):
//   glp = sum_b p,  gmu = 2 sc sum_b p z,  gls = sum_b p (2 z^2 - 1) (unmasked terms),  gx = -2 sum_j p z sc.
// Work items own a tile of components k for every j and b, so no two threads write the same output.
// yt, gt: output and its gradient transposed to (O, B).
template <typename T, bool MASK>
void backward(int64_t B, int64_t O, int64_t I, const T* x, const typename Vec<T>::MS* mask, const T* mu,
              int64_t mu_stride, const T* a, const T* sc, const T* lp, const T* yt, const T* gt, T* gx,
              T* glp, T* gmu, T* gls, int nthreads) {
  typedef typename Vec<T>::V V;
  typedef typename Vec<T>::M M;
  constexpr int W = Vec<T>::W;
  constexpr int TW = kTileVecs * W;
  const int64_t tiles = I / TW;
#pragma omp parallel for schedule(static) num_threads(nthreads)
  for (int64_t tile = 0; tile < tiles; ++tile) {
    const int64_t k = tile * TW;
    for (int64_t b = 0; b < B; ++b)
      for (int v = 0; v < kTileVecs; ++v) store(gx + b * I + k + v * W, V{});
    for (int64_t j = 0; j < O; ++j) {
      V m_[kTileVecs], s_[kTileVecs], a_[kTileVecs], l_[kTileVecs], n2s[kTileVecs];
      V g0[kTileVecs], g1[kTileVecs], g2[kTileVecs], gu[kTileVecs];
      for (int v = 0; v < kTileVecs; ++v) {
        const int64_t off = j * I + k + v * W;
        m_[v] = load<V>(mu + j * mu_stride + k + v * W);
        s_[v] = load<V>(sc + off);
        a_[v] = load<V>(a + off);
        l_[v] = MASK ? load<V>(lp + off) : V{};
        n2s[v] = s_[v] * T(-2);
        g0[v] = g1[v] = g2[v] = gu[v] = V{};
      }
      const T *yj = yt + j * B, *gj = gt + j * B;
      for (int64_t b = 0; b < B; ++b) {
        const V yb = splat<V>(yj[b]), gb = splat<V>(gj[b]);
#pragma GCC unroll 2
        for (int v = 0; v < kTileVecs; ++v) {
          const int64_t off = b * I + k + v * W;
          V z = (load<V>(x + off) - m_[v]) * s_[v];
          V t = a_[v] - z * z;
          M miss = {};
          if (MASK) {
            miss = load<M>(mask + off) != 0;
            t = miss ? l_[v] : t;
            z = miss ? V{} : z;
          }
          const V p = gb * vexp(t - yb);
          g0[v] += p;
          if (MASK) gu[v] += miss ? V{} : p;
          const V w = p * z;
          g1[v] += w;
          g2[v] += w * z;
          store(gx + off, load<V>(gx + off) + w * n2s[v]);
        }
      }
      for (int v = 0; v < kTileVecs; ++v) {
        const int64_t off = j * I + k + v * W;
        store(glp + off, g0[v]);
        store(gmu + off, T(2) * s_[v] * g1[v]);
        store(gls + off, T(2) * g2[v] - (MASK ? gu[v] : g0[v]));
      }
    }
  }
}

}  // namespace

template <typename T>
void forward_any(int64_t B, int64_t O, int64_t I, const T* x, const typename Vec<T>::MS* mask,
                 const T* mu, int64_t mu_stride, const T* a, const T* sc, const T* lp, T* y,
                 int nthreads) {
  if (mask)
    forward<T, true>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, y, nthreads);
  else
    forward<T, false>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, y, nthreads);
}

template <typename T>
void backward_any(int64_t B, int64_t O, int64_t I, const T* x, const typename Vec<T>::MS* mask,
                  const T* mu, int64_t mu_stride, const T* a, const T* sc, const T* lp, const T* yt,
                  const T* gt, T* gx, T* glp, T* gmu, T* gls, int nthreads) {
  if (mask)
    backward<T, true>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, yt, gt, gx, glp, gmu, gls, nthreads);
  else
    backward<T, false>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, yt, gt, gx, glp, gmu, gls, nthreads);
}

extern "C" {
int ugmm_abi_version() { return 1; }

void ugmm_forward_f32(int64_t B, int64_t O, int64_t I, const float* x, const int32_t* mask,
                      const float* mu, int64_t mu_stride, const float* a, const float* sc,
                      const float* lp, float* y, int nthreads) {
  forward_any<float>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, y, nthreads);
}

void ugmm_forward_f64(int64_t B, int64_t O, int64_t I, const double* x, const int64_t* mask,
                      const double* mu, int64_t mu_stride, const double* a, const double* sc,
                      const double* lp, double* y, int nthreads) {
  forward_any<double>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, y, nthreads);
}

void ugmm_backward_f32(int64_t B, int64_t O, int64_t I, const float* x, const int32_t* mask,
                       const float* mu, int64_t mu_stride, const float* a, const float* sc,
                       const float* lp, const float* yt, const float* gt, float* gx, float* glp,
                       float* gmu, float* gls, int nthreads) {
  backward_any<float>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, yt, gt, gx, glp, gmu, gls, nthreads);
}

void ugmm_backward_f64(int64_t B, int64_t O, int64_t I, const double* x, const int64_t* mask,
                       const double* mu, int64_t mu_stride, const double* a, const double* sc,
                       const double* lp, const double* yt, const double* gt, double* gx,
                       double* glp, double* gmu, double* gls, int nthreads) {
  backward_any<double>(B, O, I, x, mask, mu, mu_stride, a, sc, lp, yt, gt, gx, glp, gmu, gls, nthreads);
}
}  // extern "C"
"""
