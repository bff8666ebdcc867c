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
  DatasetInfo info = run_dataset_info(run_dir, config);
  Classifier model = load_model(config.model, info, run.file(run_files::kModel));
  model->to(torch::kCPU);
  model->eval();
  return Predictor(std::move(config), std::move(info), std::move(model));
}

DatasetInfo run_dataset_info(const std::string& run_dir, const Config& config) {
  const RunFolder run = RunFolder::open(run_dir);
  if (!run.has(run_files::kDataset)) {
    if (config.data.dataset == DatasetName::kFolder) {
      throw DataError(run.file(run_files::kDataset) + ": not found");
    }
    DatasetInfo info = dataset_info(config.data.dataset);
    info.channels = config.data.channels;
    return info;
  }
  return dataset_info_from_json(run.read_json(run_files::kDataset), run.file(run_files::kDataset));
}

at::Tensor Predictor::model_input(const at::Tensor& images) const {
  const auto input = match_channels(images.to(torch::kCPU), info_.channels);
  TORCH_CHECK(input.size(1) == info_.height && input.size(2) == info_.width,
              "Predictor: images are ", input.size(1), "x", input.size(2), ", the model takes ",
              info_.height, "x", info_.width);
  return to_model_input(input, info_.normalization);
}

at::Tensor Predictor::logits(const at::Tensor& input) const {
  return model_->forward(input);
}

at::Tensor Predictor::probabilities(const at::Tensor& images) const {
  torch::InferenceMode guard;
  const auto logits = model_->forward(model_input(images));
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
