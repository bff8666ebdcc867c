#pragma once
// One training step's forward and backward pass, behind one interface: autograd for any model, or
// the written-out pass of a plain MLP (train/mlp_step.h), which gives the same bits without
// autograd's overhead. The trainer calls the engine, then averages the gradients over the ranks and
// steps the optimiser; it does not know which engine it has.

#include <memory>
#include <utility>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>

#include "mnist/config/config.h"
#include "mnist/models/classifier.h"

namespace mnist {

class StepEngine {
 public:
  virtual ~StepEngine() = default;
  /// Forward and backward for float images [B, C, H, W] and int64 labels [B]: sets (overwrites)
  /// every parameter's gradient and returns {logits [B, K], mean loss []}.
  virtual std::pair<at::Tensor, at::Tensor> forward_backward(const at::Tensor& images,
                                                             const at::Tensor& labels) = 0;
  /// True when the results do not depend on the number of intra-op threads, so that the thread
  /// count may follow the machine's load (train/thread_governor.h).
  virtual bool thread_count_free() const = 0;
};

/// True when a CNN trains in channels-last (NHWC) memory order: `train.channels_last`, on the CPU,
/// and plain_paths() off. oneDNN's convolutions and LibTorch's batch norm, ReLU and pooling then
/// run in that order, which they do faster than in NCHW on the CPU; the results differ from NCHW's
/// in rounding (reproducibly).
bool uses_channels_last(const Config& config, c10::Device device);

/// The written-out step when it covers `config` and `model` (MLPStep::create: batches of up to
/// `max_batch`) and core/runtime.h's plain_paths() is off, else autograd, which zeroes the
/// gradients through `optimizer` (kept by reference: it must outlive the engine).
std::unique_ptr<StepEngine> make_step_engine(const Config& config, Classifier model,
                                             torch::optim::Optimizer& optimizer, int64_t max_batch);

}  // namespace mnist
