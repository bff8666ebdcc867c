#include "mnist/train/checkpoint.h"

#include <sstream>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/io/archive.h"
#include "mnist/io/files.h"
#include "mnist/models/factory.h"

namespace mnist {
namespace {

constexpr int64_t kFormatVersion = 1;

// The archive stores tensors; small metadata travels as the bytes of a JSON text.
torch::Tensor text_tensor(const std::string& text) {
  auto t = torch::empty({static_cast<int64_t>(text.size())}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), text.data(), text.size());
  return t;
}

std::string tensor_text(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU).to(torch::kUInt8).contiguous();
  return std::string(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()),
                     static_cast<size_t>(c.numel()));
}

}  // namespace

void save_checkpoint(const std::string& path, ClassifierImpl& model,
                     torch::optim::Optimizer& optimizer, const TrainingState& state,
                     ClassifierImpl* average) {
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive, average_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  if (average != nullptr) {
    average->save(average_archive);
    archive.write("average", average_archive);
  }
  const nlohmann::json meta = {
      {"format", kFormatVersion},          {"epoch", state.epoch},
      {"history", to_json(state.history)}, {"average_updates", state.average_updates},
      {"world_size", state.world_size},    {"step", state.step}};
  if (state.step > 0) archive.write("partial", state.partial);
  archive.write("state", text_tensor(meta.dump()));
  std::ostringstream out;
  archive.save_to(out);
  write_file_atomic(path, out.str());
}

TrainingState load_checkpoint(const std::string& path, ClassifierImpl& model,
                              torch::optim::Optimizer& optimizer, ClassifierImpl* average) {
  return load_checkpoint_bytes(read_archive_file(path), path, model, optimizer, average);
}

TrainingState load_checkpoint_bytes(const std::string& bytes, const std::string& path,
                                    ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                                    ClassifierImpl* average) {
  TrainingState state;
  check_torch_archive(bytes, path);
  try {
    torch::serialize::InputArchive archive, model_archive, optimizer_archive;
    // Tensors are mapped to the model's device as they are read: Module::load would otherwise swap
    // a CUDA parameter for the CPU tensor in the file.
    const auto params = model.parameters();
    archive.load_from(bytes.data(), bytes.size(),
                      params.empty() ? c10::Device(c10::kCPU) : params.front().device());
    archive.read("model", model_archive);
    archive.read("optimizer", optimizer_archive);
    torch::Tensor meta_tensor;
    archive.read("state", meta_tensor);
    const auto meta = nlohmann::json::parse(tensor_text(meta_tensor));
    if (meta.at("format").get<int64_t>() != kFormatVersion) {
      throw DataError(path + ": checkpoint format " + meta.at("format").dump() +
                      " is not supported");
    }
    load_weights(model, model_archive, path);
    optimizer.load(optimizer_archive);
    state.epoch = meta.at("epoch").get<int64_t>();
    state.history = history_from_json(meta.at("history"), path);
    state.world_size = meta.value("world_size", int64_t{1});
    state.step = meta.value("step", int64_t{0});
    if (state.step > 0) {
      if (!archive.try_read("partial", state.partial) || state.partial.dim() != 2 ||
          state.partial.scalar_type() != torch::kFloat64 ||
          state.partial.size(0) != state.world_size) {
        throw DataError(path + ": inconsistent checkpoint (a mid-epoch state without its rows)");
      }
      state.partial = state.partial.to(torch::kCPU);
    }
    if (average != nullptr) {
      torch::serialize::InputArchive average_archive;
      if (!archive.try_read("average", average_archive)) {
        throw DataError(path + ": holds no weight average, but train.ema_decay is on");
      }
      load_weights(*average, average_archive, path);
      state.average_updates = meta.value("average_updates", int64_t{0});
    }
  } catch (const DataError&) {
    throw;
  } catch (const c10::Error& e) {
    throw DataError(path + ": corrupt or incompatible checkpoint: " + e.what_without_backtrace());
  } catch (const nlohmann::json::exception& e) {
    throw DataError(path + ": corrupt checkpoint metadata: " + e.what());
  } catch (const std::exception& e) {
    // LibTorch's archive reader also throws plain std::runtime_error on some corrupt files (found
    // by fuzzing: tests/fuzz/regressions/checkpoint/).
    throw DataError(path + ": corrupt checkpoint: " + e.what());
  }
  if (state.epoch < 0 || state.step < 0 ||
      static_cast<size_t>(state.epoch) != state.history.size()) {
    throw DataError(path + ": inconsistent checkpoint (epoch count and history disagree)");
  }
  return state;
}

}  // namespace mnist
