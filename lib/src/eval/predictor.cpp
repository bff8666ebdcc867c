#include "mnist/eval/predictor.h"

#include <filesystem>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/io/run_folder.h"
#include "mnist/models/factory.h"
#include "mnist/models/head.h"

namespace mnist {

Predictor Predictor::open(const std::string& run_dir) {
  if (!std::filesystem::is_directory(run_dir)) throw DataError(run_dir + ": no such run folder");
  const RunFolder run = RunFolder::open(run_dir);
  Config config = load_run_config(run_dir, {});
  const DatasetInfo& info = dataset_info(config.data.dataset);
  Classifier model = load_model(config.model, info, run.file(run_files::kModel));
  model->to(torch::kCPU);
  model->eval();
  return Predictor(std::move(config), &info, std::move(model));
}

at::Tensor Predictor::probabilities(const at::Tensor& images) const {
  torch::InferenceMode guard;
  const auto input = match_channels(images.to(torch::kCPU), info_->channels);
  const auto logits = model_->forward(to_model_input(input));
  return Head(config_.model.output).probabilities(logits).contiguous();
}

std::vector<int64_t> top_k(const at::Tensor& probabilities, int64_t k) {
  const auto sorted = probabilities.reshape({-1}).argsort(0, /*descending=*/true);
  std::vector<int64_t> out;
  for (int64_t i = 0; i < std::min<int64_t>(k, sorted.size(0)); ++i) {
    out.push_back(sorted[i].item<int64_t>());
  }
  return out;
}

}  // namespace mnist
