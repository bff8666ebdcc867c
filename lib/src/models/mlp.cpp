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

}  // namespace

MLPImpl::MLPImpl(const MLPOptions& options)
    : layers_(register_module("layers", build_layers(options))) {
  if (options.activation == "relu" && options.dropout <= 0.0) {
    for (const auto& module : layers_->children()) {
      if (auto linear = std::dynamic_pointer_cast<torch::nn::LinearImpl>(module))
        plain_.emplace_back(linear);
    }
  }
}

at::Tensor MLPImpl::forward(const at::Tensor& images) {
  const bool no_grad = c10::InferenceMode::is_enabled() || !at::GradMode::is_enabled();
  if (no_grad && !plain_.empty() && images.is_cpu() && images.scalar_type() == at::kFloat &&
      plain_.front()->weight.is_cpu()) {
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
    if (i == 0 && b >= kSplitBatch && at::get_num_threads() > 1) {
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
