#pragma once
// Evaluation of a model on a split, and the metrics derived from its confusion matrix.

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "mnist/data/dataset.h"
#include "mnist/dist/communicator.h"
#include "mnist/models/classifier.h"
#include "mnist/models/head.h"

namespace mnist {

struct EvalResult {
  double loss = 0.0;         // mean per-sample loss under the model's output head
  double accuracy = 0.0;     // fraction in [0, 1]
  int64_t count = 0;         // samples evaluated
  at::Tensor confusion;      // int64 [K, K] on CPU: rows = true class, columns = predicted
  at::Tensor predictions;    // int64 [N] on CPU
  at::Tensor probabilities;  // float [N, K] on CPU, rows sum to one
};

/// Runs `model` over `data` in batches of `batch_size` under inference mode on `device` (where the
/// model already is), with `head` deciding loss (never smoothed) and probabilities. Leaves the
/// model in eval mode. `data` must not be empty.
EvalResult evaluate(ClassifierImpl& model, const Dataset& data, const Head& head,
                    int64_t num_classes, c10::Device device, int64_t batch_size);

/// The same, with the work shared by the ranks of `comm`: each runs the model on its shard of
/// `data` (shard_of), and every rank gets the result for the whole of `data` (probabilities
/// gathered, losses summed). The figures equal the single-process ones up to the order of the
/// loss sum.
EvalResult evaluate(ClassifierImpl& model, const Dataset& data, const Head& head,
                    int64_t num_classes, c10::Device device, int64_t batch_size,
                    const Communicator& comm);

struct ClassMetrics {
  double precision =
      0.0;              // of the samples predicted as this class, the fraction that are (0 if none)
  double recall = 0.0;  // of the samples of this class, the fraction found
  double f1 = 0.0;      // harmonic mean of the two (0 when both are 0)
  int64_t support = 0;  // samples of this class
};

/// Per-class metrics from a confusion matrix (rows = true, columns = predicted).
std::vector<ClassMetrics> per_class_metrics(const at::Tensor& confusion);

/// The content of metrics.json: test_accuracy, test_loss, confusion_matrix, per_class (with class
/// names), macro averages, num_samples.
nlohmann::json metrics_json(const EvalResult& result, const DatasetInfo& info);

/// The content of predictions.csv: index,label,predicted,confidence,p0..p{K-1} per test sample,
/// and a last column `file` (CSV-quoted) when `files` names each sample's image file (folders).
std::string predictions_csv(const EvalResult& result, const at::Tensor& labels,
                            const std::vector<std::string>& files = {});

}  // namespace mnist
