#include "mnist/config/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/io/json.h"

namespace mnist {
namespace {

// Configs are a few levels deep; anything deeper is refused before it is parsed.
constexpr int kMaxConfigDepth = 32;

using nlohmann::json;
namespace fs = std::filesystem;

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

// Reads the keys of one JSON object onto struct fields, remembering which keys it consumed so that
// finish() can reject the rest: every error names the full key path.
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string prefix, const std::string& source)
      : j_(j), prefix_(std::move(prefix)), source_(source) {
    if (!j_.is_object()) fail(prefix_.empty() ? "(top level)" : prefix_, "must be a JSON object");
  }

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw UsageError(source_ + ": " + key + ": " + problem);
  }

  std::string path(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

  // Returns the value at `key` or nullptr when absent; marks the key as known either way.
  const json* find(const char* key) {
    known_.push_back(key);
    auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }

  void integer(const char* key, int64_t& out, int64_t min) {
    if (const json* v = find(key)) {
      if (!v->is_number_integer()) fail(path(key), "must be an integer, got " + shown(*v));
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
        fail(path(key), "is too large, got " + shown(*v));
      }
      const auto value = v->get<int64_t>();
      if (value < min)
        fail(path(key), "must be at least " + std::to_string(min) + ", got " + shown(*v));
      out = value;
    }
  }

  void number(const char* key, double& out, double min, double max, bool max_inclusive = true) {
    if (const json* v = find(key)) {
      if (!v->is_number()) fail(path(key), "must be a number, got " + shown(*v));
      const double value = v->get<double>();
      const bool above = max_inclusive ? value > max : value >= max;
      if (!(value >= min) || above) {
        std::ostringstream range;
        range << "must be in [" << min << ", " << max << (max_inclusive ? "]" : ")");
        fail(path(key), range.str() + ", got " + shown(*v));
      }
      out = value;
    }
  }

  void boolean(const char* key, bool& out) {
    if (const json* v = find(key)) {
      if (!v->is_boolean()) fail(path(key), "must be true or false, got " + shown(*v));
      out = v->get<bool>();
    }
  }

  void string(const char* key, std::string& out, const std::vector<std::string>& allowed = {}) {
    if (const json* v = find(key)) {
      if (!v->is_string()) fail(path(key), "must be a string, got " + shown(*v));
      auto value = v->get<std::string>();
      if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
        fail(path(key), "must be one of " + join(allowed, ", ") + "; got \"" + value + "\"");
      }
      out = std::move(value);
    }
  }

  void integer_list(const char* key, std::vector<int64_t>& out, int64_t min) {
    if (const json* v = find(key)) {
      if (!v->is_array()) fail(path(key), "must be a list of integers, got " + shown(*v));
      std::vector<int64_t> values;
      for (const auto& item : *v) {
        if (!item.is_number_integer() || item.get<int64_t>() < min) {
          fail(path(key),
               "must be a list of integers >= " + std::to_string(min) + ", got " + shown(*v));
        }
        values.push_back(item.get<int64_t>());
      }
      out = std::move(values);
    }
  }

  // A nested section: `read` gets a reader for it (absent sections keep their defaults).
  template <typename Fn>
  void section(const char* key, Fn&& read) {
    static const json kEmpty = json::object();
    const json* v = find(key);
    ObjectReader sub(v ? *v : kEmpty, path(key), source_);
    read(sub);
    sub.finish();
  }

  void finish() const {
    for (const auto& item : j_.items()) {
      if (std::find(known_.begin(), known_.end(), item.key()) == known_.end()) {
        fail(path(item.key().c_str()), "unknown key (known here: " + join(known_, ", ") + ")");
      }
    }
  }

 private:
  const json& j_;
  std::string prefix_;
  const std::string& source_;
  std::vector<std::string> known_;
};

Config convert(const json& j, const std::string& source) {
  Config c;
  ObjectReader r(j, "", source);
  r.string("description", c.description);
  r.integer("seed", c.seed, 0);
  r.string("device", c.device, {"auto", "cpu", "cuda"});
  r.integer("threads", c.threads, 1);
  r.integer("blas_threads", c.blas_threads, 1);
  r.section("data", [&](ObjectReader& s) {
    s.string("dir", c.data.dir);
    s.string("dataset", c.data.dataset, {"mnist", "fashion-mnist"});
    s.integer("val_size", c.data.val_size, 0);
    if (c.data.dir.empty()) c.data.dir = default_data_dir(c.data.dataset);
  });
  r.section("model", [&](ObjectReader& s) {
    s.string("type", c.model.type, {"mlp", "cnn"});
    s.integer_list("hidden_sizes", c.model.hidden_sizes, 1);
    s.string("activation", c.model.activation, {"relu", "tanh", "sigmoid", "gelu"});
    s.number("dropout", c.model.dropout, 0.0, 1.0, /*max_inclusive=*/false);
    s.string("output", c.model.output, {"softmax", "sigmoid"});
    s.string("init", c.model.init, {"torch", "glorot"});
    s.integer_list("channels", c.model.channels, 1);
    s.integer_list("kernel_sizes", c.model.kernel_sizes, 1);
    s.integer("convs_per_block", c.model.convs_per_block, 1);
    s.string("pool", c.model.pool, {"max", "avg", "none"});
    s.boolean("batch_norm", c.model.batch_norm);
    s.number("conv_dropout", c.model.conv_dropout, 0.0, 1.0, /*max_inclusive=*/false);
    s.boolean("global_pool", c.model.global_pool);
    if (c.model.type == "cnn") {
      if (c.model.channels.empty()) s.fail(s.path("channels"), "a CNN needs at least one block");
      if (c.model.kernel_sizes.size() != c.model.channels.size()) {
        s.fail(s.path("kernel_sizes"), "needs one entry per block of model.channels (" +
                                           std::to_string(c.model.channels.size()) + "), got " +
                                           std::to_string(c.model.kernel_sizes.size()));
      }
      for (const int64_t k : c.model.kernel_sizes) {
        if (k % 2 == 0) s.fail(s.path("kernel_sizes"), "kernel sizes must be odd ('same' padding)");
      }
    }
  });
  r.section("train", [&](ObjectReader& s) {
    s.integer("epochs", c.train.epochs, 1);
    s.integer("batch_size", c.train.batch_size, 1);
    s.integer("eval_batch_size", c.train.eval_batch_size, 1);
    s.integer("log_every", c.train.log_every, 1);
    s.number("label_smoothing", c.train.label_smoothing, 0.0, 1.0, /*max_inclusive=*/false);
    if (c.train.label_smoothing > 0 && c.model.output != "softmax") {
      s.fail(s.path("label_smoothing"), "needs model.output \"softmax\"");
    }
    s.number("ema_decay", c.train.ema_decay, 0.0, 1.0, /*max_inclusive=*/false);
    s.boolean("fast_step", c.train.fast_step);
    s.boolean("adaptive_threads", c.train.adaptive_threads);
  });
  r.section("early_stopping", [&](ObjectReader& s) {
    s.string("monitor", c.early_stopping.monitor, {"val_accuracy", "val_loss"});
    s.integer("patience", c.early_stopping.patience, 0);
    s.number("min_delta", c.early_stopping.min_delta, 0.0, 1e9);
    s.boolean("restore_best", c.early_stopping.restore_best);
    const bool needs_val = c.early_stopping.patience > 0 || c.early_stopping.restore_best;
    if (needs_val && c.data.val_size == 0) {
      s.fail(c.early_stopping.patience > 0 ? s.path("patience") : s.path("restore_best"),
             "needs a validation split (data.val_size > 0)");
    }
  });
  r.section("augment", [&](ObjectReader& s) {
    s.number("rotation", c.augment.rotation, 0.0, 180.0);
    s.number("translate", c.augment.translate, 0.0, 0.5);
    s.number("scale", c.augment.scale, 0.0, 0.9);
    s.number("shear", c.augment.shear, 0.0, 60.0);
    s.number("elastic_alpha", c.augment.elastic_alpha, 0.0, 1000.0);
    s.number("elastic_sigma", c.augment.elastic_sigma, 0.5, 100.0);
    s.boolean("hflip", c.augment.hflip);
  });
  r.section("optim", [&](ObjectReader& s) {
    s.string("name", c.optim.name, {"adam", "adamw", "sgd"});
    s.number("lr", c.optim.lr, 0.0, 10.0);
    if (!(c.optim.lr > 0.0)) s.fail(s.path("lr"), "must be greater than 0");
    s.number("beta1", c.optim.beta1, 0.0, 1.0, false);
    s.number("beta2", c.optim.beta2, 0.0, 1.0, false);
    s.number("eps", c.optim.eps, 0.0, 1.0);
    s.number("weight_decay", c.optim.weight_decay, 0.0, 1.0);
    s.number("momentum", c.optim.momentum, 0.0, 1.0, false);
    s.boolean("nesterov", c.optim.nesterov);
    s.boolean("fused", c.optim.fused);
  });
  r.section("schedule", [&](ObjectReader& s) {
    s.string("name", c.schedule.name, {"constant", "step", "cosine", "onecycle"});
    s.integer("step_epochs", c.schedule.step_epochs, 1);
    s.number("gamma", c.schedule.gamma, 0.0, 1.0);
    s.number("min_lr", c.schedule.min_lr, 0.0, 10.0);
    s.number("warmup_epochs", c.schedule.warmup_epochs, 0.0, 1e6);
    if (c.schedule.warmup_epochs > 0 && c.schedule.name == "onecycle") {
      s.fail(s.path("warmup_epochs"), "onecycle warms up by itself: use schedule.pct_start");
    }
    s.number("pct_start", c.schedule.pct_start, 0.0, 1.0, /*max_inclusive=*/false);
    s.number("div_factor", c.schedule.div_factor, 1.0, 1e6);
    s.number("final_div_factor", c.schedule.final_div_factor, 1.0, 1e9);
  });
  r.finish();
  return c;
}

}  // namespace

std::string default_data_dir(const std::string& dataset) {
  if (dataset == "fashion-mnist") return "/usr/share/datasets/fashion-mnist";
  return "data/mnist";
}

Config config_from_json(const json& j, const std::string& source) {
  return convert(j, source);
}

json config_to_json(const Config& c) {
  return json{
      {"description", c.description},
      {"seed", c.seed},
      {"device", c.device},
      {"threads", c.threads},
      {"blas_threads", c.blas_threads},
      {"data", {{"dir", c.data.dir}, {"dataset", c.data.dataset}, {"val_size", c.data.val_size}}},
      {"model",
       {{"type", c.model.type},
        {"hidden_sizes", c.model.hidden_sizes},
        {"activation", c.model.activation},
        {"dropout", c.model.dropout},
        {"output", c.model.output},
        {"init", c.model.init},
        {"channels", c.model.channels},
        {"kernel_sizes", c.model.kernel_sizes},
        {"convs_per_block", c.model.convs_per_block},
        {"pool", c.model.pool},
        {"batch_norm", c.model.batch_norm},
        {"conv_dropout", c.model.conv_dropout},
        {"global_pool", c.model.global_pool}}},
      {"train",
       {{"epochs", c.train.epochs},
        {"batch_size", c.train.batch_size},
        {"eval_batch_size", c.train.eval_batch_size},
        {"log_every", c.train.log_every},
        {"label_smoothing", c.train.label_smoothing},
        {"ema_decay", c.train.ema_decay},
        {"fast_step", c.train.fast_step},
        {"adaptive_threads", c.train.adaptive_threads}}},
      {"early_stopping",
       {{"monitor", c.early_stopping.monitor},
        {"patience", c.early_stopping.patience},
        {"min_delta", c.early_stopping.min_delta},
        {"restore_best", c.early_stopping.restore_best}}},
      {"augment",
       {{"rotation", c.augment.rotation},
        {"translate", c.augment.translate},
        {"scale", c.augment.scale},
        {"shear", c.augment.shear},
        {"elastic_alpha", c.augment.elastic_alpha},
        {"elastic_sigma", c.augment.elastic_sigma},
        {"hflip", c.augment.hflip}}},
      {"optim",
       {{"name", c.optim.name},
        {"lr", c.optim.lr},
        {"beta1", c.optim.beta1},
        {"beta2", c.optim.beta2},
        {"eps", c.optim.eps},
        {"weight_decay", c.optim.weight_decay},
        {"momentum", c.optim.momentum},
        {"nesterov", c.optim.nesterov},
        {"fused", c.optim.fused}}},
      {"schedule",
       {{"name", c.schedule.name},
        {"step_epochs", c.schedule.step_epochs},
        {"gamma", c.schedule.gamma},
        {"min_lr", c.schedule.min_lr},
        {"warmup_epochs", c.schedule.warmup_epochs},
        {"pct_start", c.schedule.pct_start},
        {"div_factor", c.schedule.div_factor},
        {"final_div_factor", c.schedule.final_div_factor}}},
  };
}

json read_json_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UsageError(path + ": is a directory, not a JSON file");
  if (!std::ifstream(path)) throw UsageError(path + ": cannot open (does the file exist?)");
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const DataError& e) {
    throw UsageError(e.what());  // the config named on the command line
  }
  json j = parse_json_text(text, path, kMaxConfigDepth);
  if (!j.is_object()) throw UsageError(path + ": must hold a JSON object");
  return j;
}

void apply_override(json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string where = "--set " + assignment;
  if (eq == std::string::npos || eq == 0) throw UsageError(where + ": expected key.path=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);

  json value;
  if (json::accept(text)) {
    value = parse_json_text(text, where + ": " + key, kMaxConfigDepth);
  } else {
    value = text;  // not JSON: a plain string such as a path or a name
    try {
      (void)value.dump();  // the run folder's config.json must be able to hold it
    } catch (const json::type_error&) {
      throw UsageError(where + ": " + key + ": the value is not valid UTF-8 text");
    }
  }

  json* node = &j;
  std::string walked;
  std::stringstream parts(key);
  std::string part;
  std::vector<std::string> names;
  while (std::getline(parts, part, '.')) names.push_back(part);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) throw UsageError(where + ": empty key component in \"" + key + "\"");
    walked += (walked.empty() ? "" : ".") + names[i];
    if (!node->is_object())
      throw UsageError(where + ": " + walked + ": its parent is not a section");
    if (i + 1 == names.size()) {
      (*node)[names[i]] = value;
    } else {
      node = &(*node)[names[i]];
      if (node->is_null()) *node = json::object();
    }
  }
}

namespace {

// Overrides are checked one by one, so that an error names the --set at fault; relative paths are
// then taken from the current directory and stored absolute.
Config finish_config(json& j, Config config, const std::vector<std::string>& overrides) {
  for (const auto& assignment : overrides) {
    apply_override(j, assignment);
    config = config_from_json(j, "--set " + assignment);
  }
  config.data.dir = fs::absolute(config.data.dir).lexically_normal().string();
  return config;
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json j = read_json_file(path);
  return finish_config(j, config_from_json(j, path), overrides);
}

Config load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const std::string path = (fs::path(run_dir) / "config.json").string();
  json j;
  Config config;
  try {
    j = read_json_file(path);
    config = config_from_json(j, path);
  } catch (const UsageError& e) {
    throw DataError(e.what());  // a run folder's own file is data read during the run
  }
  return finish_config(j, std::move(config), overrides);
}

}  // namespace mnist
