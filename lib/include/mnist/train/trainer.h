#pragma once
// The training loop: seeded, resumable, checkpointed after every epoch. It returns what it
// measured; how progress is shown is the observer's business (train/progress.h has the console
// one), and where checkpoints go is the sink's (run/run.h writes them into the run folder). The
// step itself is a StepEngine (train/step_engine.h).

#include <string>
#include <vector>

#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/dist/communicator.h"
#include "mnist/models/classifier.h"
#include "mnist/train/checkpoint.h"
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
  /// After the epoch's checkpoint and history row went to the sink.
  virtual void on_epoch_end(const EpochStats& /*stats*/) {}
};

struct TrainResult {
  // In eval mode, on the training device: the weights to evaluate and save. The weight average
  // when train.ema_decay is on; the best validation epoch's when early_stopping.restore_best.
  Classifier model;
  std::vector<EpochStats> history;  // every epoch of the run, resumed ones included
  int64_t best_epoch = 0;           // by early_stopping.monitor; 0 without a validation split
  int64_t model_epoch = 0;          // the epoch whose weights `model` holds
  bool stopped_early = false;       // early_stopping.patience ran out before train.epochs
};

/// The epoch whose monitored validation metric was best: a later epoch replaces the best only when
/// it improves on it by more than min_delta. 0 when `history` has no validation figures.
int64_t best_epoch(const std::vector<EpochStats>& history, const EarlyStoppingConfig& rule);

/// True when early stopping's patience has run out after the last epoch of `history`.
bool patience_ran_out(const std::vector<EpochStats>& history, const EarlyStoppingConfig& rule);

/// Where training keeps what it must not lose, and reads it back on a resume: rank 0's run folder
/// (run/run.h's RunFolderSink). Ranks without one (nullptr) write nothing. The trainer decides
/// when; the sink decides where and how.
class TrainSink {
 public:
  virtual ~TrainSink() = default;
  /// The checkpoint to resume from (its bytes), or "" to start afresh.
  virtual std::string read_checkpoint() const = 0;
  /// How errors about the checkpoint name it.
  virtual std::string checkpoint_name() const = 0;
  /// A checkpoint: after every epoch, and when a signal stops one. `average` is the weight
  /// average's model, or nullptr.
  virtual void write_checkpoint(ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                                const TrainingState& state, ClassifierImpl* average) = 0;
  /// The weights of the best validation epoch so far, written before the checkpoint naming it.
  virtual void write_best(const Classifier& model) = 0;
  /// Those weights again, for early_stopping.restore_best (DataError when they are gone).
  virtual Classifier read_best(const ModelConfig& model, const DatasetInfo& info) const = 0;
  /// The history so far, after each checkpoint.
  virtual void write_history(const std::vector<EpochStats>& history) = 0;
};

/// Trains `config`'s model on `data` on `device`. After every epoch a checkpoint goes to `sink`,
/// then the history. When the sink holds a checkpoint, the run continues after its last finished
/// epoch (or at the next step of a stopped one), giving the same result as an uninterrupted run.
/// RunError when the loss becomes NaN or infinite (the checkpoint of the last good epoch stays).
/// The recipe's parts (augmentation, label smoothing, weight average, early stopping with the best
/// weights) are all functions of the config and seed, and survive a resume.
///
/// Data parallelism (train/data_parallel.h): `train.batch_size` is per rank: each step takes
/// comm.size() * batch_size images of the epoch's shuffled order, shared out in rank order, and
/// averages the gradients over them, so the run follows the single-process trajectory of the
/// global batch (dropout and augmentation are seeded per rank). `sink` is rank 0's; the other
/// ranks pass nullptr. A resume reads rank 0's checkpoint and refuses a different world size
/// (UsageError). The history and the result are the whole run's on every rank.
TrainResult train_model(const Config& config, const Splits& data, TrainSink* sink,
                        c10::Device device, TrainObserver& observer, const Communicator& comm);

}  // namespace mnist
