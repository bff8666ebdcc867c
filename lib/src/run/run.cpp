#include "mnist/run/run.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include <torch/torch.h>

#include "mnist/core/build_info.h"
#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/eval/predictor.h"
#include "mnist/io/archive.h"
#include "mnist/models/factory.h"

namespace mnist {

std::string RunFolderSink::read_checkpoint() const {
  return run_.has(run_files::kCheckpoint) ? read_archive_file(checkpoint_name()) : "";
}

std::string RunFolderSink::checkpoint_name() const {
  return run_.file(run_files::kCheckpoint);
}

void RunFolderSink::write_checkpoint(ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                                     const TrainingState& state, ClassifierImpl* average) {
  save_checkpoint(checkpoint_name(), model, optimizer, state, average);
}

void RunFolderSink::write_best(const Classifier& model) {
  save_model(model, run_.file(run_files::kBestModel));
}

Classifier RunFolderSink::read_best(const ModelConfig& model, const DatasetInfo& info) const {
  return load_model(model, info, run_.file(run_files::kBestModel));
}

void RunFolderSink::write_history(const std::vector<EpochStats>& history) {
  run_.write_text(run_files::kHistory, history_csv(history));
}

TrainResult train_run(const Config& config, const Splits& data, const RunFolder& run,
                      c10::Device device, TrainObserver& observer) {
  RunFolderSink sink(run);
  const Communicator alone;
  return train_model(config, data, &sink, device, observer, alone);
}

RunFolder start_run(const Config& config, const DatasetInfo& info, const std::string& dir,
                    const std::string& command_line, c10::Device device, int world_size) {
  RunFolder run = RunFolder::create(dir);
  run.write_json(run_files::kConfig, config_to_json(config));
  run.write_json(run_files::kDataset, dataset_info_json(info));
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  run.write_json(run_files::kMeta, {{"git_commit", git_commit()},
                                    {"version", project_version()},
                                    {"torch_version", torch_version()},
                                    {"device", device.str()},
                                    {"seed", config.seed},
                                    {"threads", config.threads},
                                    {"world_size", world_size},
                                    {"host", host},
                                    {"command", command_line},
                                    {"start_time", utc_timestamp()},
                                    {"resumes", nlohmann::json::array()}});
  return run;
}

void adopt_initial_run(const Config& config, Splits& data) {
  if (config.init.from.empty()) return;
  const std::string& from = config.init.from;
  DatasetInfo source;
  try {
    if (!std::filesystem::is_directory(from)) throw DataError(from + ": no such run folder");
    source = run_dataset_info(from, load_run_config(from, {}));
  } catch (const DataError& e) {
    throw UsageError(std::string("init.from: ") + e.what());
  }
  const auto geometry = [](const DatasetInfo& i) {
    return std::to_string(i.height) + "x" + std::to_string(i.width) + "x" +
           std::to_string(i.channels);
  };
  if (geometry(source) != geometry(data.info)) {
    throw UsageError("init.from: " + from + " was trained on " + geometry(source) +
                     " images (height x width x channels), the data are " + geometry(data.info));
  }
  if (source.class_names != data.info.class_names) {
    std::string a, b;
    for (const auto& n : source.class_names) a += (a.empty() ? "" : ", ") + n;
    for (const auto& n : data.info.class_names) b += (b.empty() ? "" : ", ") + n;
    throw UsageError("init.from: " + from + " was trained on the classes [" + a +
                     "], the data have [" + b + "]");
  }
  try {  // the architecture, before anything is written (the trainer loads the weights again)
    load_model(config.model, data.info, (std::filesystem::path(from) / run_files::kModel).string());
  } catch (const DataError& e) {
    throw UsageError(std::string("init.from: ") + e.what());
  }
  data.info.normalization = source.normalization;
  data.train.normalization = data.val.normalization = data.test.normalization =
      source.normalization;
}

void note_resume(const RunFolder& run, const std::string& command_line) {
  auto meta = run.read_json(run_files::kMeta);
  meta["resumes"].push_back(
      {{"time", utc_timestamp()}, {"command", command_line}, {"git_commit", git_commit()}});
  run.write_json(run_files::kMeta, meta);
}

EvalResult evaluate_run(const Config& config, const Splits& data, const RunFolder& run,
                        const TrainResult& trained, c10::Device device) {
  const Communicator alone;
  return evaluate_run(config, data, &run, trained, device, alone);
}

EvalResult evaluate_run(const Config& config, const Splits& data, const RunFolder* run,
                        const TrainResult& trained, c10::Device device, const Communicator& comm) {
  if (run != nullptr) save_model(trained.model, run->file(run_files::kModel));
  auto result = evaluate(*trained.model, data.test, Head(config.model.output),
                         data.info.num_classes(), device, config.train.eval_batch_size, comm);
  if (run != nullptr) {
    run->write_text(run_files::kPredictions,
                    predictions_csv(result, data.test.labels, data.test.files));
  }
  return result;
}

std::optional<Config> agree_on_config(const Communicator& comm, const std::optional<Config>& config,
                                      bool resuming) {
  if (!comm.distributed()) return config;
  const auto mine = config ? config_to_json(*config) : nlohmann::json();
  const std::string root_text = comm.broadcast_bytes(
      comm.is_root() && config ? mine.dump() : std::string(), "sharing the config");
  if (root_text.empty()) return std::nullopt;
  const auto root = nlohmann::json::parse(root_text);
  if (resuming) return config_from_json(root, "rank 0's config");
  const auto patch = nlohmann::json::diff(root, mine);
  const bool same = comm.all_agree(patch.empty(), "comparing the configs");
  if (same) return config;
  if (patch.empty()) {
    throw UsageError("rank " + std::to_string(comm.rank()) +
                     ": the ranks were started with different configs (see the other ranks' "
                     "errors); start every rank with the same --config and --set");
  }
  std::string key = patch.front().at("path").get<std::string>();
  const nlohmann::json::json_pointer pointer(key);
  const std::string here = mine.contains(pointer) ? mine.at(pointer).dump() : "(none)";
  const std::string there = root.contains(pointer) ? root.at(pointer).dump() : "(none)";
  key = key.substr(1);
  std::replace(key.begin(), key.end(), '/', '.');
  throw UsageError("rank " + std::to_string(comm.rank()) + ": its resolved config differs from " +
                   "rank 0's at " + key + " (" + here + " here, " + there +
                   " on rank 0); start every rank with the same --config and --set");
}

void complete_run(const RunFolder& run, const EvalResult& result, const DatasetInfo& info,
                  const TrainResult& trained) {
  auto meta = run.read_json(run_files::kMeta);
  meta["end_time"] = utc_timestamp();
  run.write_json(run_files::kMeta, meta);
  auto metrics = metrics_json(result, info);
  metrics["training"] = {{"epochs", trained.history.empty() ? 0 : trained.history.back().epoch},
                         {"model_epoch", trained.model_epoch},
                         {"best_epoch", trained.best_epoch},
                         {"stopped_early", trained.stopped_early}};
  run.write_json(run_files::kMetrics, metrics);
}

}  // namespace mnist
