#pragma once
// What makes N ranks train one model (LibTorch has no C++ DistributedDataParallel): the same
// starting weights everywhere, gradients averaged over the ranks before every optimiser step, and
// the batch-norm statistics made equal before the model is evaluated or saved.

#include <vector>

#include <torch/optim/optimizer.h>

#include "mnist/dist/communicator.h"
#include "mnist/models/classifier.h"

namespace mnist {

/// Overwrites the parameters and buffers of `model` with rank 0's.
void broadcast_model(const Communicator& comm, ClassifierImpl& model);

/// Replaces every floating-point buffer of `model` (batch norm's running mean and variance) by its
/// mean over the ranks. Batch statistics during training stay per rank, as in PyTorch's DDP
/// without SyncBatchNorm.
void average_buffers(const Communicator& comm, ClassifierImpl& model);

/// Sums the ranks' gradients, each weighted by its rank's share of the step's samples, so that the
/// result is the gradient of the mean loss over the whole global batch. With a FusedAdam the
/// gradients already live in one flat buffer, reduced in one call; for other optimisers they are
/// copied into one flat buffer and back (as DDP's buckets do). A no-op in a world of one.
class GradientAverager {
 public:
  GradientAverager(const Communicator& comm, torch::optim::Optimizer& optimizer);
  /// `share`: this rank's samples in the step / all ranks' samples in the step.
  void operator()(double share);

 private:
  const Communicator& comm_;
  torch::optim::Optimizer& optimizer_;
  std::vector<at::Tensor> params_;
  at::Tensor flat_;  // for optimisers other than FusedAdam
};

}  // namespace mnist
