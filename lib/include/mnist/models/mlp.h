#pragma once
// The tutorial's multi-layer perceptron: Flatten -> [Linear -> activation -> Dropout] per hidden
// size
// -> Linear to the classes. It returns logits; how they become probabilities (softmax or the
// tutorial's sigmoid) is the output head's business (models/head.h).

#include <string>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "mnist/config/config.h"
#include "mnist/models/classifier.h"

namespace mnist {

struct MLPOptions {
  int64_t in_features = 784;                      // C * H * W of the input images
  std::vector<int64_t> hidden_sizes = {150, 50};  // one Linear + activation per entry
  int64_t num_classes = 10;
  Activation activation = Activation::kRelu;
  double dropout = 0.0;      // after each hidden activation; 0 = no Dropout layer
  Init init = Init::kTorch;  // kGlorot: Keras' Glorot-uniform weights, zero biases
};

class MLPImpl : public ClassifierImpl {
 public:
  explicit MLPImpl(const MLPOptions& options);
  /// Logits. Where no gradient is wanted (InferenceMode or NoGradGuard) a plain network on the CPU
  /// skips the module chain: LibTorch's CPU kernels are called directly, the same ones
  /// nn::Linear and nn::ReLU call, so the logits are the same bits.
  at::Tensor forward(const at::Tensor& images) override;

 private:
  at::Tensor plain_forward(const at::Tensor& images) const;

  // Registered as "layers": its parameters are checkpoint keys "layers.0.weight", ... (renaming is
  // a format change).
  torch::nn::Sequential layers_;
  // The Linear layers when the network is plain (ReLU activations, no Dropout):
  // logits = L_n(relu(... relu(L_1(flatten(x))))); empty otherwise.
  std::vector<torch::nn::Linear> plain_;
};

/// The module holder (torch::nn::ModuleHolder<MLPImpl>), as torch::nn's own modules have.
TORCH_MODULE(MLP);

}  // namespace mnist
