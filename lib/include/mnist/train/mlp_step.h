#pragma once
// The forward and backward pass of a training step for a plain MLP, written out: each layer's
// matrix products and element-wise functions go into buffers allocated once, and the gradients are
// written straight into the parameters' .grad() tensors. No autograd graph is built, nothing is
// allocated per step.
//
// Each operation is the one autograd would run for the same network and loss (addmm forward; for
// the backward mm(grad^T, input) for weights, a column sum for biases, mm(grad, weight) for inputs,
// threshold_backward; the head's loss and gradient are models/head.h's HeadBackward), so the
// gradients are bit-identical to loss.backward()'s (a unit test checks this); only the overhead is
// gone. One exception, with train.own_kernels (default on): where the BLAS cannot share a large
// layer's products between two threads without changing their bits (OpenBLAS's AVX2 kernels), the
// first layer's forward and weight gradient are computed by core/small_gemm.h's kernels instead,
// split between the threads; those round differently from the BLAS (a few units in the last place)
// but never differently between runs or thread counts. A "plain MLP" is any model that is one
// Sequential of Flatten -> [Linear -> ReLU] ... -> Linear; the step finds its layers by that shape.

#include <array>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/config/config.h"
#include "mnist/models/classifier.h"
#include "mnist/models/head.h"
#include "mnist/train/step_engine.h"

namespace mnist {

class MLPStep final : public StepEngine {
 public:
  /// The step for `model` trained as `config` says, or nullptr when the written-out pass does not
  /// cover it (a CNN, dropout, an activation other than ReLU, label smoothing, train.fast_step
  /// off, a model not on the CPU: the step calls LibTorch's CPU kernels directly).
  static std::unique_ptr<MLPStep> create(const Config& config, Classifier model, int64_t max_batch);

  /// Forward and backward for float images [B, C, H, W] (B <= max_batch) and labels int64 [B]:
  /// sets every parameter's gradient (overwriting it) and returns {logits [B, K], mean loss []}.
  /// The returned tensors are views of internal buffers, valid until the next call.
  std::pair<at::Tensor, at::Tensor> forward_backward(const at::Tensor& images,
                                                     const at::Tensor& labels) override;

  /// Its split products are bit-exact (runtime.h's exact_in_halves decides where to split the
  /// BLAS's products; the own kernels are exact at any cut by construction).
  bool thread_count_free() const override { return true; }

  /// How a layer's forward and weight-gradient products are computed for a batch size.
  enum class Products {
    kWhole,       // the BLAS, whole, on one thread
    kBlasHalves,  // the BLAS, by halves of the features on two threads (exact on this BLAS)
    kOwnHalves,   // small_gemm's kernels, by halves of the features (one or two threads)
  };
  /// The choice for the layer `index` at batch size `batch` (for tests and the profile).
  Products products(size_t index, int64_t batch);

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
    std::vector<Products> products;  // per layer
  };
  MLPStep() = default;
  const Views& views(int64_t batch);

  std::vector<Layer> layers_;
  std::optional<HeadBackward> head_;
  int64_t max_batch_ = 0;
  bool own_kernels_ = false;  // train.own_kernels, not MNIST_PLAIN, and the CPU has AVX2 + FMA
  Views full_, partial_;      // for full batches and for the epoch's last one
};

}  // namespace mnist
