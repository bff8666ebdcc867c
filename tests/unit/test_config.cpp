// The config: defaults, strictness (unknown keys, wrong types, ranges: each error names the full
// key path and where it came from), --set overrides with the same checks, and path resolution.

#include <filesystem>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/config/config.h"
#include "mnist/core/error.h"
#include "mnist/data/dataset.h"
#include "mnist/models/factory.h"
#include "support.h"

namespace mnist {
namespace {

using nlohmann::json;
using testing::TempDir;

// The message of the UsageError that converting `j` throws, or "" when it converts.
std::string error_of(const json& j) {
  try {
    config_from_json(j, "cfg.json");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Config, EmptyObjectGivesTheDocumentedDefaults) {
  const Config c = config_from_json(json::object(), "x");
  EXPECT_EQ(c.seed, 1);
  EXPECT_EQ(c.device, Device::kAuto);
  EXPECT_EQ(c.model.type, ModelType::kMlp);
  EXPECT_EQ(c.model.hidden_sizes, (std::vector<int64_t>{150, 50}));
  EXPECT_EQ(c.train.epochs, 10);
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-3);
  EXPECT_EQ(c.data.dataset, DatasetName::kMnist);
}

TEST(Config, RoundTripsThroughItsJson) {
  json j = {{"seed", 7}, {"model", {{"hidden_sizes", {64, 32, 16}}, {"output", "sigmoid"}}}};
  const Config c = config_from_json(j, "x");
  const json resolved = config_to_json(c);
  EXPECT_EQ(config_to_json(config_from_json(resolved, "y")), resolved);
  EXPECT_EQ(resolved["model"]["hidden_sizes"], json({64, 32, 16}));
  EXPECT_EQ(resolved["seed"], 7);
}

TEST(Config, UnknownKeysAreErrorsNamingTheFullPath) {
  EXPECT_EQ(error_of({{"sead", 1}}).rfind("cfg.json: sead: unknown key", 0), 0u)
      << error_of({{"sead", 1}});
  EXPECT_NE(error_of({{"train", {{"epoch", 1}}}}).find("cfg.json: train.epoch: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of({{"train", {{"epoch", 1}}}}).find("epochs"),
            std::string::npos);  // lists the known keys
}

TEST(Config, WrongTypesAndRangesAreErrorsNamingTheKey) {
  EXPECT_NE(
      error_of({{"train", {{"epochs", 2.5}}}}).find("train.epochs: must be an integer, got 2.5"),
      std::string::npos);
  EXPECT_NE(error_of({{"train", {{"epochs", 0}}}}).find("train.epochs: must be at least 1"),
            std::string::npos);
  EXPECT_NE(error_of({{"train", {{"batch_size", 0}}}}).find("train.batch_size"), std::string::npos);
  EXPECT_NE(error_of({{"train", {{"epochs", "3"}}}}).find("train.epochs: must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of({{"seed", -1}}).find("seed: must be at least 0"), std::string::npos);
  EXPECT_NE(error_of({{"device", "gpu"}}).find("device: must be one of auto, cpu, cuda"),
            std::string::npos);
  EXPECT_NE(error_of({{"model", {{"type", "rnn"}}}}).find("model.type"), std::string::npos);
  EXPECT_NE(error_of({{"model", {{"hidden_sizes", {150, 0}}}}}).find("model.hidden_sizes"),
            std::string::npos);
  EXPECT_NE(error_of({{"model", {{"dropout", 1.0}}}}).find("model.dropout: must be in [0, 1)"),
            std::string::npos);
  EXPECT_NE(error_of({{"optim", {{"lr", 0}}}}).find("optim.lr: must be in (0, 10], got 0"),
            std::string::npos);
  EXPECT_NE(error_of({{"optim", {{"nesterov", 1}}}}).find("optim.nesterov: must be true or false"),
            std::string::npos);
  EXPECT_NE(error_of({{"data", 5}}).find("data: must be a JSON object"), std::string::npos);
  EXPECT_NE(error_of({{"data", {{"dataset", "cifar"}}}}).find("data.dataset"), std::string::npos);
  EXPECT_NE(error_of(json::parse(R"({"seed": 18446744073709551615})")).find("seed: is too large"),
            std::string::npos);
  EXPECT_EQ(error_of({{"train", {{"epochs", 3}}}}), "");
}

TEST(Config, OverridesParseJsonValuesElseStrings) {
  json j = json::object();
  apply_override(j, "train.epochs=3");
  apply_override(j, "model.hidden_sizes=[10,20]");
  apply_override(j, "data.dir=some/where");
  apply_override(j, "optim.nesterov=true");
  const Config c = config_from_json(j, "x");
  EXPECT_EQ(c.train.epochs, 3);
  EXPECT_EQ(c.model.hidden_sizes, (std::vector<int64_t>{10, 20}));
  EXPECT_EQ(c.data.dir, "some/where");
  EXPECT_TRUE(c.optim.nesterov);
  EXPECT_THROW(apply_override(j, "no-equals-sign"), UsageError);
  EXPECT_THROW(apply_override(j, "=5"), UsageError);
  EXPECT_THROW(apply_override(j, "train..epochs=5"), UsageError);
  EXPECT_THROW(apply_override(j, "train.epochs.x=5"), UsageError);  // epochs is not a section
}

TEST(Config, LoadConfigChecksOverridesAndNamesTheirSource) {
  TempDir dir;
  testing::write_bytes(dir / "c.json", R"({"train": {"epochs": 2}, "data": {"dir": "rel/data"}})");
  const Config c = load_config(dir / "c.json", {"seed=9"});
  EXPECT_EQ(c.seed, 9);
  EXPECT_EQ(c.train.epochs, 2);
  // Relative paths are taken from the current directory and stored absolute.
  EXPECT_EQ(c.data.dir, (std::filesystem::current_path() / "rel/data").lexically_normal().string());
  try {
    load_config(dir / "c.json", {"train.epochs=2.5"});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--set train.epochs=2.5: train.epochs: must be an integer, got 2.5");
  }
  try {
    load_config(dir / "c.json", {"train.epoch=3"});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("train.epoch: unknown key"), std::string::npos);
  }
}

TEST(Config, FileErrorsNameTheFile) {
  TempDir dir;
  try {
    load_config(dir / "missing.json", {});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "missing.json"), std::string::npos);
  }
  testing::write_bytes(dir / "bad.json", "{\"seed\": 1,,}");
  try {
    load_config(dir / "bad.json", {});
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir / "bad.json: not valid JSON"), std::string::npos)
        << e.what();
  }
  testing::write_bytes(dir / "list.json", "[1, 2]");
  EXPECT_THROW(load_config(dir / "list.json", {}), UsageError);
}

// The message of the UsageError that load_config throws, or "" when it loads.
std::string load_error(const std::string& path, const std::vector<std::string>& overrides = {}) {
  try {
    load_config(path, overrides);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

// A value nested a hundred thousand levels deep crashed mnist-train (the parser and the
// destructor recurse); a number beyond a double's range was nlohmann's own error, exit 1.
TEST(Config, HostileJsonIsAUsageErrorNamingTheFileAndKey) {
  TempDir dir;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  testing::write_bytes(dir / "deep.json", R"({"train": {"epochs": )" + deep + "}}");
  EXPECT_EQ(load_error(dir / "deep.json"), dir / "deep.json: nested deeper than 32 levels");
  testing::write_bytes(dir / "ok.json", "{}");
  EXPECT_NE(load_error(dir / "ok.json", {"train.epochs=" + deep}).find("nested deeper than 32"),
            std::string::npos);

  testing::write_bytes(dir / "huge.json", R"({"seed": 1, "train": {"epochs": 1e400}})");
  const std::string huge = load_error(dir / "huge.json");
  EXPECT_EQ(huge.rfind(dir / "huge.json: train.epochs: number out of range", 0), 0u) << huge;
  const std::string set = load_error(dir / "ok.json", {"train.epochs=1e400"});
  EXPECT_NE(set.find("train.epochs"), std::string::npos) << set;
  // A string that holds brackets is not nesting.
  testing::write_bytes(dir / "text.json", R"({"description": ")" + std::string(100, '[') + R"("})");
  EXPECT_EQ(load_error(dir / "text.json"), "");
}

TEST(Config, ARunFoldersOwnBrokenConfigIsADataError) {
  TempDir dir;
  testing::write_bytes(dir / "config.json", R"({"seed": "x"})");
  EXPECT_THROW(load_run_config(dir.path(), {}), DataError);
  testing::write_bytes(dir / "config.json", R"({"seed": 1})");
  EXPECT_THROW(load_run_config(dir.path(), {"seed=-2"}), UsageError);
}

TEST(Config, RecipeKeysAreCheckedNamingTheKey) {
  EXPECT_NE(error_of({{"model", {{"type", "cnn"}, {"channels", {8, 16}}, {"kernel_sizes", {3}}}}})
                .find("model.kernel_sizes: needs one entry per block"),
            std::string::npos);
  EXPECT_NE(error_of({{"model", {{"type", "cnn"}, {"channels", {8}}, {"kernel_sizes", {4}}}}})
                .find("model.kernel_sizes: kernel sizes must be odd"),
            std::string::npos);
  EXPECT_NE(error_of({{"model", {{"pool", "min"}}}}).find("model.pool: must be one of"),
            std::string::npos);
  EXPECT_NE(error_of({{"model", {{"output", "sigmoid"}}}, {"train", {{"label_smoothing", 0.1}}}})
                .find("train.label_smoothing: needs model.output"),
            std::string::npos);
  EXPECT_NE(error_of({{"train", {{"ema_decay", 1.0}}}}).find("train.ema_decay: must be in"),
            std::string::npos);
  EXPECT_NE(error_of({{"data", {{"val_size", 0}}}, {"early_stopping", {{"patience", 3}}}})
                .find("early_stopping.patience: needs a validation split"),
            std::string::npos);
  EXPECT_NE(error_of({{"early_stopping", {{"monitor", "accuracy"}}}})
                .find("early_stopping.monitor: must be one of"),
            std::string::npos);
  EXPECT_NE(error_of({{"augment", {{"rotation", -5}}}}).find("augment.rotation: must be in"),
            std::string::npos);
  EXPECT_NE(error_of({{"augment", {{"flip", true}}}}).find("augment.flip: unknown key"),
            std::string::npos);
  EXPECT_NE(error_of({{"optim", {{"name", "sgd"}, {"momentum", 0}, {"nesterov", true}}}})
                .find("optim.nesterov: needs optim.momentum > 0"),
            std::string::npos);
  EXPECT_NE(error_of({{"schedule", {{"name", "onecycle"}, {"warmup_epochs", 1}}}})
                .find("schedule.warmup_epochs: onecycle warms up by itself"),
            std::string::npos);
  // Every recipe key is off by default.
  const Config c = config_from_json(json::object(), "x");
  EXPECT_FALSE(c.augment.enabled());
  EXPECT_EQ(c.train.label_smoothing, 0.0);
  EXPECT_EQ(c.train.ema_decay, 0.0);
  EXPECT_EQ(c.early_stopping.patience, 0);
  EXPECT_FALSE(c.early_stopping.restore_best);
  EXPECT_EQ(c.schedule.warmup_epochs, 0.0);
  EXPECT_EQ(c.optim.weight_decay, 0.0);
}

TEST(Config, DataDirDefaultsToTheDataSetsPlace) {
  EXPECT_EQ(config_from_json(json::object(), "x").data.dir, "data/mnist");
  EXPECT_EQ(config_from_json({{"data", {{"dataset", "fashion-mnist"}}}}, "x").data.dir,
            "/usr/share/datasets/fashion-mnist");
  EXPECT_EQ(config_from_json({{"data", {{"dir", "x/y"}}}}, "x").data.dir, "x/y");
}

// data.val_size -1 (the default) is the IDX sets' 5,000, resolved when the config is read, and a
// share of the training images (data.val_fraction) for folders, resolved when they are read.
TEST(Config, TheValidationSplitDefaultsToTheDataSetsKind) {
  EXPECT_EQ(config_from_json(json::object(), "x").data.val_size, 5000);
  EXPECT_EQ(config_from_json({{"data", {{"dataset", "fashion-mnist"}}}}, "x").data.val_size, 5000);
  const Config folder = config_from_json({{"data", {{"dataset", "folder"}, {"dir", "d"}}}}, "x");
  EXPECT_EQ(folder.data.val_size, -1);
  EXPECT_EQ(folder.data.val_fraction, 0.1);
  EXPECT_EQ(config_from_json({{"data", {{"val_size", 7}}}}, "x").data.val_size, 7);
  EXPECT_NE(error_of({{"data", {{"val_size", -2}}}}).find("data.val_size: must be at least -1"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"data", {{"val_fraction", 1}}}}).find("data.val_fraction: must be in [0, 1)"),
      std::string::npos);
  // No validation images, no early stopping: with a count of 0 or a folder's fraction of 0.
  EXPECT_NE(error_of({{"data", {{"dataset", "folder"}, {"dir", "d"}, {"val_fraction", 0}}},
                      {"early_stopping", {{"patience", 3}}}})
                .find("early_stopping.patience"),
            std::string::npos);
  EXPECT_EQ(config_from_json({{"data", {{"preprocess", "digit"}}}}, "x").data.preprocess,
            FolderPreprocess::kDigit);
  EXPECT_NE(error_of({{"data", {{"preprocess", "crop"}}}})
                .find("data.preprocess: must be one of resize, digit"),
            std::string::npos);
}

TEST(Config, ShippedConfigsLoad) {
  int found = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::string(MNIST_SOURCE_DIR) + "/configs")) {
    if (entry.path().extension() != ".json") continue;
    ++found;
    const Config c = load_config(entry.path().string(), {});
    torch::manual_seed(0);
    DatasetInfo info = dataset_info(c.data.dataset);
    info.channels = c.data.channels;
    if (c.data.dataset == DatasetName::kFolder) {  // MNIST-M: the geometry is the config's
      info.height = c.data.image_size[0];
      info.width = c.data.image_size[1];
      info.class_names = dataset_info(DatasetName::kMnist).class_names;
    }
    auto model = build_model(c.model, info);
    EXPECT_EQ(model->forward(torch::rand({2, info.channels, info.height, info.width})).sizes(),
              torch::IntArrayRef({2, 10}))
        << entry.path();
    if (c.model.type == ModelType::kMlp && c.data.dataset == DatasetName::kMnist) {
      EXPECT_EQ(c.model.hidden_sizes, (std::vector<int64_t>{150, 50})) << entry.path();
    }
  }
  EXPECT_GE(found, 6);

  // The quick CNN recipe is mnist_cnn.json's with a shorter schedule, nothing else (docs/results.md
  // measures both; a change to one that forgets the other fails here).
  {
    const std::string dir = std::string(MNIST_SOURCE_DIR) + "/configs/";
    const Config best = load_config(dir + "mnist_cnn.json", {});
    Config quick = load_config(dir + "mnist_cnn_quick.json", {});
    EXPECT_EQ(quick.train.epochs, 10);
    EXPECT_LT(quick.train.epochs, best.train.epochs);
    quick.train.epochs = best.train.epochs;
    quick.description = best.description;
    EXPECT_EQ(config_to_json(quick).dump(), config_to_json(best).dump());

    // The swept recipe (configs/sweeps/mnist_cnn_schedule.json's best trial, rounded) is the quick
    // recipe with only the keys that sweep searched changed.
    Config swept = load_config(dir + "mnist_cnn_short.json", {});
    quick = load_config(dir + "mnist_cnn_quick.json", {});
    EXPECT_EQ(swept.train.epochs, 7);
    swept.train.epochs = quick.train.epochs;
    swept.train.batch_size = quick.train.batch_size;
    swept.optim.lr = quick.optim.lr;
    swept.augment.rotation = quick.augment.rotation;
    swept.augment.elastic_alpha = quick.augment.elastic_alpha;
    swept.description = quick.description;
    EXPECT_EQ(config_to_json(swept).dump(), config_to_json(quick).dump());
  }

  for (const char* name : {"mnist_mlp_seed.json", "mnist_mlp.json"}) {
    const Config c = load_config(std::string(MNIST_SOURCE_DIR) + "/configs/" + name, {});
    EXPECT_EQ(c.model.hidden_sizes, (std::vector<int64_t>{150, 50})) << name;
    EXPECT_EQ(c.train.batch_size, 32) << name;
    EXPECT_EQ(c.train.epochs, 10) << name;
  }
  const Config seed =
      load_config(std::string(MNIST_SOURCE_DIR) + "/configs/mnist_mlp_seed.json", {});
  EXPECT_EQ(seed.model.output, OutputHead::kSigmoid);
  EXPECT_EQ(seed.model.init, Init::kGlorot);
  EXPECT_DOUBLE_EQ(seed.optim.eps, 1e-7);
}

// Found by fuzzing (tests/fuzz/regressions/config/): a --set value that is not UTF-8 made
// nlohmann's dump() throw its own type_error (exit 1, its message) instead of a UsageError naming
// the --set.
TEST(Config, ASetValueThatIsNotUtf8IsAUsageErrorNamingIt) {
  testing::TempDir dir;
  testing::write_bytes(dir / "c.json", "{}");
  for (const std::string value : {"\xff\xfe", "abc\x80", "runs/\xc3"}) {
    try {
      load_config(dir / "c.json", {"data.dir=" + value});
      ADD_FAILURE() << "accepted";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("--set data.dir="), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("not valid UTF-8"), std::string::npos) << e.what();
    }
  }
  // A non-UTF-8 string inside a wrong-typed value is shown in the message, not thrown on.
  try {
    load_config(dir / "c.json", {"model.hidden_sizes=[1,2]", "train.epochs=\xff"});
    ADD_FAILURE() << "accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("train.epochs"), std::string::npos) << e.what();
  }
}

// Every input the config fuzzer once failed on gives a UsageError now (its format: overrides, a NUL
// byte, the config text).
TEST(Config, FuzzRegressionsAreUsageErrors) {
  testing::TempDir dir;
  int seen = 0;
  for (const auto& e : std::filesystem::directory_iterator(std::string(MNIST_SOURCE_DIR) +
                                                           "/tests/fuzz/regressions/config")) {
    const std::string bytes = testing::read_bytes(e.path().string());
    const auto zero = bytes.find('\0');
    if (zero == std::string::npos) continue;
    std::vector<std::string> overrides;
    std::stringstream lines(bytes.substr(0, zero));
    for (std::string line; std::getline(lines, line);) overrides.push_back(line);
    testing::write_bytes(dir / "c.json", bytes.substr(zero + 1));
    ++seen;
    // Each must be refused: one accepted would mean the check that now refuses it is gone.
    EXPECT_THROW(load_config(dir / "c.json", overrides), UsageError) << e.path();
  }
  EXPECT_GE(seen, 1);
}

// docs/config.md is generated from the schema (mnist-train --config-reference); a change to a key
// that does not regenerate it fails here, naming the command that does.
TEST(Config, DocsConfigMdIsTheGeneratedReference) {
  const std::string path = std::string(MNIST_SOURCE_DIR) + "/docs/config.md";
  EXPECT_EQ(testing::read_bytes(path), config_reference_markdown())
      << path << " is out of date: build/bin/mnist-train --config-reference > docs/config.md";
}

// The reference names every key that config_to_json writes, with its default, once.
TEST(Config, TheReferenceListsEveryKeyWithItsDefault) {
  const std::string reference = config_reference_markdown();
  const json defaults = config_to_json(config_from_json(json::object(), "x"));
  int keys = 0;
  for (const auto& [name, value] : defaults.items()) {
    const auto check = [&](const std::string& path, const json& v) {
      ++keys;
      const std::string row = "| `" + path + "` |";
      const auto at = reference.find(row);
      ASSERT_NE(at, std::string::npos) << path;
      EXPECT_EQ(reference.find(row, at + 1), std::string::npos) << path << " listed twice";
      if (path == "data.dir" || path == "data.val_size") return;  // resolved from data.dataset
      const std::string line = reference.substr(at, reference.find('\n', at) - at);
      const std::string shown = v.is_string() ? v.get<std::string>() : v.dump();
      EXPECT_NE(line.find("`" + (shown.empty() ? "\"\"" : shown) + "`"), std::string::npos) << line;
    };
    if (value.is_object()) {
      for (const auto& [key, v] : value.items()) check(name + "." + key, v);
    } else {
      check(name, value);
    }
  }
  EXPECT_EQ(keys, 71);
}

// Each enumerated key takes exactly its names, and writes back the name it read.
TEST(Config, ChoicesRoundTripByName) {
  for (const char* name : {"relu", "tanh", "sigmoid", "gelu"}) {
    const Config c = config_from_json({{"model", {{"activation", name}}}}, "x");
    EXPECT_STREQ(name_of(c.model.activation), name);
    EXPECT_EQ(config_to_json(c)["model"]["activation"], name);
  }
  EXPECT_EQ(config_from_json({{"schedule", {{"name", "onecycle"}}}}, "x").schedule.name,
            Schedule::kOneCycle);
  EXPECT_EQ(config_from_json({{"data", {{"dataset", "fashion-mnist"}}}}, "x").data.dataset,
            DatasetName::kFashionMnist);
  EXPECT_NE(error_of({{"model", {{"activation", "RELU"}}}})
                .find("model.activation: must be one of relu, tanh, sigmoid, gelu; got \"RELU\""),
            std::string::npos);
  EXPECT_NE(error_of({{"model", {{"activation", 1}}}}).find("model.activation: must be a string"),
            std::string::npos);
  EXPECT_FALSE(enum_from_name<Pool>("min").has_value());
  EXPECT_EQ(enum_from_name<Pool>("avg"), Pool::kAvg);
}

// The image-folder keys: the rules between them, named in the error, and paths stored absolute.
TEST(Config, FolderKeysAreCheckedAndTheirPathsStoredAbsolute) {
  EXPECT_NE(error_of({{"data", {{"image_size", {32, 32}}}}}).find("data.image_size: the IDX sets"),
            std::string::npos);
  EXPECT_NE(error_of({{"data", {{"dataset", "folder"}, {"dir", "x"}, {"image_size", {32}}}}})
                .find("data.image_size: needs [height, width]"),
            std::string::npos);
  EXPECT_NE(error_of({{"data", {{"channels", 2}}}}).find("data.channels: must be 1 or 3"),
            std::string::npos);
  EXPECT_NE(error_of({{"data", {{"extra", {"a", 3}}}}}).find("data.extra: must be a list"),
            std::string::npos);
  EXPECT_NE(error_of({{"init", {{"form", "x"}}}}).find("init.form: unknown key"),
            std::string::npos);
  const Config c =
      load_config("", {"data.dataset=folder", "data.dir=imgs", "data.image_size=[32,48]",
                       "data.channels=3", "data.extra=[\"fixes\"]", "init.from=runs/a"});
  const auto cwd = std::filesystem::current_path();
  EXPECT_EQ(c.data.dir, (cwd / "imgs").string());
  EXPECT_EQ(c.data.extra, std::vector<std::string>{(cwd / "fixes").string()});
  EXPECT_EQ(c.init.from, (cwd / "runs/a").string());
  EXPECT_EQ(c.data.image_size, (std::vector<int64_t>{32, 48}));
  EXPECT_EQ(c.data.cache_dir, "");  // empty stays empty: default_cache_dir() at use
  // MNIST in three channels is allowed (gray repeated), other sizes are not.
  EXPECT_EQ(load_config("", {"data.channels=3"}).data.channels, 3);
}

// An empty path starts from the defaults (mnist-train --print-config without --config).
TEST(Config, LoadConfigWithoutAFileStartsFromTheDefaults) {
  const Config c = load_config("", {"train.epochs=4"});
  EXPECT_EQ(c.train.epochs, 4);
  EXPECT_EQ(c.train.batch_size, 32);
  EXPECT_THROW(load_config("", {"train.epochs=0"}), UsageError);
}

}  // namespace
}  // namespace mnist
