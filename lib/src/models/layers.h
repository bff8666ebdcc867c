#pragma once
// Building blocks shared by the models' constructors (internal to the library).

#include <string>

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>

namespace mnist::layers {

/// relu | tanh | sigmoid | gelu; UsageError naming model.activation otherwise.
torch::nn::AnyModule activation(const std::string& name);

/// Appends [Linear -> activation -> Dropout] per hidden width, then Linear to `num_classes`.
void append_classifier(torch::nn::Sequential& seq, int64_t in_features,
                       const std::vector<int64_t>& hidden_sizes, const std::string& activation,
                       double dropout, int64_t num_classes);

/// "torch" keeps LibTorch's initialisation; "glorot" (Keras') gives every Linear and Conv2d
/// Glorot-uniform weights and zero biases. UsageError naming model.init otherwise.
void initialise(torch::nn::Sequential& seq, const std::string& init);

}  // namespace mnist::layers
