#pragma once
// Run folders read back: what the research cockpit (mnist-serve's /runs) and scripts show of a run.
// Every read is bounded and nothing in a folder is trusted: a run being written, stopped or
// damaged gives its status (and what is wrong, naming the file), never an exception. Also the
// writer of progress.json, the live state of a training that the cockpit follows.

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/io/run_folder.h"
#include "mnist/train/trainer.h"

namespace mnist {

enum class RunStatus {
  kComplete,     // metrics.json is there: trained and evaluated
  kRunning,      // progress.json names a live process (this machine) or is fresh (another one)
  kInterrupted,  // stopped with a checkpoint: `mnist-train --resume DIR` continues it
  kFailed,       // stopped before its first checkpoint: nothing to resume
  kDamaged,      // a file the run needs cannot be read (config.json, metrics.json)
};
const char* name_of(RunStatus status);

struct RunSummary {
  std::string dir;  // where it is (never sent to clients)
  RunStatus status = RunStatus::kDamaged;
  std::string problem;      // kDamaged: the file and what is wrong (no folder path)
  nlohmann::json config;    // the resolved config; null when unreadable
  nlohmann::json metrics;   // metrics.json; null before the run is complete
  nlohmann::json progress;  // progress.json; null when there is none
  std::string config_name;  // the --config file's name without folder and .json, from
                            // meta.json's command ("mnist_mlp_fast"); "" when there was none
  std::string model;        // model.type ("mlp", "cnn"), "" when unknown
  std::string dataset;      // data.dataset
  int64_t epochs_done = 0;  // rows of history.csv
  int64_t epochs_planned = 0;
  double best_val_accuracy = -1;  // the best val_accuracy of the history; -1 without one
  double test_accuracy = -1;      // metrics.json; -1 before the run is complete
  double wall_seconds = -1;       // start to end (to now while running); -1 when unknown
  std::string start_time;         // meta.json's, "2026-11-24T17:53:11Z"

  /// Everything but `dir` and the config (which can be large): what the runs table lists.
  nlohmann::json to_json() const;
};

/// The state of the run folder `dir` as it is now (see RunStatus). Reads config.json, meta.json,
/// history.csv, metrics.json and progress.json, each size-capped.
RunSummary read_run_summary(const std::string& dir);

/// The run folders under `roots`, each a run folder (config.json) or a folder whose subfolders
/// holding a config.json are runs; sorted by path, at most `max_runs` (the rest are left out).
std::vector<std::string> find_run_folders(const std::vector<std::string>& roots, size_t max_runs);

/// history.csv as {"columns": [...], "rows": [[...], ...]} (empty cells null), rows whose epoch is
/// above `after_epoch` only. Empty columns and rows when the file is missing; DataError naming the
/// file when it is not a history.
nlohmann::json read_history_table(const std::string& dir, int64_t after_epoch = 0);

/// One test image's line of predictions.csv.
struct PredictionRow {
  int64_t index = 0;
  int64_t label = 0;
  int64_t predicted = 0;
  double confidence = 0;
};
/// predictions.csv's first four columns; DataError naming the file when it is missing, larger than
/// 256 MiB, or a line is not index,label,predicted,confidence,...
std::vector<PredictionRow> read_predictions(const std::string& dir);

/// Writes progress.json into the run folder every time training reports (train.log_every steps
/// and each epoch's end), atomically for readers but without fsync (a crash may lose the last
/// update, never leave half a file), and passes every event on to `inner`. A failed write is one
/// warning, not the end of the training. Rank 0 holds one.
///   {"pid","host","state":"training"|STATE,"epoch","epochs","step","steps","loss","accuracy",
///    "images_per_second","eta_seconds","updated":"...Z","updated_unix"}
class ProgressFile final : public TrainObserver {
 public:
  ProgressFile(const RunFolder& run, TrainObserver& inner);
  void on_start(int64_t first_epoch, int64_t epochs, int64_t steps_per_epoch) override;
  void on_progress(int64_t epoch, int64_t step, int64_t steps, double loss, double accuracy,
                   double images_per_second) override;
  void on_epoch_end(const EpochStats& stats) override;
  /// After training: the state the cockpit shows until metrics.json appears ("evaluating").
  void set_state(const std::string& state);
  /// Writes so far and the time they took (what the file costs a training).
  int64_t writes() const { return writes_; }
  double write_seconds() const { return write_seconds_; }

 private:
  void write();
  const RunFolder& run_;
  TrainObserver& inner_;
  nlohmann::json state_;
  int64_t first_epoch_ = 1, epochs_ = 0, steps_per_epoch_ = 0;
  int64_t steps_done_ = 0;  // by this process, for the ETA
  std::chrono::steady_clock::time_point start_;
  int64_t writes_ = 0;
  double write_seconds_ = 0;
  bool warned_ = false;
};

}  // namespace mnist
