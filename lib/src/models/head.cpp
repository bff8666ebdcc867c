#include "mnist/models/head.h"

#include <torch/torch.h>

#include "mnist/core/error.h"

namespace mnist {
namespace {

// Log-scores whose log-softmax is the head's log-probability.
at::Tensor log_scores(const at::Tensor& logits, const std::string& output) {
  if (output == "softmax") return logits;
  if (output == "sigmoid")
    return torch::sigmoid(logits).clamp(kKerasEpsilon, 1.0 - kKerasEpsilon).log();
  throw UsageError("model.output: unknown output head \"" + output + "\"");
}

}  // namespace

at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& targets,
                               const std::string& output, double label_smoothing) {
  if (label_smoothing <= 0.0)
    return torch::nn::functional::cross_entropy(log_scores(logits, output), targets);
  if (output != "softmax")
    throw UsageError("train.label_smoothing: needs model.output \"softmax\"");
  // Written out rather than through CrossEntropyFuncOptions::label_smoothing, which not every
  // LibTorch has: -(1 - s) log p_y - s * mean_k log p_k.
  const auto log_p = torch::log_softmax(logits, /*dim=*/1);
  const auto nll = -log_p.gather(1, targets.unsqueeze(1)).squeeze(1);
  const auto uniform = -log_p.mean(/*dim=*/1);
  return ((1.0 - label_smoothing) * nll + label_smoothing * uniform).mean();
}

at::Tensor classification_loss_per_sample(const at::Tensor& logits, const at::Tensor& targets,
                                          const std::string& output) {
  namespace F = torch::nn::functional;
  return F::cross_entropy(log_scores(logits, output), targets,
                          F::CrossEntropyFuncOptions().reduction(torch::kNone));
}

at::Tensor class_probabilities(const at::Tensor& logits, const std::string& output) {
  return torch::softmax(log_scores(logits, output), /*dim=*/1);
}

}  // namespace mnist
