#pragma once
// Process-wide settings that decide speed: threads, the allocator, and which device computes.

#include <cstdint>
#include <functional>
#include <string>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace mnist {

/// The one switch for every fast path: true when the environment sets MNIST_PLAIN to anything but
/// "" or "0" (read once). Each speed path then takes its plain counterpart, which computes the same
/// values the straightforward way: the written-out MLP training step (autograd instead),
/// FusedAdam (torch::optim::Adam), the MLP's direct inference kernels (the module chain), the
/// batch gatherer's loop (index_select + to_model_input), the epoch meter's host-side sums (tensor
/// sums), and the allocator thresholds (glibc's defaults). CI runs the training tests both ways;
/// results must not differ.
bool plain_paths();

/// Sets LibTorch's intra-op threads to `threads` (>= 1), OpenBLAS' threads to `blas_threads`, one
/// inter-op thread, and raises glibc's mmap/trim thresholds so that the training loop's buffers are
/// reused instead of being returned to the kernel on every free (which costs millions of page
/// faults per run; not with plain_paths()).
void configure_runtime(int threads, int blas_threads = 1);

/// Calls f(first, count) for the two halves of the rows 0..n-1 ([0, n/2) and [n/2, n)), on two
/// intra-op threads when LibTorch has them, each under InferenceMode (the mode is per thread; the
/// callers compute without autograd). For splitting one large product into two.
void in_two_halves(int64_t n, const std::function<void(int64_t first, int64_t count)>& f);

/// True when products computed in two halves (as in_two_halves splits them) give the same bits as
/// one whole product, for the shapes named by `key`. Some BLAS kernels sum a narrower product in
/// another order (OpenBLAS with OPENBLAS_CORETYPE=Haswell, which some machines set, does), and the
/// split must never change a result. `probe` computes both ways on sample data and says whether
/// they agree; it runs once per key (thread-safe) and its answer is remembered.
bool exact_in_halves(const std::string& key, const std::function<bool()>& probe);

/// Deterministic sample values in [-1, 1] of `sizes` (float, CPU) for such probes: no random
/// generator is touched, so probing never changes a run's random numbers.
at::Tensor probe_values(at::IntArrayRef sizes, double phase = 0.0);

/// "cpu" -> CPU; "cuda" -> the first GPU, or UsageError naming `key` if LibTorch has no usable
/// CUDA; "auto" -> CUDA when available, else CPU.
c10::Device resolve_device(const std::string& name, const std::string& key = "device");

/// LibTorch's version, e.g. "1.13.1".
std::string torch_version();

}  // namespace mnist
