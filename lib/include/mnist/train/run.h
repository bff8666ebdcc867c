#pragma once
// The life of a run folder, in the order the apps call it:
//   RunFolder::check_new -> (load data) -> start_run -> train_model -> evaluate_run -> (figures) ->
//   complete_run
// Data is loaded before the folder is created, so bad data leaves no folder behind; metrics.json is
// written last, so a folder without it never looks finished.

#include <string>

#include <c10/core/Device.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/eval/metrics.h"
#include "mnist/io/run_folder.h"
#include "mnist/train/trainer.h"

namespace mnist {

/// Creates the folder and writes config.json (resolved, absolute paths) and meta.json.
RunFolder start_run(const Config& config, const std::string& dir, const std::string& command_line,
                    c10::Device device);

/// Records a resumption in meta.json.
void note_resume(const RunFolder& run, const std::string& command_line);

/// After training: writes model.pt, evaluates on the test split, writes predictions.csv.
EvalResult evaluate_run(const Config& config, const Splits& data, const RunFolder& run,
                        const TrainResult& trained, c10::Device device);

/// Last: metrics.json (test metrics plus a "training" summary: epochs run, which epoch's weights
/// were evaluated, early stopping; deterministic, so a resumed run writes the same file) and the
/// end time in meta.json. From here on
/// the run counts as finished.
void complete_run(const RunFolder& run, const EvalResult& result, const DatasetInfo& info,
                  const TrainResult& trained);

}  // namespace mnist
