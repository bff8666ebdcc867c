#include "mnist/core/runtime.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include <dlfcn.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "mnist/core/error.h"

namespace mnist {

bool plain_paths() {
  static const bool plain = [] {
    const char* value = std::getenv("MNIST_PLAIN");
    return value != nullptr && std::string(value) != "" && std::string(value) != "0";
  }();
  return plain;
}

void configure_runtime(int threads, int blas_threads) {
#ifdef __GLIBC__
  if (!plain_paths()) {
    // glibc returns blocks over 128 KiB to the kernel on every free by default; a training loop
    // that allocates such blocks each step then page-faults millions of times. Keep them in the
    // heap.
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
  }
#endif
  torch::set_num_threads(threads);
  // OpenBLAS (behind LibTorch's CPU matmuls on Debian) starts its own threads whatever torch says;
  // it is found at run time so that any BLAS, or none, works.
  using SetThreads = void (*)(int);
  if (auto* set_blas_threads =
          reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    set_blas_threads(blas_threads);
  }
  static bool interop_set = false;  // LibTorch allows setting inter-op threads once per process
  if (!interop_set) {
    interop_set = true;
    try {
      torch::set_num_interop_threads(1);
    } catch (const c10::Error&) {
      // already started by an earlier parallel call: keep LibTorch's choice
    }
  }
}

void in_two_halves(int64_t n, const std::function<void(int64_t, int64_t)>& f) {
  at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    c10::InferenceMode guard;
    for (int64_t half = begin; half < end; ++half) {
      const int64_t first = half * (n / 2);
      f(first, half == 0 ? n / 2 : n - first);
    }
  });
}

bool exact_in_halves(const std::string& key, const std::function<bool()>& probe) {
  static std::mutex mutex;
  static std::map<std::string, bool> known;
  std::lock_guard<std::mutex> lock(mutex);
  const auto it = known.find(key);
  if (it != known.end()) return it->second;
  c10::InferenceMode guard;
  const bool exact = probe();
  known.emplace(key, exact);
  return exact;
}

at::Tensor probe_values(at::IntArrayRef sizes, double phase) {
  int64_t n = 1;
  for (const int64_t s : sizes) n *= s;
  return at::sin(at::arange(n, at::kFloat) * 0.7311 + phase).reshape(sizes);
}

c10::Device resolve_device(const std::string& name, const std::string& key) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  const bool cuda = torch::cuda::is_available();
  if (name == "cuda") {
    if (!cuda)
      throw UsageError(key +
                       ": \"cuda\" asked for, but this LibTorch has no CUDA or no GPU is visible");
    return c10::Device(c10::kCUDA, 0);
  }
  if (name == "auto") return cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  throw UsageError(key + ": unknown device \"" + name + "\" (auto, cpu or cuda)");
}

std::string torch_version() {
  return TORCH_VERSION;
}

}  // namespace mnist
