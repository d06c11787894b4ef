// Fused uGMM log-density kernels for the CPU: forward, and a backward that recomputes the terms.
// Portable SIMD through GCC/Clang vector extensions; OpenMP threads when built with -fopenmp. The main loops
// are scheduled dynamically, so a thread preempted on a busy machine does not hold the others up.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>

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

// Unaligned load and store (memcpy compiles to one vector move), and broadcast.
template <typename V, typename P> UGMM_INLINE V load(const P* p) { V v; std::memcpy(&v, p, sizeof(V)); return v; }
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

constexpr int kRows = 4;       // forward: rows of x per work item (B is padded to a multiple)
constexpr int kBlock = 512;    // forward: components buffered per logsumexp block
constexpr int kTileVecs = 2;   // backward: vectors of components per work item
constexpr int kPad = 32;       // I is padded to a multiple of kPad (kTileVecs vectors of 16 floats)
constexpr double kHalfLog2Pi = 0.91893853320467274178;
constexpr double kSqrtHalf = 0.70710678118654752440;

template <typename T> std::unique_ptr<T[]> uninit(int64_t n) { return std::unique_ptr<T[]>(new T[n]); }

// Writes the lanes of v that fall below n into row[k..k+W).
template <typename T, typename V> UGMM_INLINE void store_valid(T* row, int64_t k, int64_t n, const V& v) {
  constexpr int W = sizeof(V) / sizeof(T);
  if (k + W <= n) return store(row + k, v);
  T lanes[W];
  std::memcpy(lanes, &v, sizeof(V));
  for (int i = 0; k + i < n; ++i) row[k + i] = lanes[i];
}

// The operands padded for the kernels: rows of x and mask to Bp, components to Ip. Padded components
// have a = lp = -inf (weight zero) and sc = 1, mu = x = 0, so they add exactly nothing.
// t[b, j, k] = a[j,k] - (sc[j,k] (x[b,k] - mu[j,k]))^2, or lp[j,k] where mask[b,k];
// a = log pi - log sigma - log(2 pi)/2, sc = 1 / (sigma sqrt 2).
template <typename T> struct Operands {
  typedef typename Vec<T>::MS MS;
  int64_t B, O, I, Bp, Ip, mu_stride;
  std::unique_ptr<T[]> x, mu, a, sc, lp;
  std::unique_ptr<MS[]> mask;

  Operands(int64_t B_, int64_t O_, int64_t I_, int64_t row_multiple, const T* x_in, const uint8_t* mask_in,
           const T* mu_in, bool tied, const T* log_sigma, const T* log_pi, int nthreads)
      : B(B_), O(O_), I(I_), Bp((B_ + row_multiple - 1) / row_multiple * row_multiple),
        Ip((I_ + kPad - 1) / kPad * kPad), mu_stride(tied ? 0 : Ip) {
    typedef typename Vec<T>::V V;
    constexpr int W = Vec<T>::W;
    const T ninf = -std::numeric_limits<T>::infinity(), c = T(kHalfLog2Pi), h = T(kSqrtHalf);
    x = uninit<T>(Bp * Ip);
    mu = uninit<T>(tied ? Ip : O * Ip);
    a = uninit<T>(O * Ip);
    sc = uninit<T>(O * Ip);
    lp = uninit<T>(O * Ip);
    if (mask_in) mask = uninit<MS>(Bp * Ip);
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static) nowait
      for (int64_t b = 0; b < Bp; ++b) {
        T* xr = x.get() + b * Ip;
        const int64_t n = b < B ? I : 0;
        if (n) std::copy(x_in + b * I, x_in + b * I + n, xr);
        std::fill(xr + n, xr + Ip, T(0));
        if (mask_in) {
          MS* mr = mask.get() + b * Ip;
          for (int64_t k = 0; k < n; ++k) mr[k] = mask_in[b * I + k] ? MS(-1) : MS(0);
          std::fill(mr + n, mr + Ip, MS(0));
        }
      }
#pragma omp for schedule(static)
      for (int64_t j = 0; j < O; ++j) {
        const T *lsj = log_sigma + j * I, *lpj = log_pi + j * I;
        T *aj = a.get() + j * Ip, *scj = sc.get() + j * Ip, *lpo = lp.get() + j * Ip;
        int64_t k = 0;
        for (; k + W <= I; k += W) {
          const V l = load<V>(lsj + k), p = load<V>(lpj + k);
          store(aj + k, p - l - c);
          store(scj + k, vexp(-l) * h);
          store(lpo + k, p);
        }
        for (; k < I; ++k) aj[k] = lpj[k] - lsj[k] - c, scj[k] = std::exp(-lsj[k]) * h, lpo[k] = lpj[k];
        for (; k < Ip; ++k) aj[k] = ninf, scj[k] = T(1), lpo[k] = ninf;
        if (!tied) {
          std::copy(mu_in + j * I, mu_in + (j + 1) * I, mu.get() + j * Ip);
          std::fill(mu.get() + j * Ip + I, mu.get() + (j + 1) * Ip, T(0));
        }
      }
    }
    if (tied) {
      std::copy(mu_in, mu_in + I, mu.get());
      std::fill(mu.get() + I, mu.get() + Ip, T(0));
    }
  }
};

// y[b, j] = logsumexp_k t[b, j, k]: an online logsumexp over blocks of kBlock components. y is (B, O).
template <typename T, bool MASK>
void forward(const Operands<T>& op, T* y, int nthreads) {
  typedef typename Vec<T>::V V;
  typedef typename Vec<T>::M M;
  constexpr int W = Vec<T>::W;
  const T ninf = -std::numeric_limits<T>::infinity(), pinf = std::numeric_limits<T>::infinity();
  const int64_t B = op.B, O = op.O, I = op.Ip, row_tiles = op.Bp / kRows, units = O * row_tiles;
#pragma omp parallel for schedule(dynamic, 8) num_threads(nthreads)
  for (int64_t u = 0; u < units; ++u) {
    const int64_t j = u / row_tiles, b0 = (u % row_tiles) * kRows;
    const T *muj = op.mu.get() + j * op.mu_stride, *aj = op.a.get() + j * I, *scj = op.sc.get() + j * I;
    const T* lpj = op.lp.get() + j * I;
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
          const V z = (load<V>(op.x.get() + off) - m_) * s_;
          V t = a_ - z * z;
          if (MASK) t = load<M>(op.mask.get() + off) != 0 ? l_ : t;
          store(&buf[r][k], t);
          vmax[r] = vmax[r] > t ? vmax[r] : t;
        }
      }
      for (int r = 0; r < kRows; ++r) {
        // hmax and the vmax selects may drop NaN terms; a NaN term then still reaches run_sum through vexp
        // below, except in a block that is skipped, which is therefore scanned for NaN.
        const T new_max = std::max(run_max[r], hmax<T>(vmax[r]));
        if (new_max == ninf || new_max == pinf) {  // every component so far dropped (-inf), or a +inf term
          bool nan = run_sum[r] != run_sum[r];
          for (int64_t k = 0; k < kb; ++k) nan |= buf[r][k] != buf[r][k];
          run_max[r] = new_max;  // y = -inf, +inf, or NaN where any term is NaN, as torch.logsumexp gives
          run_sum[r] = nan ? std::numeric_limits<T>::quiet_NaN() : T(new_max == pinf ? 1 : 0);
          continue;
        }
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
    for (int r = 0; r < kRows && b0 + r < B; ++r) y[(b0 + r) * O + j] = run_max[r] + std::log(run_sum[r]);
  }
}

// Recomputing backward. p = g exp(t - y) is the responsibility-weighted upstream gradient; with
// z = sc (x - mu) (z = 0 for missing inputs):
//   glp = sum_b p,  gmu = 2 sc sum_b p z,  gls = sum_b p (2 z^2 - 1) (observed terms only),
//   gx = -2 sum_j p z sc.
// A work item owns a tile of components k for every j and b, so no two threads write the same output.
// y, g are (B, O); outputs gx (B, I), glp, gls (O, I), gmu (O, I), or (I,) summed over j when tied.
template <typename T, bool MASK, bool TIED>
void backward(const Operands<T>& op, const T* y, const T* g, T* gx, T* glp, T* gmu, T* gls, int nthreads) {
  typedef typename Vec<T>::V V;
  typedef typename Vec<T>::M M;
  constexpr int W = Vec<T>::W, TW = kTileVecs * W;
  const int64_t B = op.B, O = op.O, I = op.I, Ip = op.Ip, tiles = Ip / TW;
  auto yt = uninit<T>(O * B), gt = uninit<T>(O * B), gx_ws = uninit<T>(B * Ip);
#pragma omp parallel num_threads(nthreads)
  {
#pragma omp for schedule(static)
    for (int64_t j = 0; j < O; ++j)
      for (int64_t b = 0; b < B; ++b) yt[j * B + b] = y[b * O + j], gt[j * B + b] = g[b * O + j];
#pragma omp for schedule(dynamic, 1)
    for (int64_t tile = 0; tile < tiles; ++tile) {
      const int64_t k = tile * TW;
      T* gxw = gx_ws.get();
      for (int64_t b = 0; b < B; ++b)
        for (int v = 0; v < kTileVecs; ++v) store(gxw + b * Ip + k + v * W, V{});
      V mu_sum[kTileVecs] = {};
      for (int64_t j = 0; j < O; ++j) {
        V m_[kTileVecs], s_[kTileVecs], a_[kTileVecs], l_[kTileVecs], n2s[kTileVecs];
        V g0[kTileVecs], g1[kTileVecs], g2[kTileVecs], gu[kTileVecs];
        for (int v = 0; v < kTileVecs; ++v) {
          const int64_t off = j * Ip + k + v * W;
          m_[v] = load<V>(op.mu.get() + j * op.mu_stride + k + v * W);
          s_[v] = load<V>(op.sc.get() + off);
          a_[v] = load<V>(op.a.get() + off);
          l_[v] = MASK ? load<V>(op.lp.get() + off) : V{};
          n2s[v] = s_[v] * T(-2);
          g0[v] = g1[v] = g2[v] = gu[v] = V{};
        }
        const T *yj = yt.get() + j * B, *gj = gt.get() + j * B;
        for (int64_t b = 0; b < B; ++b) {
          const V yb = splat<V>(yj[b]), gb = splat<V>(gj[b]);
#pragma GCC unroll 2
          for (int v = 0; v < kTileVecs; ++v) {
            const int64_t off = b * Ip + k + v * W;
            V z = (load<V>(op.x.get() + off) - m_[v]) * s_[v];
            V t = a_[v] - z * z;
            M miss = {};
            if (MASK) {
              miss = load<M>(op.mask.get() + off) != 0;
              t = miss ? l_[v] : t;
              z = miss ? V{} : z;
            }
            const V p = gb * vexp(t - yb);
            g0[v] += p;
            if (MASK) gu[v] += miss ? V{} : p;
            const V w = p * z;
            g1[v] += w;
            g2[v] += w * z;
            store(gxw + off, load<V>(gxw + off) + w * n2s[v]);
          }
        }
        for (int v = 0; v < kTileVecs; ++v) {
          const V grad_mu = T(2) * s_[v] * g1[v];
          store_valid(glp + j * I, k + v * W, I, g0[v]);
          store_valid(gls + j * I, k + v * W, I, T(2) * g2[v] - (MASK ? gu[v] : g0[v]));
          if (TIED)
            mu_sum[v] += grad_mu;
          else
            store_valid(gmu + j * I, k + v * W, I, grad_mu);
        }
      }
      for (int v = 0; v < kTileVecs; ++v) {
        if (TIED) store_valid(gmu, k + v * W, I, mu_sum[v]);
        for (int64_t b = 0; b < B; ++b)
          store_valid(gx + b * I, k + v * W, I, load<V>(gxw + b * Ip + k + v * W));
      }
    }
  }
}

template <typename T>
int forward_any(int64_t B, int64_t O, int64_t I, const T* x, const uint8_t* mask, const T* mu, int tied,
                const T* log_sigma, const T* log_pi, T* y, int nthreads) {
  try {
    const Operands<T> op(B, O, I, kRows, x, mask, mu, tied, log_sigma, log_pi, nthreads);
    if (mask)
      forward<T, true>(op, y, nthreads);
    else
      forward<T, false>(op, y, nthreads);
    return 0;
  } catch (const std::bad_alloc&) {
    return 1;
  }
}

template <typename T>
int backward_any(int64_t B, int64_t O, int64_t I, const T* x, const uint8_t* mask, const T* mu, int tied,
                 const T* log_sigma, const T* log_pi, const T* y, const T* g, T* gx, T* glp, T* gmu, T* gls,
                 int nthreads) {
  try {
    const Operands<T> op(B, O, I, 1, x, mask, mu, tied, log_sigma, log_pi, nthreads);
    if (mask && tied)
      backward<T, true, true>(op, y, g, gx, glp, gmu, gls, nthreads);
    else if (mask)
      backward<T, true, false>(op, y, g, gx, glp, gmu, gls, nthreads);
    else if (tied)
      backward<T, false, true>(op, y, g, gx, glp, gmu, gls, nthreads);
    else
      backward<T, false, false>(op, y, g, gx, glp, gmu, gls, nthreads);
    return 0;
  } catch (const std::bad_alloc&) {
    return 1;
  }
}

}  // namespace

// C entry points. Inputs are contiguous: x (B, I), mask (B, I) bytes or null, mu (O, I) or (I,) when
// tied, log_sigma and log_pi (O, I). forward writes y (B, O); backward reads y and its gradient g (B, O)
// and writes gx (B, I), glp, gls (O, I) and gmu (O, I), or (I,) when tied. Both return 0, or 1 when
// memory ran out.
extern "C" {
int ugmm_abi_version() { return 2; }

// The kernels' own vectorised exp over n floats (n a multiple of 16), reps times, on the calling thread: the
// exponential floor that benchmarks/kernel_limit.py compares the kernels with.
int ugmm_exp_f32(const float* in, float* out, int64_t n, int64_t reps) {
  typedef Vec<float>::V V;
  for (int64_t r = 0; r < reps; ++r) {
    const V nudge = splat<V>(float(r & 1) * 1e-7f);  // keeps the repetitions from being folded into one
    for (int64_t k = 0; k + 16 <= n; k += 16) store(out + k, vexp(load<V>(in + k) + nudge));
  }
  return 0;
}

int ugmm_forward_f32(int64_t B, int64_t O, int64_t I, const float* x, const uint8_t* mask,
                    const float* mu, int tied, const float* log_sigma, const float* log_pi, float* y,
                    int nthreads) {
  return forward_any<float>(B, O, I, x, mask, mu, tied, log_sigma, log_pi, y, nthreads);
}

int ugmm_backward_f32(int64_t B, int64_t O, int64_t I, const float* x, const uint8_t* mask,
                     const float* mu, int tied, const float* log_sigma, const float* log_pi,
                     const float* y, const float* g, float* gx, float* glp, float* gmu, float* gls,
                     int nthreads) {
  return backward_any<float>(B, O, I, x, mask, mu, tied, log_sigma, log_pi, y, g, gx, glp, gmu, gls,
                          nthreads);
}

int ugmm_forward_f64(int64_t B, int64_t O, int64_t I, const double* x, const uint8_t* mask,
                    const double* mu, int tied, const double* log_sigma, const double* log_pi, double* y,
                    int nthreads) {
  return forward_any<double>(B, O, I, x, mask, mu, tied, log_sigma, log_pi, y, nthreads);
}

int ugmm_backward_f64(int64_t B, int64_t O, int64_t I, const double* x, const uint8_t* mask,
                     const double* mu, int tied, const double* log_sigma, const double* log_pi,
                     const double* y, const double* g, double* gx, double* glp, double* gmu, double* gls,
                     int nthreads) {
  return backward_any<double>(B, O, I, x, mask, mu, tied, log_sigma, log_pi, y, g, gx, glp, gmu, gls,
                          nthreads);
}

}  // extern "C"
