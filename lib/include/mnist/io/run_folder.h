#pragma once
// A run folder: everything a run produced, enough to evaluate, predict, plot and compare without
// the original command line. Runs are never overwritten; every file is written atomically;
// metrics.json is written last, so its presence means the run finished.

#include <string>

#include <nlohmann/json.hpp>

namespace mnist {

// File names that scripts outside the code read: renaming one is a contract change.
namespace run_files {
inline constexpr const char* kConfig = "config.json";        // resolved config, every key
inline constexpr const char* kDataset = "dataset.json";      // classes, image size, normalisation
inline constexpr const char* kMeta = "meta.json";            // commit, versions, device, times
inline constexpr const char* kHistory = "history.csv";       // one row per finished epoch
inline constexpr const char* kCheckpoint = "checkpoint.pt";  // model + optimiser + epoch + history
inline constexpr const char* kModel = "model.pt";            // final weights
inline constexpr const char* kBestModel = "best_model.pt";   // best validation epoch's weights
inline constexpr const char* kPredictions = "predictions.csv";  // per test sample
inline constexpr const char* kMetrics = "metrics.json";         // final test metrics (written last)
inline constexpr const char* kPlots = "plots";                  // PNG figures
inline constexpr const char* kProgress =
    "progress.json";  // a training's live state (run/catalog.h)
}  // namespace run_files

class RunFolder {
 public:
  /// UsageError naming `dir` when a new run may not be written there: it exists and is not an empty
  /// folder. (Checked before the data is loaded, so the user hears of it at once.)
  static void check_new(const std::string& dir);

  /// Creates `dir` (and its parents, and plots/) for a new run. UsageError naming `dir` when
  /// check_new refuses it or it cannot be created.
  static RunFolder create(const std::string& dir);

  /// An existing run folder (opening writes nothing). DataError naming `dir` when it is not a
  /// folder holding config.json.
  static RunFolder open(const std::string& dir);

  /// "runs/<config file stem>-<YYYYmmdd-HHMMSS>" under the current directory, with "-2", "-3", ...
  /// appended when that exists already.
  static std::string default_dir(const std::string& config_path);

  const std::string& dir() const { return dir_; }
  /// The path of `name` inside the folder.
  std::string file(const std::string& name) const;
  bool has(const std::string& name) const;
  /// True once metrics.json exists.
  bool finished() const { return has(run_files::kMetrics); }

  void write_json(const std::string& name, const nlohmann::json& j) const;
  void write_text(const std::string& name, const std::string& text) const;
  /// DataError naming the file when it is missing or not JSON.
  nlohmann::json read_json(const std::string& name) const;

 private:
  explicit RunFolder(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

/// "2026-11-24T17:53:11Z": the timestamps of meta.json.
std::string utc_timestamp();

}  // namespace mnist
