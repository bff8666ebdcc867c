#pragma once
// Where the time of one training step goes (mnist-bench --profile-training CONFIG): the
// augmentation, the forward pass with the loss, the backward pass, the optimiser step and the
// weight average, each timed on its own for a config's model, batch and augmentation, with the
// config's threads. Variants of the fast paths (channels-last, the elastic blur as matrix
// products) run in turn, interleaved round by round, so that they share the machine's moods;
// medians per stage. Random images stand in for the data set: the kernels' cost does not depend
// on the pixels.

#include <string>
#include <utility>
#include <vector>

#include "mnist/config/config.h"

namespace mnist::bench {

struct TrainStageRow {
  std::string variant;  // "NCHW, blur by convolution", ...
  double augment_ms = 0, forward_ms = 0, backward_ms = 0, optimizer_ms = 0, average_ms = 0;
  double step_ms = 0;  // median of whole steps (not the sum of the medians)
  double images_per_second = 0;
};

/// The variants: the config as given with channels-last and the matrix blur each on and off (a
/// config without elastic augmentation or not a CNN gets fewer). `rounds` interleaved rounds of
/// `steps` timed steps each (after a few untimed ones).
std::vector<TrainStageRow> profile_training(const Config& config, int steps, int rounds);

/// The rows as a Markdown table.
std::string train_stage_table(const std::vector<TrainStageRow>& rows);

}  // namespace mnist::bench
