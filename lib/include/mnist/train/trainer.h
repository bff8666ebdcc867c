#pragma once
// The training loop: seeded, resumable, checkpointed after every epoch. It returns what it
// measured; how progress is shown is the observer's business (train/progress.h has the console
// one).

#include <vector>

#include <c10/core/Device.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/io/run_folder.h"
#include "mnist/models/classifier.h"
#include "mnist/train/history.h"

namespace mnist {

/// Receives progress from train_model. Every method has an empty default.
class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  /// Before the first step; `first_epoch` > 1 when resuming.
  virtual void on_start(int64_t /*first_epoch*/, int64_t /*epochs*/, int64_t /*steps_per_epoch*/) {}
  /// Every train.log_every steps and at the end of an epoch: running means of the epoch so far.
  virtual void on_progress(int64_t /*epoch*/, int64_t /*step*/, int64_t /*steps*/, double /*loss*/,
                           double /*accuracy*/, double /*images_per_second*/) {}
  /// After the epoch's checkpoint and history row are on disk.
  virtual void on_epoch_end(const EpochStats& /*stats*/) {}
};

struct TrainResult {
  Classifier model;                 // in eval mode, on the training device
  std::vector<EpochStats> history;  // every epoch of the run, resumed ones included
};

/// Trains `config`'s model on `data` on `device`. After every epoch, a checkpoint goes into `run`
/// atomically and then history.csv is rewritten from it. When `run` already holds a checkpoint, the
/// run continues after its last finished epoch, giving the same result as an uninterrupted run.
/// RunError when the loss becomes NaN or infinite (the checkpoint of the last good epoch stays).
TrainResult train_model(const Config& config, const Splits& data, const RunFolder& run,
                        c10::Device device, TrainObserver& observer);

}  // namespace mnist
