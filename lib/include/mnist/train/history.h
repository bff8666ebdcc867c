#pragma once
// One row of a run's history.csv per finished epoch, and its JSON form (kept in checkpoints, which
// are the source of truth: history.csv is rewritten from them, so it can never run ahead of the
// weights).

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnist {

struct EpochStats {
  int64_t epoch = 0;               // counted from 1
  double train_loss = 0.0;         // mean over the epoch's batches
  double train_accuracy = 0.0;     // fraction in [0, 1], measured while training
  double val_loss = 0.0;           // NaN when there is no validation split
  double val_accuracy = 0.0;       // NaN when there is no validation split
  double lr = 0.0;                 // learning rate at the epoch's last step
  double seconds = 0.0;            // wall time of the epoch (training + validation)
  double images_per_second = 0.0;  // training images / training seconds
};

nlohmann::json to_json(const std::vector<EpochStats>& history);
/// DataError naming `source` when `j` is not a history.
std::vector<EpochStats> history_from_json(const nlohmann::json& j, const std::string& source);

/// The CSV text: a header line, then one line per epoch (empty cells for NaN).
std::string history_csv(const std::vector<EpochStats>& history);

}  // namespace mnist
