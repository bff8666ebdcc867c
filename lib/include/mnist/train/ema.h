#pragma once
// An exponential moving average of a model's weights (Polyak averaging): a second model of the same
// architecture whose parameters follow the trained ones, p_avg <- d p_avg + (1 - d) p, after every
// optimiser step; buffers (BatchNorm's running statistics) are copied. The decay ramps up as
// min(decay, (1 + t) / (10 + t)), so early averages do not remember the random initial weights.

#include <cstdint>

#include "mnist/models/classifier.h"

namespace mnist {

class WeightAverage {
 public:
  /// `average` is a freshly built model of `model`'s architecture (on the same device); it starts
  /// as a copy of `model`.
  WeightAverage(Classifier average, const ClassifierImpl& model, double decay);

  /// After an optimiser step of `model`.
  void update(const ClassifierImpl& model);

  /// The averaged model (kept in eval mode).
  const Classifier& model() const { return average_; }
  int64_t updates() const { return updates_; }
  /// Restores the update count of a checkpoint (the weights come with the model's own archive).
  void set_updates(int64_t updates) { updates_ = updates; }

 private:
  Classifier average_;
  double decay_;
  int64_t updates_ = 0;
};

}  // namespace mnist
