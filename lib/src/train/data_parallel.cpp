#include "mnist/train/data_parallel.h"

#include <torch/torch.h>

#include "mnist/train/fused_adam.h"

namespace mnist {

void broadcast_model(const Communicator& comm, ClassifierImpl& model) {
  if (!comm.distributed()) return;
  torch::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors;
  for (const auto& p : model.parameters()) tensors.push_back(p.detach());
  for (const auto& b : model.buffers()) tensors.push_back(b.detach());
  comm.broadcast(tensors, "sharing rank 0's weights");
}

void average_buffers(const Communicator& comm, ClassifierImpl& model) {
  if (!comm.distributed()) return;
  torch::NoGradGuard no_grad;
  for (auto& b : model.buffers()) {
    if (!b.is_floating_point()) continue;  // num_batches_tracked: the same on every rank
    at::Tensor t = b.detach();
    comm.all_reduce_sum(t, "averaging batch-norm statistics");
    t.div_(static_cast<double>(comm.size()));
  }
}

GradientAverager::GradientAverager(const Communicator& comm, torch::optim::Optimizer& optimizer)
    : comm_(comm), optimizer_(optimizer) {
  if (!comm_.distributed() || dynamic_cast<FusedAdam*>(&optimizer_) != nullptr) return;
  int64_t total = 0;
  for (const auto& group : optimizer_.param_groups()) {
    for (const auto& p : group.params()) {
      params_.push_back(p);
      total += p.numel();
    }
  }
  flat_ = torch::zeros({total}, params_.front().options().requires_grad(false));
}

void GradientAverager::operator()(double share) {
  if (!comm_.distributed()) return;
  torch::NoGradGuard no_grad;
  if (auto* fused = dynamic_cast<FusedAdam*>(&optimizer_)) {
    at::Tensor flat = fused->flat_gradients();
    flat.mul_(share);
    comm_.all_reduce_sum(flat, "averaging gradients");
    return;
  }
  int64_t offset = 0;
  for (const auto& p : params_) {
    auto part = flat_.narrow(0, offset, p.numel());
    if (p.grad().defined()) {
      part.copy_(p.grad().reshape({-1}));
    } else {
      part.zero_();
    }
    offset += p.numel();
  }
  flat_.mul_(share);
  comm_.all_reduce_sum(flat_, "averaging gradients");
  offset = 0;
  for (auto& p : params_) {
    const auto part = flat_.narrow(0, offset, p.numel()).view(p.sizes());
    if (p.grad().defined()) {
      p.mutable_grad().copy_(part);
    } else {
      p.mutable_grad() = part.clone();
    }
    offset += p.numel();
  }
}

}  // namespace mnist
