#pragma once
// The PNG figures of a run folder: what a person looks at to judge a run.

#include <string>
#include <vector>

#include "mnist/data/dataset.h"
#include "mnist/eval/metrics.h"
#include "mnist/io/run_folder.h"
#include "mnist/train/history.h"

namespace mnist::vision {

/// A grid of the first `count` images of `data` with their class names.
void write_sample_grid(const std::string& path, const Dataset& data, const DatasetInfo& info,
                       int count = 40);

/// Training and validation loss (left) and accuracy (right) per epoch.
void write_training_curves(const std::string& path, const std::vector<EpochStats>& history);

/// The confusion matrix as a heatmap: counts in the cells, shaded by each row's share, axes
/// labelled.
void write_confusion_heatmap(const std::string& path, const at::Tensor& confusion,
                             const DatasetInfo& info);

/// The most confidently misclassified test images, with true and predicted class and confidence.
void write_misclassified(const std::string& path, const Dataset& test, const EvalResult& result,
                         const DatasetInfo& info, int count = 40);

/// All four into `run`'s plots/: samples.png, curves.png, confusion.png, misclassified.png.
void write_run_figures(const RunFolder& run, const Splits& data,
                       const std::vector<EpochStats>& history, const EvalResult& result);

}  // namespace mnist::vision
