#pragma once
// The tutorial's multi-layer perceptron: Flatten -> [Linear -> activation -> Dropout] per hidden
// size
// -> Linear to the classes. It returns logits; how they become probabilities (softmax or the
// tutorial's sigmoid) is the output head's business (train/loss.h).

#include <string>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "mnist/models/classifier.h"

namespace mnist {

struct MLPOptions {
  int64_t in_features = 784;                      // C * H * W of the input images
  std::vector<int64_t> hidden_sizes = {150, 50};  // one Linear + activation per entry
  int64_t num_classes = 10;
  std::string activation = "relu";  // relu | tanh | sigmoid | gelu
  double dropout = 0.0;             // after each hidden activation; 0 = no Dropout layer
  std::string init = "torch";       // torch | glorot (Keras: Glorot-uniform weights, zero bias)
};

class MLPImpl : public ClassifierImpl {
 public:
  explicit MLPImpl(const MLPOptions& options);
  at::Tensor forward(const at::Tensor& images) override;

 private:
  // Registered as "layers": its parameters are checkpoint keys "layers.0.weight", ... (renaming is
  // a format change).
  torch::nn::Sequential layers_;
};

/// The module holder (torch::nn::ModuleHolder<MLPImpl>), as torch::nn's own modules have.
TORCH_MODULE(MLP);

}  // namespace mnist
