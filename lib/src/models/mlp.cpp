#include "mnist/models/mlp.h"

#include <torch/torch.h>

#include "layers.h"

namespace mnist {
namespace {

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
    : layers_(register_module("layers", build_layers(options))) {}

at::Tensor MLPImpl::forward(const at::Tensor& images) {
  return layers_->forward(images);
}

}  // namespace mnist
