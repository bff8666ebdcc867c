#pragma once
// Optimisers and learning-rate schedules from config.
//
// The schedule is a pure function of the global step rather than one of LibTorch's stateful
// LRScheduler objects: LibTorch 1.13 ships only StepLR, whose step count is not serialisable, while
// a function of the step makes a resumed run bit-identical to an uninterrupted one with nothing to
// save.

#include <memory>
#include <vector>

#include <torch/optim/optimizer.h>

#include "mnist/config/config.h"

namespace mnist {

/// Adam, AdamW or SGD (momentum, Nesterov) over `parameters`, as config.optim says. Adam is a
/// FusedAdam (train/fused_adam.h) unless optim.fused is false.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimConfig& optim,
                                                        const std::vector<at::Tensor>& parameters);

/// Sets every gradient to zero in place, as LibTorch 1.x's zero_grad() did (2.x sets them to none).
void zero_gradients(torch::optim::Optimizer& optimizer);

/// Sets the learning rate of every parameter group.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

class LrSchedule {
 public:
  /// `steps_per_epoch` >= 1 optimiser steps per epoch, `epochs` epochs in all.
  LrSchedule(const OptimConfig& optim, const ScheduleConfig& schedule, int64_t steps_per_epoch,
             int64_t epochs);
  /// The learning rate for global step `step` (0-based, counted over all epochs).
  double lr_at(int64_t step) const;

 private:
  double base_lr_;
  ScheduleConfig schedule_;
  int64_t steps_per_epoch_;
  int64_t total_steps_;
  int64_t warmup_steps_;
};

}  // namespace mnist
