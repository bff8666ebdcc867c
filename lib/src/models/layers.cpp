#include "layers.h"

#include <torch/torch.h>

namespace mnist::layers {

torch::nn::AnyModule activation(Activation kind) {
  switch (kind) {
    case Activation::kTanh:
      return torch::nn::AnyModule(torch::nn::Tanh());
    case Activation::kSigmoid:
      return torch::nn::AnyModule(torch::nn::Sigmoid());
    case Activation::kGelu:
      return torch::nn::AnyModule(torch::nn::GELU());
    case Activation::kRelu:
      break;
  }
  return torch::nn::AnyModule(torch::nn::ReLU());
}

void append_classifier(torch::nn::Sequential& seq, int64_t in_features,
                       const std::vector<int64_t>& hidden_sizes, Activation activation_kind,
                       double dropout, int64_t num_classes) {
  int64_t width = in_features;
  for (const int64_t hidden : hidden_sizes) {
    seq->push_back(torch::nn::Linear(width, hidden));  // [B, width] -> [B, hidden]
    seq->push_back(activation(activation_kind));
    if (dropout > 0.0) seq->push_back(torch::nn::Dropout(dropout));
    width = hidden;
  }
  seq->push_back(torch::nn::Linear(width, num_classes));  // [B, width] -> [B, classes] logits
}

void initialise(torch::nn::Sequential& seq, Init init) {
  if (init == Init::kTorch) return;
  torch::NoGradGuard no_grad;
  for (auto& module : seq->modules(/*include_self=*/false)) {
    if (auto* linear = module->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_uniform_(linear->weight);
      torch::nn::init::zeros_(linear->bias);
    } else if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::xavier_uniform_(conv->weight);
      if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
    }
  }
}

}  // namespace mnist::layers
