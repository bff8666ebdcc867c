#include "mnist/train/run.h"

#include <unistd.h>

#include <torch/torch.h>

#include "mnist/core/build_info.h"
#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/models/factory.h"

namespace mnist {

RunFolder start_run(const Config& config, const std::string& dir, const std::string& command_line,
                    c10::Device device) {
  RunFolder run = RunFolder::create(dir);
  run.write_json(run_files::kConfig, config_to_json(config));
  char host[256] = "";
  ::gethostname(host, sizeof host - 1);
  run.write_json(run_files::kMeta, {{"git_commit", git_commit()},
                                    {"version", project_version()},
                                    {"torch_version", torch_version()},
                                    {"device", device.str()},
                                    {"seed", config.seed},
                                    {"threads", config.threads},
                                    {"host", host},
                                    {"command", command_line},
                                    {"start_time", utc_timestamp()},
                                    {"resumes", nlohmann::json::array()}});
  return run;
}

void note_resume(const RunFolder& run, const std::string& command_line) {
  auto meta = run.read_json(run_files::kMeta);
  meta["resumes"].push_back(
      {{"time", utc_timestamp()}, {"command", command_line}, {"git_commit", git_commit()}});
  run.write_json(run_files::kMeta, meta);
}

EvalResult evaluate_run(const Config& config, const Splits& data, const RunFolder& run,
                        const TrainResult& trained, c10::Device device) {
  save_model(trained.model, run.file(run_files::kModel));
  auto result = evaluate(*trained.model, data.test, config.model.output, data.info.num_classes(),
                         device, config.train.eval_batch_size);
  run.write_text(run_files::kPredictions, predictions_csv(result, data.test.labels));
  return result;
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
