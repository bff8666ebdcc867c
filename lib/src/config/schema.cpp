// The config schema: every key declared once, below, with its path, its member of Config, its type
// and range or choices, and one line of documentation. Parsing (config_from_json), writing
// (config_to_json) and the reference (config_reference_markdown, which is docs/config.md) all walk
// this one table; the defaults are the struct initialisers of config.h. Rules that tie two keys
// together are in check_rules(), each naming the key it reports.

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <sstream>
#include <utility>

#include "mnist/config/config.h"
#include "mnist/core/error.h"

namespace mnist {
namespace {

using nlohmann::json;

// What is wrong with the value of one key; the caller adds where the JSON came from.
struct Problem {
  std::string key;
  std::string text;
};

[[noreturn]] void fail(const std::string& key, const std::string& text) {
  throw Problem{key, text};
}

std::string join(const std::vector<std::string>& items, const char* sep) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : sep) + item;
  return out;
}

// A value as error messages show it: JSON text, with bytes that are not UTF-8 (a --set value is any
// text the shell passes) shown as U+FFFD instead of making dump() throw.
std::string shown(const json& v) {
  return v.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string number_text(double x) {
  std::ostringstream out;
  out << x;
  return out.str();
}

// One key of the config.
struct Key {
  std::string path;  // "train.epochs"; the part before the dot is its section
  std::string type;  // for the reference: "integer >= 1", "`relu`, `tanh`", ...
  std::string doc;   // its meaning, one line of Markdown
  std::function<void(const json& value, Config& config)> read;  // throws Problem
  std::function<json(const Config& config)> write;
};

// Where a key's value lives: a member of Config, or a member of one of its sections.
template <typename T>
struct Top {
  T Config::*member;
  T& operator()(Config& c) const { return c.*member; }
  const T& operator()(const Config& c) const { return c.*member; }
};
template <typename S, typename T>
struct In {
  S Config::*section;
  T S::*member;
  T& operator()(Config& c) const { return (c.*section).*member; }
  const T& operator()(const Config& c) const { return (c.*section).*member; }
};
template <typename T>
Top<T> at(T Config::*member) {
  return {member};
}
template <typename S, typename T>
In<S, T> at(S Config::*section, T S::*member) {
  return {section, member};
}

// A key whose value `read` checks and stores into the member `slot` finds.
template <typename At, typename Read>
Key make_key(std::string path, std::string type, std::string doc, At slot, Read read) {
  Key k{std::move(path), std::move(type), std::move(doc), nullptr, nullptr};
  k.read = [slot, read](const json& v, Config& c) { read(v, slot(c)); };
  k.write = [slot](const Config& c) { return json(slot(c)); };
  return k;
}

template <typename At>
Key integer(std::string path, At slot, int64_t min, std::string doc) {
  const std::string p = path;
  return make_key(
      std::move(path), "integer >= " + std::to_string(min), std::move(doc), slot,
      [p, min](const json& v, int64_t& out) {
        if (!v.is_number_integer()) fail(p, "must be an integer, got " + shown(v));
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
          fail(p, "is too large, got " + shown(v));
        }
        const auto value = v.get<int64_t>();
        if (value < min) {
          fail(p, "must be at least " + std::to_string(min) + ", got " + shown(v));
        }
        out = value;
      });
}

// A closed or half-open interval of numbers.
struct Range {
  double min, max;
  bool min_inclusive = true, max_inclusive = true;
  std::string text() const {
    return (min_inclusive ? "[" : "(") + number_text(min) + ", " + number_text(max) +
           (max_inclusive ? "]" : ")");
  }
  bool contains(double x) const {
    return (min_inclusive ? x >= min : x > min) && (max_inclusive ? x <= max : x < max);
  }
};

template <typename At>
Key number(std::string path, At slot, Range range, std::string doc) {
  const std::string p = path;
  return make_key(std::move(path), "number in " + range.text(), std::move(doc), slot,
                  [p, range](const json& v, double& out) {
                    if (!v.is_number()) fail(p, "must be a number, got " + shown(v));
                    const double value = v.get<double>();
                    if (!range.contains(value))
                      fail(p, "must be in " + range.text() + ", got " + shown(v));
                    out = value;
                  });
}

template <typename At>
Key boolean(std::string path, At slot, std::string doc) {
  const std::string p = path;
  return make_key(std::move(path), "`true` or `false`", std::move(doc), slot,
                  [p](const json& v, bool& out) {
                    if (!v.is_boolean()) fail(p, "must be true or false, got " + shown(v));
                    out = v.get<bool>();
                  });
}

template <typename At>
Key text(std::string path, At slot, std::string doc) {
  const std::string p = path;
  return make_key(std::move(path), "string", std::move(doc), slot,
                  [p](const json& v, std::string& out) {
                    if (!v.is_string()) fail(p, "must be a string, got " + shown(v));
                    out = v.get<std::string>();
                  });
}

template <typename E>
std::vector<std::string> names_of() {
  const auto& names = EnumNames<E>::names;
  return {names.begin(), names.end()};
}

template <typename At>
Key choice(std::string path, At slot, std::string doc) {
  using E = std::decay_t<decltype(slot(std::declval<Config&>()))>;
  const std::string p = path;
  std::vector<std::string> quoted;
  for (const auto& name : names_of<E>()) quoted.push_back("`" + name + "`");
  Key k = make_key(
      std::move(path), join(quoted, ", "), std::move(doc), slot, [p](const json& v, E& out) {
        if (!v.is_string()) fail(p, "must be a string, got " + shown(v));
        const auto value = v.get<std::string>();
        const auto parsed = enum_from_name<E>(value);
        if (!parsed) {
          fail(p, "must be one of " + join(names_of<E>(), ", ") + "; got \"" + value + "\"");
        }
        out = *parsed;
      });
  k.write = [slot](const Config& c) { return json(name_of(slot(c))); };
  return k;
}

template <typename At>
Key integer_list(std::string path, At slot, int64_t min, std::string doc) {
  const std::string p = path;
  return make_key(
      std::move(path), "list of integers >= " + std::to_string(min), std::move(doc), slot,
      [p, min](const json& v, std::vector<int64_t>& out) {
        if (!v.is_array()) fail(p, "must be a list of integers, got " + shown(v));
        std::vector<int64_t> values;
        for (const auto& item : v) {
          if (!item.is_number_integer() || item.get<int64_t>() < min) {
            fail(p, "must be a list of integers >= " + std::to_string(min) + ", got " + shown(v));
          }
          values.push_back(item.get<int64_t>());
        }
        out = std::move(values);
      });
}

template <typename At>
Key text_list(std::string path, At slot, std::string doc) {
  const std::string p = path;
  return make_key(std::move(path), "list of strings", std::move(doc), slot,
                  [p](const json& v, std::vector<std::string>& out) {
                    if (!v.is_array()) fail(p, "must be a list of strings, got " + shown(v));
                    std::vector<std::string> values;
                    for (const auto& item : v) {
                      if (!item.is_string() || item.get<std::string>().empty()) {
                        fail(p, "must be a list of non-empty strings, got " + shown(v));
                      }
                      values.push_back(item.get<std::string>());
                    }
                    out = std::move(values);
                  });
}

struct Section {
  std::string name;
  std::string doc;
};

const std::vector<Section>& sections() {
  static const std::vector<Section> kSections = {
      {"", "The run as a whole."},
      {"data",
       "Where the images come from and how the training file is split. `folder` reads a user's "
       "own images in torchvision's ImageFolder layout, `DIR/train/<class>/*` and "
       "`DIR/test/<class>/*`, or `DIR/<class>/*` with a seeded test split; class names are the "
       "folder names ([Your own images](data.md#your-own-images))."},
      {"init", "Where the initial weights come from."},
      {"model",
       "The network. An MLP is Flatten -> [Linear -> activation -> Dropout] per hidden size -> "
       "Linear. A CNN is convolution blocks (each `convs_per_block` x [Conv2d 'same' -> "
       "BatchNorm2d -> activation], then 2x2 pooling and dropout), then the same head as the MLP."},
      {"train", "The training loop."},
      {"early_stopping", "Stopping and choosing the epoch by the validation split."},
      {"augment",
       "On-the-fly augmentation of training batches (never validation or test): one random affine "
       "transform per image, optionally an elastic distortion, drawn from the run's seeded "
       "generator. All zero (the default) = off."},
      {"optim", "The optimiser."},
      {"schedule", "The learning rate over the steps."},
  };
  return kSections;
}

const std::vector<Key>& keys() {
  static const std::vector<Key> kKeys = {
      text("description", at(&Config::description), "free text, kept in the run folder"),
      integer("seed", at(&Config::seed), 0,
              "seeds the initial weights, the validation split, the per-epoch shuffle, dropout "
              "and augmentation"),
      choice("device", at(&Config::device),
             "`auto`: CUDA when LibTorch has it and a GPU is visible, else the CPU"),
      integer("threads", at(&Config::threads), 1,
              "LibTorch's intra-op threads; the plain-MLP training step and inference split their "
              "largest products over two (the MLP configs set 2)"),
      integer("blas_threads", at(&Config::blas_threads), 1,
              "OpenBLAS's own threads for matrix products; 2 makes batch-32 products several "
              "times slower on 2 cores (measured), so 1"),

      text("data.dir", at(&Config::data, &DataConfig::dir),
           "folder with the four IDX files (standard names, each raw or `.gz`), or the image "
           "folder's root; relative paths are taken from the current directory and stored "
           "absolute. Empty: `data/mnist` for MNIST, `/usr/share/datasets/fashion-mnist` "
           "(Debian's `dataset-fashion-mnist`) for Fashion-MNIST; `folder` needs one"),
      choice("data.dataset", at(&Config::data, &DataConfig::dataset),
             "class names, image size and channels, which models take their input channels from"),
      integer("data.val_size", at(&Config::data, &DataConfig::val_size), -1,
              "training images held out for validation by a seeded split; 0 for none; -1: 5000 "
              "for the IDX sets (resolved when the config is read), `data.val_fraction` of the "
              "training images for `folder`"),
      number("data.val_fraction", at(&Config::data, &DataConfig::val_fraction), {0, 1, true, false},
             "`folder` with `data.val_size` -1: the share of the training images held out for "
             "validation (rounded down; at least one image when above 0)"),
      choice("data.preprocess", at(&Config::data, &DataConfig::preprocess),
             "`folder` and `data.extra`: how each image becomes the model's input. `resize`: "
             "the whole image resized to `data.image_size`; `digit`: the digit found and framed "
             "as MNIST's (the preprocessing of `mnist-predict`: background removed, ink cropped, "
             "centred in 28x28), then to `data.channels` and `data.image_size`; for users' "
             "photos and scans of digits. Prediction with the run does the same"),
      integer_list("data.image_size", at(&Config::data, &DataConfig::image_size), 1,
                   "`[height, width]` the images are resized to (area averaging when shrinking, "
                   "bilinear when growing); the IDX sets are `[28, 28]`"),
      integer("data.channels", at(&Config::data, &DataConfig::channels), 1,
              "1 (gray: colour images are converted by luma) or 3 (RGB: gray images are "
              "repeated); the model's input channels"),
      number("data.test_fraction", at(&Config::data, &DataConfig::test_fraction),
             {0, 1, false, false},
             "`folder` without `train/` and `test/`: the fraction of each class's images held out "
             "as the test split, by a seeded draw"),
      boolean("data.skip_bad", at(&Config::data, &DataConfig::skip_bad),
              "`folder`: skip image files that cannot be read, and say how many (with the first "
              "one's path); `false` stops at the first with an error naming it"),
      text_list("data.extra", at(&Config::data, &DataConfig::extra),
                "more image folders `DIR/<class>/*` added to the training split only (never "
                "validation or test), e.g. the corrections the web page saves; their class folders "
                "must be classes of the data set (by name, or its folder-safe spelling)"),
      integer("data.extra_repeat", at(&Config::data, &DataConfig::extra_repeat), 1,
              "each `data.extra` image is used this many times per epoch (a few corrections among "
              "thousands of images need weight to be learned)"),
      boolean("data.cache", at(&Config::data, &DataConfig::cache),
              "`folder` and `data.extra`: keep the decoded images in a cache file keyed by the "
              "folder's listing (names, sizes, modification times) and the reading options; a "
              "changed file rebuilds it"),
      text("data.cache_dir", at(&Config::data, &DataConfig::cache_dir),
           "where the cache files go; empty: `$XDG_CACHE_HOME/mnist`, else `~/.cache/mnist`"),

      text("init.from", at(&Config::init, &InitConfig::from),
           "fine-tuning: a run folder whose `model.pt` gives the initial weights (same "
           "architecture, classes and input; its normalisation is kept); empty: random initial "
           "weights from `seed`"),

      choice("model.type", at(&Config::model, &ModelConfig::type), "the network"),
      integer_list("model.hidden_sizes", at(&Config::model, &ModelConfig::hidden_sizes), 1,
                   "MLP hidden layer widths; for a CNN, the hidden layers of its head"),
      choice("model.activation", at(&Config::model, &ModelConfig::activation),
             "everywhere in the model"),
      number("model.dropout", at(&Config::model, &ModelConfig::dropout), {0, 1, true, false},
             "dropout after each hidden activation (MLP, CNN head)"),
      choice("model.output", at(&Config::model, &ModelConfig::output),
             "how logits become probabilities, and so the loss: `softmax` (cross-entropy) or "
             "`sigmoid` (the Keras tutorial: per-class sigmoids, clipped to [1e-7, 1 - 1e-7] and "
             "normalised, with Keras' `sparse_categorical_crossentropy`)"),
      choice("model.init", at(&Config::model, &ModelConfig::init),
             "initial weights: `torch` (LibTorch's defaults) or `glorot` (Keras': Glorot-uniform "
             "weights, zero biases)"),
      integer_list("model.channels", at(&Config::model, &ModelConfig::channels), 1,
                   "CNN: output channels of each convolution block (at least one block)"),
      integer_list("model.kernel_sizes", at(&Config::model, &ModelConfig::kernel_sizes), 1,
                   "CNN: one odd kernel size per block ('same' padding)"),
      integer("model.convs_per_block", at(&Config::model, &ModelConfig::convs_per_block), 1,
              "CNN: convolutions per block"),
      choice("model.pool", at(&Config::model, &ModelConfig::pool),
             "CNN: 2x2 pooling after each block"),
      boolean("model.batch_norm", at(&Config::model, &ModelConfig::batch_norm),
              "CNN: BatchNorm2d after each convolution (the convolution then has no bias)"),
      number("model.conv_dropout", at(&Config::model, &ModelConfig::conv_dropout),
             {0, 1, true, false}, "CNN: dropout after each block"),
      boolean("model.global_pool", at(&Config::model, &ModelConfig::global_pool),
              "CNN: average each channel over the image before the head (fewer weights)"),

      integer("train.epochs", at(&Config::train, &TrainConfig::epochs), 1,
              "passes over the training split"),
      integer("train.batch_size", at(&Config::train, &TrainConfig::batch_size), 1,
              "images per optimiser step; the last partial batch is used too"),
      integer("train.eval_batch_size", at(&Config::train, &TrainConfig::eval_batch_size), 1,
              "images per forward pass for validation and test (speed only)"),
      integer("train.log_every", at(&Config::train, &TrainConfig::log_every), 1,
              "steps between progress-line refreshes and NaN checks"),
      number("train.label_smoothing", at(&Config::train, &TrainConfig::label_smoothing),
             {0, 1, true, false},
             "needs `model.output` `softmax`: the target puts 1 - s + s/K on the true class and "
             "s/K on the others (training loss only; reported losses are plain)"),
      number("train.ema_decay", at(&Config::train, &TrainConfig::ema_decay), {0, 1, true, false},
             "weight average, 0 = off; else p_avg <- d p_avg + (1 - d) p after every step, d "
             "ramped as min(decay, (1 + t)/(10 + t)); validation, `model.pt` and evaluation then "
             "use the averaged weights"),
      boolean("train.fast_step", at(&Config::train, &TrainConfig::fast_step),
              "plain MLPs (ReLU, no dropout, no label smoothing) on the CPU: the training step's "
              "forward and backward written out into reused buffers, bit-identical to autograd's; "
              "`false` for autograd. `MNIST_PLAIN=1` in the environment turns this and every "
              "other fast path off ([Performance](performance.md))"),
      boolean("train.own_kernels", at(&Config::train, &TrainConfig::own_kernels),
              "with `train.fast_step` on a CPU with AVX2: where the BLAS cannot split the first "
              "layer's products between two threads without changing their bits (OpenBLAS's "
              "AVX2 kernels), the project's own kernels compute them, split, with the same bits "
              "on one thread or two (they round differently from the BLAS, by a few units in "
              "the last place); `false`: the BLAS's whole products on one thread, bit-identical "
              "to autograd's"),
      boolean("train.channels_last", at(&Config::train, &TrainConfig::channels_last),
              "CNNs on the CPU: images and activations in channels-last (NHWC) memory order, "
              "which oneDNN's convolutions and LibTorch's batch norm and pooling run faster than "
              "NCHW (results differ in rounding, reproducibly); `false` for NCHW"),
      boolean("train.adaptive_threads", at(&Config::train, &TrainConfig::adaptive_threads),
              "with `threads` > 1 and the written-out MLP step: while other processes' runnable "
              "tasks (`/proc/stat`, every 200 steps) leave fewer free cores than `threads`, train "
              "with one thread ([busy machines](performance.md#busy-machines)). The results do "
              "not depend on it; `false` keeps `threads`"),

      choice("early_stopping.monitor", at(&Config::early_stopping, &EarlyStoppingConfig::monitor),
             "`val_accuracy` (higher is better) or `val_loss` (lower is better)"),
      integer("early_stopping.patience",
              at(&Config::early_stopping, &EarlyStoppingConfig::patience), 0,
              "stop after this many epochs without an improvement of more than `min_delta`; 0 = "
              "never stop early. Needs `data.val_size` > 0"),
      number("early_stopping.min_delta",
             at(&Config::early_stopping, &EarlyStoppingConfig::min_delta), {0, 1e9},
             "the smallest change that counts as an improvement"),
      boolean("early_stopping.restore_best",
              at(&Config::early_stopping, &EarlyStoppingConfig::restore_best),
              "evaluate and save the best validation epoch's weights (`best_model.pt`) instead of "
              "the last. Needs `data.val_size` > 0"),

      number("augment.rotation", at(&Config::augment, &AugmentConfig::rotation), {0, 180},
             "rotation uniform in [-r, r] degrees"),
      number("augment.translate", at(&Config::augment, &AugmentConfig::translate), {0, 0.5},
             "shift uniform in [-t, t] of the image size, per axis"),
      number("augment.scale", at(&Config::augment, &AugmentConfig::scale), {0, 0.9},
             "zoom uniform in [1 - s, 1 + s]"),
      number("augment.shear", at(&Config::augment, &AugmentConfig::shear), {0, 60},
             "shear uniform in [-s, s] degrees"),
      number("augment.elastic_alpha", at(&Config::augment, &AugmentConfig::elastic_alpha),
             {0, 1000},
             "elastic distortion (Simard et al. 2003) strength in pixels: a random displacement "
             "field smoothed by a Gaussian of `elastic_sigma` pixels; 0 = off"),
      number("augment.elastic_sigma", at(&Config::augment, &AugmentConfig::elastic_sigma),
             {0.5, 100}, "smoothness of the elastic displacement field, in pixels"),
      boolean("augment.hflip", at(&Config::augment, &AugmentConfig::hflip),
              "mirror left-right with probability 1/2 (for clothes; digits are not symmetric)"),
      boolean("augment.blur_by_matmul", at(&Config::augment, &AugmentConfig::blur_by_matmul),
              "the elastic field's Gaussian smoothing as two matrix products with the replicate "
              "border folded in (about 10x faster than the padded single-channel convolutions; "
              "the same sums, rounded differently); `false` for the convolutions"),

      choice("optim.name", at(&Config::optim, &OptimConfig::name),
             "`adamw` has decoupled weight decay"),
      number("optim.lr", at(&Config::optim, &OptimConfig::lr), {0, 10, false, true},
             "peak learning rate (schedules scale it)"),
      number("optim.beta1", at(&Config::optim, &OptimConfig::beta1), {0, 1, true, false},
             "adam, adamw: first-moment decay"),
      number("optim.beta2", at(&Config::optim, &OptimConfig::beta2), {0, 1, true, false},
             "adam, adamw: second-moment decay"),
      number("optim.eps", at(&Config::optim, &OptimConfig::eps), {0, 1},
             "adam, adamw: the denominator term (Keras uses 1e-7)"),
      number("optim.weight_decay", at(&Config::optim, &OptimConfig::weight_decay), {0, 1},
             "L2 (adam, sgd) or decoupled (adamw)"),
      number("optim.momentum", at(&Config::optim, &OptimConfig::momentum), {0, 1, true, false},
             "sgd only"),
      boolean("optim.nesterov", at(&Config::optim, &OptimConfig::nesterov),
              "sgd only; needs `optim.momentum` > 0"),
      boolean("optim.fused", at(&Config::optim, &OptimConfig::fused),
              "adam: one pass over all parameters, flattened into one buffer (`FusedAdam`), "
              "bit-identical to `torch::optim::Adam`; `false` for LibTorch's own"),

      choice("schedule.name", at(&Config::schedule, &ScheduleConfig::name),
             "`cosine`: per step, from lr down to `min_lr`; `onecycle`: cosine up from "
             "lr/div_factor to lr over the first `pct_start` of the steps, then cosine down to "
             "lr/(div_factor x final_div_factor)"),
      integer("schedule.step_epochs", at(&Config::schedule, &ScheduleConfig::step_epochs), 1,
              "step: multiply the lr by `gamma` every this many epochs"),
      number("schedule.gamma", at(&Config::schedule, &ScheduleConfig::gamma), {0, 1},
             "step: the factor"),
      number("schedule.min_lr", at(&Config::schedule, &ScheduleConfig::min_lr), {0, 10},
             "cosine: the lr reached at the end of the last epoch"),
      number("schedule.warmup_epochs", at(&Config::schedule, &ScheduleConfig::warmup_epochs),
             {0, 1e6},
             "constant, step, cosine: the lr rises linearly from 0 over this many epochs "
             "(fractions allowed) before the schedule proper, which then spans the remaining "
             "steps (onecycle warms up by itself)"),
      number("schedule.pct_start", at(&Config::schedule, &ScheduleConfig::pct_start),
             {0, 1, true, false}, "onecycle: the fraction of the steps spent rising"),
      number("schedule.div_factor", at(&Config::schedule, &ScheduleConfig::div_factor), {1, 1e6},
             "onecycle: the starting lr is lr / div_factor"),
      number("schedule.final_div_factor", at(&Config::schedule, &ScheduleConfig::final_div_factor),
             {1, 1e9}, "onecycle: the final lr is lr / (div_factor x final_div_factor)"),
  };
  return kKeys;
}

std::string section_of(const std::string& path) {
  const auto dot = path.find('.');
  return dot == std::string::npos ? "" : path.substr(0, dot);
}

std::string name_in_section(const std::string& path) {
  const auto dot = path.find('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

// The keys of one JSON object must be the section's keys (and, at the top, the sections).
void check_known(const json& object, const std::string& section) {
  std::vector<std::string> known;
  for (const auto& key : keys()) {
    if (section_of(key.path) == section) known.push_back(name_in_section(key.path));
  }
  if (section.empty()) {
    for (const auto& s : sections()) {
      if (!s.name.empty()) known.push_back(s.name);
    }
  }
  for (const auto& item : object.items()) {
    if (std::find(known.begin(), known.end(), item.key()) == known.end()) {
      fail(section.empty() ? item.key() : section + "." + item.key(),
           "unknown key (known here: " + join(known, ", ") + ")");
    }
  }
}

// The rules between keys, each reported at the key a user would change.
void check_rules(Config& c) {
  if (c.data.dir.empty()) c.data.dir = default_data_dir(c.data.dataset);
  if (c.data.image_size.size() != 2) {
    fail("data.image_size",
         "needs [height, width], got " + std::to_string(c.data.image_size.size()) + " numbers");
  }
  for (const int64_t side : c.data.image_size) {
    if (side > 4096) fail("data.image_size", "sides above 4096 pixels are not supported");
  }
  if (c.data.dataset != DatasetName::kFolder &&
      (c.data.image_size[0] != 28 || c.data.image_size[1] != 28)) {
    fail("data.image_size", "the IDX sets are [28, 28]; other sizes need data.dataset \"folder\"");
  }
  if (c.data.channels != 1 && c.data.channels != 3) {
    fail("data.channels", "must be 1 or 3, got " + std::to_string(c.data.channels));
  }
  if (c.model.type == ModelType::kCnn) {
    if (c.model.channels.empty()) fail("model.channels", "a CNN needs at least one block");
    if (c.model.kernel_sizes.size() != c.model.channels.size()) {
      fail("model.kernel_sizes", "needs one entry per block of model.channels (" +
                                     std::to_string(c.model.channels.size()) + "), got " +
                                     std::to_string(c.model.kernel_sizes.size()));
    }
    for (const int64_t k : c.model.kernel_sizes) {
      if (k % 2 == 0) fail("model.kernel_sizes", "kernel sizes must be odd ('same' padding)");
    }
  }
  if (c.train.label_smoothing > 0 && c.model.output != OutputHead::kSoftmax) {
    fail("train.label_smoothing", "needs model.output \"softmax\"");
  }
  if (c.data.val_size == -1 && c.data.dataset != DatasetName::kFolder) {
    c.data.val_size = kIdxValidationImages;
  }
  const bool no_validation =
      c.data.val_size == 0 || (c.data.val_size == -1 && c.data.val_fraction == 0.0);
  if (no_validation) {
    if (c.early_stopping.patience > 0)
      fail("early_stopping.patience", "needs a validation split (data.val_size > 0)");
    if (c.early_stopping.restore_best)
      fail("early_stopping.restore_best", "needs a validation split (data.val_size > 0)");
  }
  if (c.optim.name == Optimizer::kSgd && c.optim.nesterov && c.optim.momentum <= 0.0) {
    fail("optim.nesterov", "needs optim.momentum > 0");
  }
  if (c.schedule.warmup_epochs > 0 && c.schedule.name == Schedule::kOneCycle) {
    fail("schedule.warmup_epochs", "onecycle warms up by itself: use schedule.pct_start");
  }
}

Config convert(const json& j) {
  if (!j.is_object()) fail("(top level)", "must be a JSON object");
  check_known(j, "");
  for (const auto& s : sections()) {
    if (s.name.empty()) continue;
    if (auto it = j.find(s.name); it != j.end()) {
      if (!it->is_object()) fail(s.name, "must be a JSON object");
      check_known(*it, s.name);
    }
  }
  Config c;
  for (const auto& key : keys()) {
    const std::string section = section_of(key.path);
    const json* where = &j;
    if (!section.empty()) {
      auto it = j.find(section);
      if (it == j.end()) continue;
      where = &*it;
    }
    if (auto it = where->find(name_in_section(key.path)); it != where->end()) key.read(*it, c);
  }
  check_rules(c);
  return c;
}

// A value as the reference shows a default.
std::string default_text(const json& v) {
  if (v.is_string())
    return v.get<std::string>().empty() ? "`\"\"`" : "`" + v.get<std::string>() + "`";
  return "`" + v.dump() + "`";
}

}  // namespace

std::string default_data_dir(DatasetName dataset) {
  switch (dataset) {
    case DatasetName::kFashionMnist:
      return "/usr/share/datasets/fashion-mnist";
    case DatasetName::kFolder:
      return "";
    case DatasetName::kMnist:
      break;
  }
  return "data/mnist";
}

std::string default_cache_dir() {
  namespace fs = std::filesystem;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return (fs::path(xdg) / "mnist").string();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return (fs::path(home) / ".cache" / "mnist").string();
  }
  std::error_code ec;
  return (fs::temp_directory_path(ec) / "mnist-cache").string();
}

Config config_from_json(const json& j, const std::string& source) {
  try {
    return convert(j);
  } catch (const Problem& p) {
    throw UsageError(source + ": " + p.key + ": " + p.text);
  }
}

json config_to_json(const Config& config) {
  json j = json::object();
  for (const auto& key : keys()) {
    const std::string section = section_of(key.path);
    json& where = section.empty() ? j : j[section];
    where[name_in_section(key.path)] = key.write(config);
  }
  return j;
}

std::string config_reference_markdown() {
  const Config defaults;
  std::ostringstream out;
  out << "# Configuration reference\n\n"
         "<!-- Generated from lib/src/config/schema.cpp by `mnist-train --config-reference`; a "
         "test\n"
         "     fails when this file and the schema differ. Edit the schema, then regenerate:\n"
         "     build/bin/mnist-train --config-reference > docs/config.md -->\n\n"
         "A config file is a JSON object that gives only the keys that differ from these "
         "defaults;\n`--set key.path=value` overrides one key on the command line (the value is "
         "JSON, else a string).\nUnknown keys, wrong types and values out of range are errors "
         "naming the key. The resolved\nconfig (every key) is saved in each run folder as "
         "`config.json`; `mnist-train --print-config`\nprints it without training. The shipped "
         "configs and the recipes they follow: [Configs](configs.md).\n";
  for (const auto& s : sections()) {
    out << "\n## " << (s.name.empty() ? "Top level" : "`" + s.name + "`") << "\n\n"
        << s.doc << "\n\n| key | type | default | meaning |\n|---|---|---|---|\n";
    for (const auto& key : keys()) {
      if (section_of(key.path) != s.name) continue;
      out << "| `" << key.path << "` | " << key.type << " | " << default_text(key.write(defaults))
          << " | " << key.doc << " |\n";
    }
  }
  return out.str();
}

}  // namespace mnist
