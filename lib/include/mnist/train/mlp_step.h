#pragma once
// The forward and backward pass of a training step for a plain MLP, written out: each layer's
// matrix products and element-wise functions go into buffers allocated once, and the gradients are
// written straight into the parameters' .grad() tensors. No autograd graph is built, nothing is
// allocated per step.
//
// Each operation is the one autograd would run for the same network and loss (addmm forward; for
// the backward mm(grad^T, input) for weights, a column sum for biases, mm(grad, weight) for inputs,
// threshold_backward, sigmoid_backward, clamp's mask, log's division, log_softmax's and nll_loss's
// own backward functions), so the gradients are bit-identical to loss.backward()'s (a unit test
// checks this); only the overhead is gone.

#include <array>
#include <memory>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/config/config.h"
#include "mnist/models/classifier.h"

namespace mnist {

class MLPStep {
 public:
  /// The step for `model` trained as `config` says, or nullptr when the written-out pass does not
  /// cover it (a CNN, dropout, an activation other than ReLU, label smoothing, train.fast_step
  /// off, a model not on the CPU: the step calls LibTorch's CPU kernels directly).
  static std::unique_ptr<MLPStep> create(const Config& config, Classifier model, int64_t max_batch);

  /// Forward and backward for float images [B, C, H, W] (B <= max_batch) and labels int64 [B]:
  /// sets every parameter's gradient (overwriting it) and returns {logits [B, K], mean loss []}.
  /// The returned tensors are views of internal buffers, valid until the next call.
  std::pair<at::Tensor, at::Tensor> forward_backward(const at::Tensor& images,
                                                     const at::Tensor& labels);

 private:
  struct Layer {
    at::Tensor weight, bias;  // the module's parameters
    at::Tensor out;           // [max_batch, out] pre-activation, then ReLU applied in place
    at::Tensor grad_out;      // [max_batch, out] gradient of the pre-activation
    at::Tensor grad_in;       // [max_batch, in] gradient of the input (not for the first layer)
    std::array<at::Tensor, 2> half_out;  // [max_batch, out/2 and the rest]: split forward halves
  };
  // The buffers' first `batch` rows, made once per batch size (views cost as much as small
  // kernels).
  struct Views {
    int64_t batch = -1;
    std::vector<at::Tensor> out, grad_out, grad_in;  // per layer
    std::vector<std::array<at::Tensor, 2>> half_out;
    std::vector<bool> halves_exact;  // per layer: splitting keeps the bits (halves_exact())
    at::Tensor sig, clamped, scores, log_probs, grad_a, grad_b, mask;
  };
  MLPStep() = default;
  const Views& views(int64_t batch);

  std::vector<Layer> layers_;
  bool sigmoid_head_ = false;
  int64_t max_batch_ = 0;
  // The head's buffers [max_batch, K].
  at::Tensor sig_, clamped_, log_scores_, log_probs_, mask_, grad_a_, grad_b_;
  at::Tensor one_, loss_, total_weight_;
  Views full_, partial_;  // for full batches and for the epoch's last one
};

}  // namespace mnist
