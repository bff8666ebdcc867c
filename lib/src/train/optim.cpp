#include "mnist/train/optim.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/train/fused_adam.h"

namespace mnist {

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimConfig& o,
                                                        const std::vector<at::Tensor>& parameters) {
  const auto betas = std::make_tuple(o.beta1, o.beta2);
  switch (o.name) {
    case Optimizer::kAdam:
      if (o.fused && !plain_paths() && FusedAdam::supports(parameters)) {
        return std::make_unique<FusedAdam>(
            parameters,
            torch::optim::AdamOptions(o.lr).betas(betas).eps(o.eps).weight_decay(o.weight_decay));
      }
      return std::make_unique<torch::optim::Adam>(
          parameters,
          torch::optim::AdamOptions(o.lr).betas(betas).eps(o.eps).weight_decay(o.weight_decay));
    case Optimizer::kAdamW:
      return std::make_unique<torch::optim::AdamW>(
          parameters,
          torch::optim::AdamWOptions(o.lr).betas(betas).eps(o.eps).weight_decay(o.weight_decay));
    case Optimizer::kSgd:
      break;
  }
  return std::make_unique<torch::optim::SGD>(parameters, torch::optim::SGDOptions(o.lr)
                                                             .momentum(o.momentum)
                                                             .nesterov(o.nesterov)
                                                             .weight_decay(o.weight_decay));
}

void zero_gradients(torch::optim::Optimizer& optimizer) {
  if (auto* fused = dynamic_cast<FusedAdam*>(&optimizer)) {
    fused->zero_gradients();
    return;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : optimizer.param_groups()) {
    for (auto& p : group.params()) {
      if (p.grad().defined()) p.mutable_grad().zero_();
    }
  }
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

LrSchedule::LrSchedule(const OptimConfig& optim, const ScheduleConfig& schedule,
                       int64_t steps_per_epoch, int64_t epochs)
    : base_lr_(optim.lr),
      schedule_(schedule),
      steps_per_epoch_(std::max<int64_t>(1, steps_per_epoch)),
      total_steps_(std::max<int64_t>(1, steps_per_epoch * epochs)),
      warmup_steps_(std::min<int64_t>(
          total_steps_, static_cast<int64_t>(std::llround(
                            schedule.warmup_epochs * static_cast<double>(steps_per_epoch_))))) {}

namespace {

// Cosine interpolation from `from` (t = 0) to `to` (t = 1).
double cosine(double from, double to, double t) {
  return to + (from - to) * 0.5 * (1.0 + std::cos(M_PI * std::clamp(t, 0.0, 1.0)));
}

}  // namespace

double LrSchedule::lr_at(int64_t step) const {
  if (schedule_.name == Schedule::kOneCycle) {
    const double peak_step = schedule_.pct_start * static_cast<double>(total_steps_);
    const double start = base_lr_ / schedule_.div_factor;
    const double s = static_cast<double>(step);
    if (s < peak_step) return cosine(start, base_lr_, s / peak_step);
    const double end = start / schedule_.final_div_factor;
    const double rest = std::max(1.0, static_cast<double>(total_steps_) - peak_step);
    return cosine(base_lr_, end, (s - peak_step) / rest);
  }
  // Linear warm-up, then the schedule proper over the remaining steps.
  if (step < warmup_steps_) {
    return base_lr_ * static_cast<double>(step + 1) / static_cast<double>(warmup_steps_);
  }
  const int64_t after = step - warmup_steps_;
  if (schedule_.name == Schedule::kStep) {
    const int64_t epoch = after / steps_per_epoch_;
    return base_lr_ * std::pow(schedule_.gamma, static_cast<double>(epoch / schedule_.step_epochs));
  }
  if (schedule_.name == Schedule::kCosine) {
    const int64_t span = std::max<int64_t>(1, total_steps_ - warmup_steps_);
    return cosine(base_lr_, schedule_.min_lr,
                  static_cast<double>(after) / static_cast<double>(span));
  }
  return base_lr_;
}

}  // namespace mnist
