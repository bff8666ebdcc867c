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
  // Folder with the four IDX files, raw or .gz; stored absolute. Empty = the data set's usual
  // place: data/mnist for mnist, /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist)
  // for fashion-mnist.
  std::string dir;
  std::string dataset = "mnist";  // mnist | fashion-mnist: class names, image size, channels
  int64_t val_size = 5000;  // training images held out for validation (seeded split); 0 = none
};

struct ModelConfig {
  std::string type = "mlp";  // mlp | cnn
  // The MLP's hidden layer widths, in order; for a CNN, the hidden layers of its classifier head.
  std::vector<int64_t> hidden_sizes = {150, 50};
  std::string activation = "relu";  // relu | tanh | sigmoid | gelu
  double dropout = 0.0;             // after each hidden activation, in [0, 1)
  // How outputs become probabilities, and so the loss: "softmax" (logits + cross-entropy) or
  // "sigmoid" (the Keras tutorial: per-class sigmoids, Keras' sparse categorical cross-entropy).
  std::string output = "softmax";
  // Initial weights: "torch" (LibTorch's defaults) or "glorot" (Keras': Glorot-uniform, zero bias).
  std::string init = "torch";
  // CNN only (model.type "cnn"): convolution blocks, each `convs_per_block` convolutions
  // (Conv2d, 'same' padding -> optional BatchNorm2d -> activation), then 2x2 pooling and dropout;
  // then the head: [Linear -> activation -> Dropout(dropout)] per hidden size -> Linear.
  std::vector<int64_t> channels = {32, 64};    // output channels of each block
  std::vector<int64_t> kernel_sizes = {3, 3};  // odd kernel size of each block's convolutions
  int64_t convs_per_block = 1;                 // convolutions per block, >= 1
  std::string pool = "max";                    // max | avg | none: 2x2 pooling after each block
  bool batch_norm = true;                      // BatchNorm2d after each convolution
  double conv_dropout = 0.0;                   // dropout after each block, in [0, 1)
  bool global_pool = false;  // average each channel over the image before the head (fewer weights)
};

struct TrainConfig {
  int64_t epochs = 10;             // passes over the training split, >= 1
  int64_t batch_size = 32;         // images per optimiser step, >= 1
  int64_t eval_batch_size = 1000;  // images per forward pass when evaluating (speed only)
  int64_t log_every = 100;         // steps between progress-line refreshes and NaN checks
  // Softmax output only: the target puts 1 - s on the true class and s / K on every class.
  double label_smoothing = 0.0;
  // Exponential moving average of the weights, updated after every step; 0 = off. When on,
  // validation, the saved model and evaluation use the averaged weights. The decay ramps up as
  // min(ema_decay, (1 + t) / (10 + t)) over the first steps t.
  double ema_decay = 0.0;
  // Plain MLPs: forward and backward written out into reused buffers (train/mlp_step.h), with the
  // same arithmetic as autograd. Off: autograd, for comparison.
  bool fast_step = true;
  // With threads > 1 and the written-out MLP step: train with one thread while other processes'
  // runnable tasks leave too few free cores (train/thread_governor.h). Results do not depend on it.
  // Off: always `threads`.
  bool adaptive_threads = true;
};

struct EarlyStoppingConfig {
  std::string monitor = "val_accuracy";  // val_accuracy (higher is better) | val_loss (lower)
  // Stop after this many epochs without an improvement of more than min_delta; 0 = never stop
  // early. Needs a validation split.
  int64_t patience = 0;
  double min_delta = 0.0;
  // Evaluate and save the weights of the best validation epoch (best_model.pt, written whenever the
  // monitored metric improves) instead of the last epoch's. Needs a validation split.
  bool restore_best = false;
};

// On-the-fly augmentation of training batches (never validation or test): one random affine
// transform per image, optionally an elastic distortion, drawn from the run's seeded generator.
// All zero (the default) = off.
struct AugmentConfig {
  double rotation = 0.0;       // degrees: uniform in [-rotation, rotation]
  double translate = 0.0;      // fraction of the image size: shift uniform in [-t, t] per axis
  double scale = 0.0;          // zoom uniform in [1 - scale, 1 + scale]
  double shear = 0.0;          // degrees: uniform in [-shear, shear]
  double elastic_alpha = 0.0;  // elastic distortion strength in pixels (Simard 2003); 0 = off
  double elastic_sigma = 4.0;  // smoothness of the elastic displacement field, in pixels
  bool hflip = false;          // mirror left-right with probability 1/2 (clothes, not digits)
  bool enabled() const {
    return rotation > 0 || translate > 0 || scale > 0 || shear > 0 || elastic_alpha > 0 || hflip;
  }
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
  bool fused = true;          // adam: one step over flattened parameters (same arithmetic)
};

struct ScheduleConfig {
  // constant | step | cosine (per step, from lr down to min_lr) | onecycle (cosine up from
  // lr / div_factor to lr over the first pct_start of the steps, then cosine down to
  // lr / (div_factor * final_div_factor))
  std::string name = "constant";
  int64_t step_epochs = 3;  // step: multiply the lr by gamma every this many epochs
  double gamma = 0.1;       // step: the factor
  double min_lr = 0.0;      // cosine: the lr reached at the end of the last epoch
  // constant, step, cosine: the lr rises linearly from 0 over this many epochs (fractions allowed)
  // before the schedule proper, which then spans the remaining steps.
  double warmup_epochs = 0.0;
  double pct_start = 0.25;        // onecycle: fraction of the steps spent rising
  double div_factor = 25.0;       // onecycle: the starting lr is lr / div_factor
  double final_div_factor = 1e4;  // onecycle: the final lr is lr / (div_factor * this)
};

struct Config {
  std::string description;  // free text, kept in the run folder
  int64_t seed = 1;         // seeds initial weights, the validation split, shuffling, dropout
  std::string device =
      "auto";           // auto (CUDA when LibTorch has it and a GPU is present) | cpu | cuda
  int64_t threads = 1;  // intra-op threads; measured: 1 is fastest for small batches on 2 cores
  // OpenBLAS's own threads for matrix products; measured: 2 makes batch-32 products 4x slower here.
  int64_t blas_threads = 1;
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  EarlyStoppingConfig early_stopping;
  AugmentConfig augment;
  OptimConfig optim;
  ScheduleConfig schedule;
};

/// The folder a data set is read from when data.dir is empty.
std::string default_data_dir(const std::string& dataset);

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
