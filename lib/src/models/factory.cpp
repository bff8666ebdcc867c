#include "mnist/models/factory.h"

#include <filesystem>
#include <sstream>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/io/archive.h"
#include "mnist/io/files.h"
#include "mnist/models/cnn.h"
#include "mnist/models/mlp.h"

namespace mnist {

Classifier build_model(const ModelConfig& model, const DatasetInfo& info) {
  if (model.type == ModelType::kMlp) {
    MLPOptions o;
    o.in_features = info.channels * info.height * info.width;
    o.hidden_sizes = model.hidden_sizes;
    o.num_classes = info.num_classes();
    o.activation = model.activation;
    o.dropout = model.dropout;
    o.init = model.init;
    return MLP(o).ptr();
  }
  CNNOptions o;
  o.in_channels = info.channels;
  o.height = info.height;
  o.width = info.width;
  o.channels = model.channels;
  o.kernel_sizes = model.kernel_sizes;
  o.convs_per_block = model.convs_per_block;
  o.pool = model.pool;
  o.batch_norm = model.batch_norm;
  o.conv_dropout = model.conv_dropout;
  o.global_pool = model.global_pool;
  o.hidden_sizes = model.hidden_sizes;
  o.activation = model.activation;
  o.dropout = model.dropout;
  o.num_classes = info.num_classes();
  o.init = model.init;
  return CNN(o).ptr();
}

Classifier load_model(const ModelConfig& model, const DatasetInfo& info, const std::string& path) {
  auto net = build_model(model, info);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw DataError(path + ": not found");
  const std::string bytes = read_archive_file(path);
  check_torch_archive(bytes, path);
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    load_weights(*net, archive, path);
  } catch (const DataError&) {
    throw;
  } catch (const c10::Error& e) {
    throw DataError(path + ": cannot load model weights: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    // LibTorch's archive reader also throws plain std::runtime_error on some corrupt files (found
    // by fuzzing: tests/fuzz/regressions/checkpoint/).
    throw DataError(path + ": cannot load model weights: " + e.what());
  }
  return net;
}

void load_weights(ClassifierImpl& model, torch::serialize::InputArchive& archive,
                  const std::string& path) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected;
  for (const auto& p : model.named_parameters())
    expected.emplace_back(p.key(), p.value().sizes().vec());
  try {
    model.load(archive);
  } catch (const c10::Error& e) {
    throw DataError(path + ": not this model's weights (is the config the run's?): " +
                    e.what_without_backtrace());
  }
  const auto loaded = model.named_parameters();
  for (const auto& [name, shape] : expected) {
    if (loaded[name].sizes().vec() != shape) {
      std::ostringstream msg;
      msg << path << ": parameter " << name << " has shape " << loaded[name].sizes()
          << " but the config's model needs " << c10::IntArrayRef(shape);
      throw DataError(msg.str());
    }
  }
}

void save_model(const Classifier& model, const std::string& path) {
  torch::serialize::OutputArchive archive;
  model->save(archive);
  std::ostringstream out;
  archive.save_to(out);
  write_file_atomic(path, out.str());
}

}  // namespace mnist
