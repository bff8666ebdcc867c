#pragma once
// The experiment config: typed structs whose initialisers are the defaults, and one schema
// (config.cpp) that declares every key once -- its path, its member here, its range or choices and
// a line of documentation -- and drives parsing, validation, config_to_json and the generated
// reference (docs/config.md, `mnist-train --config-reference`). The meaning of each key is
// documented there, not here. Choices are parsed once into the enum types below; code downstream
// switches over them and never meets an unknown name.
//
// `--set key.path=value` overrides are applied to the JSON before the mapping, so they get the
// same checks. Unknown keys and wrong types are errors naming the full key path. A config file
// gives only the keys that differ from the defaults; the resolved config (every key) is saved in
// the run folder as config.json, which is enough to rebuild the model and re-run the recipe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnist {

// The choices of the config's enumerated keys. Each EnumNames<E>::names lists the config's
// spelling of every value, in the order of the enumerators.
enum class Device { kAuto, kCpu, kCuda };
enum class DatasetName { kMnist, kFashionMnist, kFolder };
enum class ModelType { kMlp, kCnn };
enum class Activation { kRelu, kTanh, kSigmoid, kGelu };
enum class OutputHead { kSoftmax, kSigmoid };
enum class Init { kTorch, kGlorot };
enum class Pool { kMax, kAvg, kNone };
enum class Monitor { kValAccuracy, kValLoss };
enum class Optimizer { kAdam, kAdamW, kSgd };
enum class Schedule { kConstant, kStep, kCosine, kOneCycle };
enum class FolderPreprocess { kResize, kDigit };

template <typename E>
struct EnumNames;
#define MNIST_ENUM_NAMES(E, ...)                    \
  template <>                                       \
  struct EnumNames<E> {                             \
    static constexpr std::array names{__VA_ARGS__}; \
  };
MNIST_ENUM_NAMES(Device, "auto", "cpu", "cuda")
MNIST_ENUM_NAMES(DatasetName, "mnist", "fashion-mnist", "folder")
MNIST_ENUM_NAMES(ModelType, "mlp", "cnn")
MNIST_ENUM_NAMES(Activation, "relu", "tanh", "sigmoid", "gelu")
MNIST_ENUM_NAMES(OutputHead, "softmax", "sigmoid")
MNIST_ENUM_NAMES(Init, "torch", "glorot")
MNIST_ENUM_NAMES(Pool, "max", "avg", "none")
MNIST_ENUM_NAMES(Monitor, "val_accuracy", "val_loss")
MNIST_ENUM_NAMES(Optimizer, "adam", "adamw", "sgd")
MNIST_ENUM_NAMES(Schedule, "constant", "step", "cosine", "onecycle")
MNIST_ENUM_NAMES(FolderPreprocess, "resize", "digit")
#undef MNIST_ENUM_NAMES

/// The config's spelling of `value`, e.g. name_of(Activation::kRelu) == "relu".
template <typename E>
const char* name_of(E value) {
  return EnumNames<E>::names.at(static_cast<std::size_t>(value));
}

/// The value spelled `name`, or nothing.
template <typename E>
std::optional<E> enum_from_name(std::string_view name) {
  const auto& names = EnumNames<E>::names;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (name == names[i]) return static_cast<E>(i);
  }
  return std::nullopt;
}

/// data.val_size -1 for the IDX sets: MNIST's customary 5,000 validation images.
inline constexpr int64_t kIdxValidationImages = 5000;

struct DataConfig {
  std::string dir;  // empty: default_data_dir(dataset); stored absolute
  DatasetName dataset = DatasetName::kMnist;
  int64_t val_size = -1;  // -1: 5000 for the IDX sets, val_fraction of a folder's training images
  double val_fraction = 0.1;
  FolderPreprocess preprocess = FolderPreprocess::kResize;
  std::vector<int64_t> image_size = {28, 28};  // [height, width]
  int64_t channels = 1;
  double test_fraction = 0.2;
  bool skip_bad = false;
  std::vector<std::string> extra;  // stored absolute
  int64_t extra_repeat = 1;
  bool cache = true;
  std::string cache_dir;  // empty: default_cache_dir(); stored absolute otherwise
};

struct InitConfig {
  std::string from;  // a run folder; stored absolute
};

struct ModelConfig {
  ModelType type = ModelType::kMlp;
  std::vector<int64_t> hidden_sizes = {150, 50};
  Activation activation = Activation::kRelu;
  double dropout = 0.0;
  OutputHead output = OutputHead::kSoftmax;
  Init init = Init::kTorch;
  // CNN only
  std::vector<int64_t> channels = {32, 64};
  std::vector<int64_t> kernel_sizes = {3, 3};
  int64_t convs_per_block = 1;
  Pool pool = Pool::kMax;
  bool batch_norm = true;
  double conv_dropout = 0.0;
  bool global_pool = false;
};

struct TrainConfig {
  int64_t epochs = 10;
  int64_t batch_size = 32;
  int64_t eval_batch_size = 1000;
  int64_t log_every = 100;
  double label_smoothing = 0.0;
  double ema_decay = 0.0;
  bool fast_step = true;
  bool own_kernels = true;
  bool channels_last = true;
  bool adaptive_threads = true;
};

struct EarlyStoppingConfig {
  Monitor monitor = Monitor::kValAccuracy;
  int64_t patience = 0;
  double min_delta = 0.0;
  bool restore_best = false;
};

struct AugmentConfig {
  double rotation = 0.0;
  double translate = 0.0;
  double scale = 0.0;
  double shear = 0.0;
  double elastic_alpha = 0.0;
  double elastic_sigma = 4.0;
  bool hflip = false;
  bool blur_by_matmul = true;
  bool enabled() const {
    return rotation > 0 || translate > 0 || scale > 0 || shear > 0 || elastic_alpha > 0 || hflip;
  }
};

struct OptimConfig {
  Optimizer name = Optimizer::kAdam;
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  double momentum = 0.9;
  bool nesterov = false;
  bool fused = true;
};

struct ScheduleConfig {
  Schedule name = Schedule::kConstant;
  int64_t step_epochs = 3;
  double gamma = 0.1;
  double min_lr = 0.0;
  double warmup_epochs = 0.0;
  double pct_start = 0.25;
  double div_factor = 25.0;
  double final_div_factor = 1e4;
};

struct Config {
  std::string description;
  int64_t seed = 1;
  Device device = Device::kAuto;
  int64_t threads = 1;
  int64_t blas_threads = 1;
  DataConfig data;
  InitConfig init;
  ModelConfig model;
  TrainConfig train;
  EarlyStoppingConfig early_stopping;
  AugmentConfig augment;
  OptimConfig optim;
  ScheduleConfig schedule;
};

/// The folder a data set is read from when data.dir is empty ("" for folder data sets, which must
/// name theirs).
std::string default_data_dir(DatasetName dataset);

/// Where decoded image folders are cached when data.cache_dir is empty: $XDG_CACHE_HOME/mnist, else
/// $HOME/.cache/mnist, else the system's temporary folder.
std::string default_cache_dir();

/// Maps `j` onto the defaults. Throws UsageError "<source>: <key.path>: <problem>" for an unknown
/// key, a wrong type or a value out of range. `source` names where the JSON came from (a file, a
/// --set).
Config config_from_json(const nlohmann::json& j, const std::string& source);

/// Every key with its value: what config.json of a run folder holds.
nlohmann::json config_to_json(const Config& config);

/// The reference of every key (path, type and range or choices, default, meaning) as Markdown:
/// docs/config.md is this text (a test checks it), `mnist-train --config-reference` prints it.
std::string config_reference_markdown();

/// Reads and parses a JSON object from `path`; UsageError naming `path` when it cannot.
nlohmann::json read_json_file(const std::string& path);

/// Applies one "a.b.c=value" assignment to `j` (value parsed as JSON, else taken as a string),
/// creating objects on the way. UsageError naming the assignment when it is malformed.
void apply_override(nlohmann::json& j, const std::string& assignment);

/// Reads `path`, applies `overrides` in order (each checked as it comes, so an error names the
/// --set at fault rather than the file), converts, and makes data.dir absolute from the current
/// directory. An empty `path` starts from the defaults.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

/// A run folder's config.json with overrides. Errors in the folder's own file are DataError (it is
/// a file read during the run); errors in the overrides are UsageError.
Config load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides);

}  // namespace mnist
