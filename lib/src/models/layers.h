#pragma once
// Building blocks shared by the models' constructors (internal to the library).

#include <vector>

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>

#include "mnist/config/config.h"

namespace mnist::layers {

/// The activation module of `kind`.
torch::nn::AnyModule activation(Activation kind);

/// Appends [Linear -> activation -> Dropout] per hidden width, then Linear to `num_classes`.
void append_classifier(torch::nn::Sequential& seq, int64_t in_features,
                       const std::vector<int64_t>& hidden_sizes, Activation activation,
                       double dropout, int64_t num_classes);

/// Init::kTorch keeps LibTorch's initialisation; Init::kGlorot (Keras') gives every Linear and
/// Conv2d Glorot-uniform weights and zero biases.
void initialise(torch::nn::Sequential& seq, Init init);

}  // namespace mnist::layers
