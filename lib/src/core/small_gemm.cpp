#include "mnist/core/small_gemm.h"

#include <cmath>
#include <stdexcept>
#include <type_traits>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define MNIST_SMALL_GEMM_X86 1
#endif

// Compiled with -ffp-contract=off (CMakeLists): the compiler adds no fused multiply-adds of its
// own, so the order written here is the order computed, on every compiler that builds it.
namespace mnist::small_gemm {

#ifdef MNIST_SMALL_GEMM_X86
namespace {

#define MNIST_AVX2 __attribute__((target("avx2,fma")))

// Lanes (0+4, 1+5, 2+6, 3+7), then (01 + 23 halves), then the last pair: a fixed tree.
MNIST_AVX2 inline float lane_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// R rows of a times C rows of w (the forward's dot products), over all k. Every element's order
// is the one in small_gemm.h whatever R and C are, so tiles of any size give the same bits.
template <int R, int C>
MNIST_AVX2 void forward_tile(const float* a, int64_t lda, const float* w, int64_t ldw,
                             const float* bias, float* out, int64_t ldo, int64_t k) {
  __m256 acc[R][C];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) acc[r][c] = _mm256_setzero_ps();
  }
  int64_t p = 0;
  for (; p + 8 <= k; p += 8) {
    __m256 x[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x[r] = _mm256_loadu_ps(a + r * lda + p);
#pragma GCC unroll 4
    for (int c = 0; c < C; ++c) {
      const __m256 wv = _mm256_loadu_ps(w + c * ldw + p);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] = _mm256_fmadd_ps(x[r], wv, acc[r][c]);
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      float s = lane_sum(acc[r][c]);
      for (int64_t q = p; q < k; ++q) s = std::fma(a[r * lda + q], w[c * ldw + q], s);
      out[r * ldo + c] = bias[c] + s;
    }
  }
}

template <int C>
MNIST_AVX2 void forward_features(const float* a, int64_t lda, const float* w, int64_t ldw,
                                 const float* bias, float* out, int64_t ldo, int64_t m, int64_t k) {
  constexpr int kRows = 3;  // 3 x 4 accumulators + 3 rows of a + 1 of w: the 16 registers
  int64_t i = 0;
  for (; i + kRows <= m; i += kRows)
    forward_tile<kRows, C>(a + i * lda, lda, w, ldw, bias, out + i * ldo, ldo, k);
  if (m - i == 2) forward_tile<2, C>(a + i * lda, lda, w, ldw, bias, out + i * ldo, ldo, k);
  if (m - i == 1) forward_tile<1, C>(a + i * lda, lda, w, ldw, bias, out + i * ldo, ldo, k);
}

// C features times V vectors of 8 columns of the weight gradient: one chain over the rows.
template <int C, int V>
MNIST_AVX2 void grad_tile(const float* g, int64_t ldg, const float* a, int64_t lda, float* gw,
                          int64_t ldgw, int64_t m) {
  __m256 acc[C][V];
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) acc[c][v] = _mm256_setzero_ps();
  }
  for (int64_t i = 0; i < m; ++i) {
    __m256 x[V];
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) x[v] = _mm256_loadu_ps(a + i * lda + 8 * v);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const __m256 gb = _mm256_broadcast_ss(g + i * ldg + c);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) acc[c][v] = _mm256_fmadd_ps(gb, x[v], acc[c][v]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
#pragma GCC unroll 2
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(gw + c * ldgw + 8 * v, acc[c][v]);
  }
}

// The same chain for single columns (k % 8 of them): fma(g, a, 0) is the vector's first step too.
MNIST_AVX2 void grad_column(const float* g, int64_t ldg, const float* a, int64_t lda, float* gw,
                            int64_t ldgw, int64_t m, int64_t features) {
  for (int64_t c = 0; c < features; ++c) {
    float s = 0.0f;
    for (int64_t i = 0; i < m; ++i) s = std::fma(g[i * ldg + c], a[i * lda], s);
    gw[c * ldgw] = s;
  }
}

constexpr int kGradFeatures = 6;  // 6 x 2 accumulators + 2 vectors of a + 1 broadcast

template <int C>
MNIST_AVX2 void grad_features(const float* g, int64_t ldg, const float* a, int64_t lda, float* gw,
                              int64_t ldgw, int64_t m, int64_t k) {
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) grad_tile<C, 2>(g, ldg, a + p, lda, gw + p, ldgw, m);
  if (p + 8 <= k) {
    grad_tile<C, 1>(g, ldg, a + p, lda, gw + p, ldgw, m);
    p += 8;
  }
  for (; p < k; ++p) grad_column(g, ldg, a + p, lda, gw + p, ldgw, m, C);
}

// Calls tile(std::integral_constant<int, C>{}, j) for the tiles covering columns 0 .. count-1:
// C = kMax from j = 0 on, then one narrower tile for the count % kMax left over.
template <int kMax, class Tile>
MNIST_AVX2 void in_tiles(int64_t count, const Tile& tile) {
  int64_t j = 0;
  for (; j + kMax <= count; j += kMax) tile(std::integral_constant<int, kMax>{}, j);
  if constexpr (kMax > 1) {
    if (count > j)
      in_tiles<kMax - 1>(count - j, [&](auto width, int64_t i) { tile(width, j + i); });
  }
}

}  // namespace

bool available() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

MNIST_AVX2 void linear_forward(const float* a, int64_t lda, const float* w, int64_t ldw,
                               const float* bias, float* out, int64_t ldo, int64_t m, int64_t k,
                               int64_t j_begin, int64_t j_end) {
  in_tiles<4>(j_end - j_begin, [&](auto width, int64_t j) {
    const int64_t f = j_begin + j;  // the tile's first feature
    forward_features<decltype(width)::value>(a, lda, w + f * ldw, ldw, bias + f, out + f, ldo, m,
                                             k);
  });
}

MNIST_AVX2 void linear_weight_grad(const float* g, int64_t ldg, const float* a, int64_t lda,
                                   float* gw, int64_t ldgw, int64_t m, int64_t k, int64_t j_begin,
                                   int64_t j_end) {
  in_tiles<kGradFeatures>(j_end - j_begin, [&](auto width, int64_t j) {
    const int64_t f = j_begin + j;
    grad_features<decltype(width)::value>(g + f, ldg, a, lda, gw + f * ldgw, ldgw, m, k);
  });
}

#else  // not x86-64 with GCC or Clang: no kernels; callers keep the BLAS

bool available() {
  return false;
}

void linear_forward(const float*, int64_t, const float*, int64_t, const float*, float*, int64_t,
                    int64_t, int64_t, int64_t, int64_t) {
  throw std::logic_error("small_gemm::linear_forward: not available on this CPU");
}

void linear_weight_grad(const float*, int64_t, const float*, int64_t, float*, int64_t, int64_t,
                        int64_t, int64_t, int64_t) {
  throw std::logic_error("small_gemm::linear_weight_grad: not available on this CPU");
}

#endif

}  // namespace mnist::small_gemm
