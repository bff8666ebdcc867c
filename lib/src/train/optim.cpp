#include "mnist/train/optim.h"

#include <cmath>

#include <torch/torch.h>

#include "mnist/core/error.h"

namespace mnist {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimConfig& o,
                                                        const std::vector<at::Tensor>& parameters) {
  if (o.name == "adam" || o.name == "adamw") {
    const auto betas = std::make_tuple(o.beta1, o.beta2);
    if (o.name == "adam") {
      return std::make_unique<torch::optim::Adam>(
          parameters,
          torch::optim::AdamOptions(o.lr).betas(betas).eps(o.eps).weight_decay(o.weight_decay));
    }
    return std::make_unique<torch::optim::AdamW>(
        parameters,
        torch::optim::AdamWOptions(o.lr).betas(betas).eps(o.eps).weight_decay(o.weight_decay));
  }
  if (o.name == "sgd") {
    if (o.nesterov && o.momentum <= 0.0)
      throw UsageError("optim.nesterov: needs optim.momentum > 0");
    return std::make_unique<torch::optim::SGD>(parameters, torch::optim::SGDOptions(o.lr)
                                                               .momentum(o.momentum)
                                                               .nesterov(o.nesterov)
                                                               .weight_decay(o.weight_decay));
  }
  throw UsageError("optim.name: unknown optimiser \"" + o.name + "\"");
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

LrSchedule::LrSchedule(const OptimConfig& optim, const ScheduleConfig& schedule,
                       int64_t steps_per_epoch, int64_t epochs)
    : base_lr_(optim.lr),
      schedule_(schedule),
      steps_per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      total_steps_(std::max<int64_t>(1, steps_per_epoch * epochs)) {
  if (schedule_.name != "constant" && schedule_.name != "step" && schedule_.name != "cosine") {
    throw UsageError("schedule.name: unknown schedule \"" + schedule_.name + "\"");
  }
}

double LrSchedule::lr_at(int64_t step) const {
  if (schedule_.name == "step") {
    const int64_t epoch = step / steps_per_epoch_;
    return base_lr_ * std::pow(schedule_.gamma, static_cast<double>(epoch / schedule_.step_epochs));
  }
  if (schedule_.name == "cosine") {
    const double t = std::min(1.0, static_cast<double>(step) / static_cast<double>(total_steps_));
    return schedule_.min_lr + (base_lr_ - schedule_.min_lr) * 0.5 * (1.0 + std::cos(M_PI * t));
  }
  return base_lr_;
}

}  // namespace mnist
