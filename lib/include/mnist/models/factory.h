#pragma once
// One factory builds every model from its config, so training, evaluation and prediction agree on
// the architecture by construction: a run folder's config.json plus model.pt is enough to rebuild a
// model.

#include <torch/serialize/input-archive.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/models/classifier.h"

namespace mnist {

/// A freshly initialised model for `model` on data of shape `info` (initial weights come from
/// torch's global RNG: seed it first for reproducible runs). UsageError naming the key for a bad
/// model config.
Classifier build_model(const ModelConfig& model, const DatasetInfo& info);

/// Builds the model and loads weights from `path` (a model.pt written by save_model); DataError
/// naming `path` when the file is missing, corrupt or holds another architecture.
Classifier load_model(const ModelConfig& model, const DatasetInfo& info, const std::string& path);

/// Loads `archive` into `model`, checking that every parameter keeps its shape (Module::load would
/// silently take tensors of another shape). DataError naming `path` otherwise.
void load_weights(ClassifierImpl& model, torch::serialize::InputArchive& archive,
                  const std::string& path);

/// Writes the model's weights to `path` atomically.
void save_model(const Classifier& model, const std::string& path);

}  // namespace mnist
