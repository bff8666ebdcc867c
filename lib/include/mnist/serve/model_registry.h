#pragma once
// The models a server answers with: run folders loaded once at start-up and shared read-only by
// every request thread (Predictor::probabilities is safe to call concurrently: inference keeps no
// state between calls).

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mnist/eval/predictor.h"

namespace mnist::serve {

struct ServedModel {
  std::string name;           // the run folder's name, made unique ("-2", "-3", ... on a clash)
  std::string dataset;        // config data.dataset
  std::string type;           // config model.type
  double test_accuracy = -1;  // metrics.json's test_accuracy; -1 when the run has none
  std::unique_ptr<Predictor> predictor;

  /// {"name","dataset","type","test_accuracy" (null when unknown),"classes":[...]}: no paths.
  nlohmann::json to_json() const;
};

class ModelRegistry {
 public:
  /// Every path is a run folder (it holds config.json) or a folder of run folders, whose
  /// subfolders with a model.pt each become a model, in name order. A run folder given directly
  /// that cannot be loaded is a DataError naming it; a subfolder of a folder of runs that cannot
  /// be loaded is skipped with a line in `warnings`, and so is a folder of runs that is empty or
  /// holds only runs without a model yet (a warning). DataError when no model results.
  static ModelRegistry load(const std::vector<std::string>& paths,
                            std::vector<std::string>* warnings);

  /// The model called `name`, or the first one for an empty name; nullptr when there is none.
  const ServedModel* find(const std::string& name) const;
  const std::vector<ServedModel>& models() const { return models_; }

 private:
  void add(const std::string& run_dir);
  std::vector<ServedModel> models_;
};

}  // namespace mnist::serve
