#include "mnist/train/step_engine.h"

#include <torch/torch.h>

#include "mnist/core/runtime.h"
#include "mnist/models/head.h"
#include "mnist/train/mlp_step.h"
#include "mnist/train/optim.h"

namespace mnist {
namespace {

// loss.backward() on the model's own forward: every model, every head, label smoothing.
class AutogradStep final : public StepEngine {
 public:
  AutogradStep(Classifier model, Head head, torch::optim::Optimizer& optimizer)
      : model_(std::move(model)), head_(head), optimizer_(optimizer) {}

  std::pair<at::Tensor, at::Tensor> forward_backward(const at::Tensor& images,
                                                     const at::Tensor& labels) override {
    zero_gradients(optimizer_);
    // A CNN trained channels-last orders its activations itself (CNNImpl::set_channels_last).
    at::Tensor logits = model_->forward(images);
    at::Tensor loss = head_.loss(logits, labels);
    loss.backward();
    return {logits, loss};
  }

  // CNN kernels' results depend on the thread count: their threads stay as configured.
  bool thread_count_free() const override { return false; }

 private:
  Classifier model_;
  Head head_;
  torch::optim::Optimizer& optimizer_;
};

}  // namespace

bool uses_channels_last(const Config& config, c10::Device device) {
  return config.model.type == ModelType::kCnn && config.train.channels_last && device.is_cpu() &&
         !plain_paths();
}

std::unique_ptr<StepEngine> make_step_engine(const Config& config, Classifier model,
                                             torch::optim::Optimizer& optimizer,
                                             int64_t max_batch) {
  if (!plain_paths()) {
    if (auto written_out = MLPStep::create(config, model, max_batch)) return written_out;
  }
  return std::make_unique<AutogradStep>(std::move(model), Head::training(config), optimizer);
}

}  // namespace mnist
