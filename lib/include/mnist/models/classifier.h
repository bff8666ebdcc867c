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
  /// Convolutional models: weights and activations in channels-last (NHWC) memory order from the
  /// first layer on, which the CPU's convolution, batch-norm and pooling kernels run faster. A
  /// setting of this process (the values and the files are the same); other models ignore it.
  virtual void set_channels_last(bool on) { (void)on; }
};

using Classifier = std::shared_ptr<ClassifierImpl>;

}  // namespace mnist
