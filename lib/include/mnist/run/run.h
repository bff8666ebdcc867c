#pragma once
// The life of a run folder, in the order the apps call it:
//   RunFolder::check_new -> (load data) -> start_run -> train_model (into a RunFolderSink) ->
//   evaluate_run -> (figures) -> complete_run
// Data is loaded before the folder is created, so bad data leaves no folder behind; metrics.json is
// written last, so a folder without it never looks finished.

#include <optional>
#include <string>

#include <c10/core/Device.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/dist/communicator.h"
#include "mnist/eval/metrics.h"
#include "mnist/io/run_folder.h"
#include "mnist/train/trainer.h"

namespace mnist {

/// The run folder as the trainer's sink (train/trainer.h): checkpoint.pt, best_model.pt and
/// history.csv, each written atomically. Rank 0 holds one; the other ranks pass nullptr.
class RunFolderSink final : public TrainSink {
 public:
  explicit RunFolderSink(const RunFolder& run) : run_(run) {}
  std::string read_checkpoint() const override;
  std::string checkpoint_name() const override;
  void write_checkpoint(ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                        const TrainingState& state, ClassifierImpl* average) override;
  void write_best(const Classifier& model) override;
  Classifier read_best(const ModelConfig& model, const DatasetInfo& info) const override;
  void write_history(const std::vector<EpochStats>& history) override;

 private:
  const RunFolder& run_;
};

/// Trains into `run` in a world of one (train_model with a RunFolderSink).
TrainResult train_run(const Config& config, const Splits& data, const RunFolder& run,
                      c10::Device device, TrainObserver& observer);

/// Creates the folder and writes config.json (resolved, absolute paths), dataset.json (`info`:
/// classes, image size, channels, normalisation) and meta.json (which records `world_size`, the
/// ranks of a data-parallel run).
RunFolder start_run(const Config& config, const DatasetInfo& info, const std::string& dir,
                    const std::string& command_line, c10::Device device, int world_size = 1);

/// Fine-tuning (config.init.from set): checks that the run named there was trained on the same
/// classes, image size and channels as `data`, and gives `data` that run's normalisation (its
/// weights expect it). UsageError naming init.from otherwise. Nothing when init.from is empty.
void adopt_initial_run(const Config& config, Splits& data);

/// Data-parallel start-up: rank 0's resolved config on every rank. When `resuming`, only rank 0 has
/// read one (from the run folder) and the others take it; nullopt on every rank when rank 0 has
/// none (the run had finished). Otherwise every rank has resolved its own, and ranks started with
/// different configs are refused: UsageError on every rank, naming the first key that differs.
/// Returns `config` in a world of one.
std::optional<Config> agree_on_config(const Communicator& comm, const std::optional<Config>& config,
                                      bool resuming);

/// Records a resumption in meta.json.
void note_resume(const RunFolder& run, const std::string& command_line);

/// After training: writes model.pt, evaluates on the test split, writes predictions.csv.
EvalResult evaluate_run(const Config& config, const Splits& data, const RunFolder& run,
                        const TrainResult& trained, c10::Device device);

/// The same for one rank of a data-parallel run: the ranks share the evaluation; rank 0 (`run`
/// not null) writes, the others (`run` null) write nothing. Every rank gets the whole result.
EvalResult evaluate_run(const Config& config, const Splits& data, const RunFolder* run,
                        const TrainResult& trained, c10::Device device, const Communicator& comm);

/// Last: metrics.json (test metrics plus a "training" summary: epochs run, which epoch's weights
/// were evaluated, early stopping; deterministic, so a resumed run writes the same file) and the
/// end time in meta.json. From here on
/// the run counts as finished.
void complete_run(const RunFolder& run, const EvalResult& result, const DatasetInfo& info,
                  const TrainResult& trained);

}  // namespace mnist
