#pragma once
// Process-wide settings that decide speed: threads, the allocator, and which device computes.

#include <cstdint>
#include <functional>
#include <string>

#include <c10/core/Device.h>

namespace mnist {

/// Sets LibTorch's intra-op threads to `threads` (>= 1), OpenBLAS' threads to `blas_threads`, one
/// inter-op thread, and raises glibc's mmap/trim thresholds so that the training loop's buffers are
/// reused instead of being returned to the kernel on every free (which costs millions of page
/// faults per run).
void configure_runtime(int threads, int blas_threads = 1);

/// Calls f(first, count) for the two halves of the rows 0..n-1 ([0, n/2) and [n/2, n)), on two
/// intra-op threads when LibTorch has them, each under InferenceMode (the mode is per thread; the
/// callers compute without autograd). For splitting one large product into two.
void in_two_halves(int64_t n, const std::function<void(int64_t first, int64_t count)>& f);

/// "cpu" -> CPU; "cuda" -> the first GPU, or UsageError naming `key` if LibTorch has no usable
/// CUDA; "auto" -> CUDA when available, else CPU.
c10::Device resolve_device(const std::string& name, const std::string& key = "device");

/// LibTorch's version, e.g. "1.13.1".
std::string torch_version();

}  // namespace mnist
