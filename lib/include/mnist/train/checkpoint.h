#pragma once
// The checkpoint written after every epoch: one archive holding the model, the optimiser (Adam's
// moments and step counts), the number of finished epochs and the history so far. The learning-rate
// schedule and the data order are functions of (seed, epoch, step), and the dropout/augmentation
// randomness is seeded per epoch, so the epoch is all the state they need. A run stopped by a
// signal in the middle of an epoch also keeps the steps done of the next one and, per rank, its
// running figures and random generators (`partial`), so it resumes at the next step. Written
// atomically: a kill at any moment leaves the previous checkpoint whole.

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include <torch/optim/optimizer.h>

#include "mnist/models/classifier.h"
#include "mnist/train/history.h"

namespace mnist {

struct TrainingState {
  int64_t epoch = 0;                // finished epochs
  std::vector<EpochStats> history;  // one entry per finished epoch
  int64_t average_updates = 0;      // steps folded into the weight average (train.ema_decay)
  int64_t world_size = 1;           // ranks that trained it (data-parallel runs)
  int64_t step = 0;                 // steps done of epoch + 1 (a run stopped mid-epoch), else 0
  at::Tensor partial;               // when step > 0: one float64 row per rank (train/trainer.cpp)
};

/// `average`: the weight average's model when train.ema_decay is on, else nullptr.
void save_checkpoint(const std::string& path, ClassifierImpl& model,
                     torch::optim::Optimizer& optimizer, const TrainingState& state,
                     ClassifierImpl* average = nullptr);

/// Restores `model`, `optimizer` and `average` (when not nullptr; all built from the run's config)
/// and returns the state. DataError naming `path` when the file is corrupt or belongs to another
/// model or recipe.
TrainingState load_checkpoint(const std::string& path, ClassifierImpl& model,
                              torch::optim::Optimizer& optimizer,
                              ClassifierImpl* average = nullptr);

/// load_checkpoint from the file's `bytes` (io/archive.h's read_archive_file; read by rank 0 and
/// shared with the other ranks); `path` names it in errors.
TrainingState load_checkpoint_bytes(const std::string& bytes, const std::string& path,
                                    ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                                    ClassifierImpl* average = nullptr);

}  // namespace mnist
