#include "mnist/train/ema.h"

#include <algorithm>

#include <torch/torch.h>

namespace mnist {
namespace {

std::vector<at::Tensor> detached(const std::vector<at::Tensor>& tensors) {
  std::vector<at::Tensor> out;
  out.reserve(tensors.size());
  for (const auto& t : tensors) out.push_back(t.detach());
  return out;
}

}  // namespace

WeightAverage::WeightAverage(Classifier average, const ClassifierImpl& model, double decay)
    : average_(std::move(average)), decay_(decay) {
  torch::NoGradGuard no_grad;
  const auto mine = detached(average_->parameters());
  const auto params = model.parameters();
  for (size_t i = 0; i < params.size(); ++i) mine[i].copy_(params[i]);
  const auto my_buffers = average_->buffers();
  const auto buffers = model.buffers();
  for (size_t i = 0; i < buffers.size(); ++i) my_buffers[i].copy_(buffers[i]);
  average_->eval();
}

void WeightAverage::update(const ClassifierImpl& model) {
  torch::NoGradGuard no_grad;
  ++updates_;
  const double t = static_cast<double>(updates_);
  const double d = std::min(decay_, (1.0 + t) / (10.0 + t));
  // Fetched every time: loading a checkpoint replaces the tensors' storage, so cached handles
  // would go stale.
  auto mine = detached(average_->parameters());
  const auto params = detached(model.parameters());
  // One fused pass over all tensors rather than two small ops per tensor.
  at::_foreach_mul_(mine, d);
  at::_foreach_add_(mine, params, 1.0 - d);
  const auto my_buffers = average_->buffers();
  const auto buffers = model.buffers();
  for (size_t i = 0; i < buffers.size(); ++i) my_buffers[i].copy_(buffers[i]);
}

}  // namespace mnist
