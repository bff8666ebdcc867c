#pragma once
// A convolutional network from config: blocks of [Conv2d ('same' padding) -> BatchNorm2d ->
// activation] x convs_per_block, each block followed by 2x2 pooling and dropout; then optionally a
// global average over each channel; then the same classifier head as the MLP
// (Flatten -> [Linear -> activation -> Dropout] per hidden size -> Linear to the classes).
// It returns logits, as every Classifier does.

#include <string>
#include <vector>

#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/pimpl.h>

#include "mnist/config/config.h"
#include "mnist/models/classifier.h"

namespace mnist {

struct CNNOptions {
  int64_t in_channels = 1;  // from the data set: 1 for gray images, 3 for colour
  int64_t height = 28;
  int64_t width = 28;
  std::vector<int64_t> channels = {32, 64};    // output channels of each block
  std::vector<int64_t> kernel_sizes = {3, 3};  // one odd kernel size per block
  int64_t convs_per_block = 1;
  Pool pool = Pool::kMax;
  bool batch_norm = true;
  double conv_dropout = 0.0;                  // after each block
  bool global_pool = false;                   // average over H and W before the head
  std::vector<int64_t> hidden_sizes = {128};  // the head's hidden widths
  Activation activation = Activation::kRelu;
  double dropout = 0.0;  // in the head
  int64_t num_classes = 10;
  Init init = Init::kTorch;
};

class CNNImpl : public ClassifierImpl {
 public:
  /// UsageError naming model.channels when its pooling blocks shrink the images below 1x1.
  explicit CNNImpl(const CNNOptions& options);
  at::Tensor forward(const at::Tensor& images) override;
  void set_channels_last(bool on) override;

 private:
  bool channels_last_ = false;
  // Checkpoint keys "features.N.*" and "head.N.*" (renaming is a format change).
  torch::nn::Sequential features_;
  torch::nn::Sequential head_;
};

/// The module holder (torch::nn::ModuleHolder<CNNImpl>), as torch::nn's own modules have.
TORCH_MODULE(CNN);

}  // namespace mnist
