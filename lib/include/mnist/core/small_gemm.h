#pragma once

#include <cstdint>

/// The project's own matrix products for a fully connected layer's two large products, written so
/// that every output element is summed in one fixed order that does not depend on where the output
/// is cut: computing any range of features (or rows) on its own gives the whole product's bits.
/// That lets two threads share a layer without making the result depend on the thread count, on
/// BLAS kernels that cannot promise it (OpenBLAS's AVX2 kernels round a narrower product
/// differently). AVX2 with FMA only; available() says whether this CPU has it.
///
/// The order, per output element: eight lane sums over k (lane l takes k = l, l + 8, ...), each a
/// chain of fused multiply-adds, added pairwise in a fixed tree; then the k % 8 trailing terms by
/// fused multiply-add (linear_forward). For linear_weight_grad, one chain of fused multiply-adds
/// over the rows i = 0 .. m-1. Not the BLAS's order: results differ from at::addmm's in rounding
/// (a few units in the last place), never between runs, thread counts or cut points.
namespace mnist::small_gemm {

/// True when this CPU runs the kernels (AVX2 and FMA).
bool available();

/// out[i * ldo + j] = bias[j] + sum_p a[i * lda + p] * w[j * ldw + p], for rows i in [0, m) and
/// features j in [j_begin, j_end) (nn::Linear's forward: a [m, k], weight [n, k]). Requires
/// available().
void linear_forward(const float* a, int64_t lda, const float* w, int64_t ldw, const float* bias,
                    float* out, int64_t ldo, int64_t m, int64_t k, int64_t j_begin, int64_t j_end);

/// gw[j * ldgw + p] = sum_i g[i * ldg + j] * a[i * lda + p] for features j in [j_begin, j_end)
/// and p in [0, k) (the weight's gradient, g^T a: g [m, n], a [m, k]). Requires available().
void linear_weight_grad(const float* g, int64_t ldg, const float* a, int64_t lda, float* gw,
                        int64_t ldgw, int64_t m, int64_t k, int64_t j_begin, int64_t j_end);

}  // namespace mnist::small_gemm
