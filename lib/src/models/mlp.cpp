#include "mnist/models/mlp.h"

#include <ATen/CPUFunctions.h>
#include <torch/torch.h>

#include "layers.h"
#include "mnist/core/runtime.h"

namespace mnist {
namespace {

constexpr int64_t kSplitBatch = 64;  // images from which a second thread pays (measured)

torch::nn::Sequential build_layers(const MLPOptions& o) {
  torch::nn::Sequential seq;
  seq->push_back(torch::nn::Flatten());  // [B, C, H, W] -> [B, C*H*W]
  layers::append_classifier(seq, o.in_features, o.hidden_sizes, o.activation, o.dropout,
                            o.num_classes);
  layers::initialise(seq, o.init);
  return seq;
}

// True when the first product in two halves of the images gives the whole product's bits with this
// BLAS (see exact_in_halves).
bool split_is_exact(int64_t b, const at::Tensor& weight_t) {
  const int64_t k = weight_t.size(0), n = weight_t.size(1);
  const std::string key =
      "mlp_forward " + std::to_string(b) + "x" + std::to_string(k) + "x" + std::to_string(n);
  return exact_in_halves(key, [&] {
    const auto a = probe_values({b, k}), w_t = probe_values({k, n}, 1.0);
    const auto bias = probe_values({n}, 2.0);
    const auto whole = at::cpu::addmm(bias, a, w_t);
    auto halves = at::empty_like(whole);
    for (const int64_t first : {int64_t{0}, b / 2}) {
      auto part = halves.narrow(0, first, first == 0 ? b / 2 : b - first);
      at::cpu::addmm_out(part, bias, a.narrow(0, first, part.size(0)), w_t);
    }
    return at::equal(whole, halves);
  });
}

}  // namespace

MLPImpl::MLPImpl(const MLPOptions& options)
    : layers_(register_module("layers", build_layers(options))) {
  if (options.activation == Activation::kRelu && options.dropout <= 0.0) {
    for (const auto& module : layers_->children()) {
      if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(module))
        plain_.emplace_back(linear);
    }
  }
}

at::Tensor MLPImpl::forward(const at::Tensor& images) {
  const bool no_grad = c10::InferenceMode::is_enabled() || !at::GradMode::is_enabled();
  if (no_grad && !plain_.empty() && !plain_paths() && images.is_cpu() &&
      images.scalar_type() == at::kFloat && plain_.front()->weight.is_cpu()) {
    return plain_forward(images);
  }
  return layers_->forward(images);
}

at::Tensor MLPImpl::plain_forward(const at::Tensor& images) const {
  const int64_t b = images.size(0);
  at::Tensor a = images.reshape({b, -1});  // Flatten
  for (size_t i = 0; i < plain_.size(); ++i) {
    const auto& linear = plain_[i];
    at::Tensor z = at::empty({b, linear->weight.size(0)}, a.options());
    const auto weight_t = linear->weight.t();
    if (i == 0 && b >= kSplitBatch && at::get_num_threads() > 1 && split_is_exact(b, weight_t)) {
      // Large batches: the first (largest) product in two halves of the images, one per thread.
      in_two_halves(b, [&](int64_t first, int64_t count) {
        auto part = z.narrow(0, first, count);
        at::cpu::addmm_out(part, linear->bias, a.narrow(0, first, count), weight_t);
      });
    } else {
      at::cpu::addmm_out(z, linear->bias, a, weight_t);  // nn::Linear
    }
    if (i + 1 < plain_.size()) at::cpu::relu_(z);  // nn::ReLU
    a = z;
  }
  return a;
}

}  // namespace mnist
