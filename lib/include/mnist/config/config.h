#pragma once
// The experiment config: typed structs whose initialisers are the documented defaults, one mapping
// from JSON onto them, and `--set key.path=value` overrides applied to the JSON before that mapping
// so that they get the same checks. Unknown keys and wrong types are errors naming the full key
// path.
//
// A config file gives only the keys that differ from the defaults; the resolved config (every key)
// is saved in the run folder as config.json, which is enough to rebuild the model and re-run the
// recipe.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnist {

struct DataConfig {
  std::string dir = "data/mnist";  // folder with the four IDX files, raw or .gz; stored absolute
  std::string dataset = "mnist";   // mnist | fashion-mnist: class names, expected image size
  int64_t val_size = 5000;  // training images held out for validation (seeded split); 0 = none
};

struct ModelConfig {
  std::string type = "mlp";                       // mlp
  std::vector<int64_t> hidden_sizes = {150, 50};  // MLP hidden layer widths, in order
  std::string activation = "relu";                // relu | tanh | sigmoid | gelu
  double dropout = 0.0;                           // after each hidden activation, in [0, 1)
  // How outputs become probabilities, and so the loss: "softmax" (logits + cross-entropy) or
  // "sigmoid" (the Keras tutorial: per-class sigmoids, Keras' sparse categorical cross-entropy).
  std::string output = "softmax";
  // Initial weights: "torch" (LibTorch's defaults) or "glorot" (Keras': Glorot-uniform, zero bias).
  std::string init = "torch";
};

struct TrainConfig {
  int64_t epochs = 10;             // passes over the training split, >= 1
  int64_t batch_size = 32;         // images per optimiser step, >= 1
  int64_t eval_batch_size = 1000;  // images per forward pass when evaluating (speed only)
  int64_t log_every = 100;         // steps between progress-line refreshes and NaN checks
};

struct OptimConfig {
  std::string name = "adam";  // adam | adamw | sgd
  double lr = 1e-3;           // peak learning rate (schedules scale it)
  double beta1 = 0.9;         // adam/adamw first-moment decay
  double beta2 = 0.999;       // adam/adamw second-moment decay
  double eps = 1e-8;          // adam/adamw denominator term (Keras uses 1e-7)
  double weight_decay = 0.0;  // L2 (adam, sgd) or decoupled (adamw)
  double momentum = 0.9;      // sgd only
  bool nesterov = false;      // sgd only
};

struct ScheduleConfig {
  std::string name = "constant";  // constant | step | cosine (per step, from lr down to min_lr)
  int64_t step_epochs = 3;        // step: multiply the lr by gamma every this many epochs
  double gamma = 0.1;             // step: the factor
  double min_lr = 0.0;            // cosine: the lr reached at the end of the last epoch
};

struct Config {
  std::string description;  // free text, kept in the run folder
  int64_t seed = 1;         // seeds initial weights, the validation split, shuffling, dropout
  std::string device =
      "auto";           // auto (CUDA when LibTorch has it and a GPU is present) | cpu | cuda
  int64_t threads = 1;  // intra-op threads; measured: 1 is fastest for small batches on 2 cores
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  OptimConfig optim;
  ScheduleConfig schedule;
};

/// Maps `j` onto the defaults. Throws UsageError "<source>: <key.path>: <problem>" for an unknown
/// key, a wrong type or a value out of range. `source` names where the JSON came from (a file, a
/// --set).
Config config_from_json(const nlohmann::json& j, const std::string& source);

/// Every key with its value: what config.json of a run folder holds.
nlohmann::json config_to_json(const Config& config);

/// Reads and parses a JSON object from `path`; UsageError naming `path` when it cannot.
nlohmann::json read_json_file(const std::string& path);

/// Applies one "a.b.c=value" assignment to `j` (value parsed as JSON, else taken as a string),
/// creating objects on the way. UsageError naming the assignment when it is malformed.
void apply_override(nlohmann::json& j, const std::string& assignment);

/// Reads `path`, applies `overrides` in order (each checked as it comes, so an error names the
/// --set at fault rather than the file), converts, and makes data.dir absolute from the current
/// directory.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

/// A run folder's config.json with overrides. Errors in the folder's own file are DataError (it is
/// a file read during the run); errors in the overrides are UsageError.
Config load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides);

}  // namespace mnist
