#pragma once
// A trained model ready to classify images: what mnist-predict, the window and any other front end
// hold. Built from a run folder alone (config.json + model.pt), on the CPU: one image at a time is
// faster there than a round trip to a GPU.

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"
#include "mnist/models/classifier.h"

namespace mnist {

class Predictor {
 public:
  /// DataError naming the folder or file when `run_dir` is not a run folder with a loadable model.
  static Predictor open(const std::string& run_dir);

  /// uint8 [B, H, W] gray or [B, H, W, 3] RGB images of the model's size (info().height, width)
  /// -> class probabilities float [B, K] (CPU), each row summing to one. Converted to the channels
  /// the model was trained on (match_channels), then through to_model_input with the run's
  /// normalisation, as training does.
  at::Tensor probabilities(const at::Tensor& images) const;

  /// The model's input for uint8 images as probabilities() takes them: float [B, C, H, W] after
  /// match_channels and to_model_input (the run's normalisation).
  at::Tensor model_input(const at::Tensor& images) const;
  /// The model's logits [B, K] for `input` (model_input's form), with autograd recording when
  /// `input` requires a gradient (attributions, eval/explain.h). Safe to call concurrently: take
  /// gradients with torch::autograd::grad, which leaves the parameters' .grad alone.
  at::Tensor logits(const at::Tensor& input) const;

  const DatasetInfo& info() const { return info_; }
  const Config& config() const { return config_; }
  /// The trained model (evaluation mode, CPU), for exporters that read its layers.
  const Classifier& model() const { return model_; }

 private:
  Predictor(Config config, DatasetInfo info, Classifier model)
      : config_(std::move(config)), info_(std::move(info)), model_(std::move(model)) {}
  Config config_;
  DatasetInfo info_;
  Classifier model_;
};

/// What the model of the run folder `run_dir` takes and answers (its dataset.json; run folders
/// written before that file existed: the IDX set its `config` names). DataError naming the file.
DatasetInfo run_dataset_info(const std::string& run_dir, const Config& config);

/// Indices of the `k` largest entries of `probabilities` (one row, float [K]), largest first.
std::vector<int64_t> top_k(const at::Tensor& probabilities, int64_t k);

}  // namespace mnist
