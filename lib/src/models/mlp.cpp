#include "mnist/models/mlp.h"

#include <torch/torch.h>

#include "mnist/core/error.h"

namespace mnist {
namespace {

torch::nn::AnyModule make_activation(const std::string& name) {
  if (name == "relu") return torch::nn::AnyModule(torch::nn::ReLU());
  if (name == "tanh") return torch::nn::AnyModule(torch::nn::Tanh());
  if (name == "sigmoid") return torch::nn::AnyModule(torch::nn::Sigmoid());
  if (name == "gelu") return torch::nn::AnyModule(torch::nn::GELU());
  throw UsageError("model.activation: unknown activation \"" + name + "\"");
}

torch::nn::Sequential build_layers(const MLPOptions& o) {
  torch::nn::Sequential seq;
  seq->push_back(torch::nn::Flatten());  // [B, C, H, W] -> [B, C*H*W]
  int64_t width = o.in_features;
  for (const int64_t hidden : o.hidden_sizes) {
    seq->push_back(torch::nn::Linear(width, hidden));  // [B, width] -> [B, hidden]
    seq->push_back(make_activation(o.activation));
    if (o.dropout > 0.0) seq->push_back(torch::nn::Dropout(o.dropout));
    width = hidden;
  }
  seq->push_back(torch::nn::Linear(width, o.num_classes));  // [B, width] -> [B, classes] logits
  if (o.init == "glorot") {
    torch::NoGradGuard no_grad;
    for (auto& module : seq->modules(/*include_self=*/false)) {
      if (auto* linear = module->as<torch::nn::Linear>()) {
        torch::nn::init::xavier_uniform_(linear->weight);
        torch::nn::init::zeros_(linear->bias);
      }
    }
  } else if (o.init != "torch") {
    throw UsageError("model.init: unknown initialisation \"" + o.init + "\"");
  }
  return seq;
}

}  // namespace

MLPImpl::MLPImpl(const MLPOptions& options)
    : layers_(register_module("layers", build_layers(options))) {}

at::Tensor MLPImpl::forward(const at::Tensor& images) {
  return layers_->forward(images);
}

}  // namespace mnist
