#pragma once
// What every model of this project is: a module from images to class logits. Apps and the training
// loop hold models through this base, so a new architecture needs only a new module and a factory
// case.

#include <memory>

#include <torch/nn/module.h>

namespace mnist {

class ClassifierImpl : public torch::nn::Module {
 public:
  /// float [B, C, H, W] in [0, 1] (see to_model_input) -> logits [B, num_classes].
  virtual at::Tensor forward(const at::Tensor& images) = 0;
};

using Classifier = std::shared_ptr<ClassifierImpl>;

}  // namespace mnist
