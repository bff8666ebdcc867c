#pragma once
// The output head: how a model's logits become class probabilities and a loss. One place, so that
// training, evaluation, prediction and the written-out training step cannot disagree.
//
// OutputHead::kSoftmax: probabilities = softmax(logits), loss = cross-entropy.
// OutputHead::kSigmoid: the Keras tutorial's Dense(10, activation='sigmoid') trained with
//   sparse_categorical_crossentropy. Keras clips each sigmoid output to [1e-7, 1 - 1e-7], takes the
//   log, and applies softmax cross-entropy to those logs: the loss is -log(c_y / sum_k c_k) with c
//   = clip(sigmoid(z)); its probabilities are the normalised clipped sigmoids c / sum(c).

#include <utility>

#include <ATen/core/Tensor.h>

#include "mnist/config/config.h"

namespace mnist {

/// Keras' epsilon, the clipping bound of the sigmoid head.
inline constexpr double kKerasEpsilon = 1e-7;

class Head {
 public:
  explicit Head(OutputHead kind = OutputHead::kSoftmax, double label_smoothing = 0.0);
  /// The head a model config describes; label smoothing is train.label_smoothing.
  static Head training(const Config& config);

  OutputHead kind() const { return kind_; }
  double label_smoothing() const { return label_smoothing_; }

  /// Mean loss of `logits` [B, K] against int64 `targets` [B]. With label smoothing s > 0 (softmax
  /// only: the config refuses it otherwise) the target puts 1 - s + s/K on the true class and s/K
  /// on the others.
  at::Tensor loss(const at::Tensor& logits, const at::Tensor& targets) const;

  /// Per-sample losses [B], never smoothed (for evaluation sums).
  at::Tensor loss_per_sample(const at::Tensor& logits, const at::Tensor& targets) const;

  /// Class probabilities [B, K], each row summing to one.
  at::Tensor probabilities(const at::Tensor& logits) const;

 private:
  OutputHead kind_;
  double label_smoothing_;
};

/// The head's mean loss and its gradient with respect to the logits, written out on the CPU into
/// buffers allocated once, for the written-out training step (train/mlp_step.h). It runs the
/// kernels autograd runs for Head::loss (log_softmax, nll_loss and, for the sigmoid head, sigmoid,
/// clamp and log, with their backward functions), so the values are the same bits. Label
/// smoothing is not covered: supports() says so.
class HeadBackward {
 public:
  static bool supports(const Head& head) { return head.label_smoothing() <= 0.0; }

  /// For float logits of up to `max_batch` rows and `classes` columns with `options`.
  HeadBackward(const Head& head, int64_t max_batch, int64_t classes,
               const at::TensorOptions& options);

  /// {mean loss [], d loss / d logits [B, K]} for `logits` [B, K] and int64 `labels` [B]: views of
  /// internal buffers, valid until the next call.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& logits, const at::Tensor& labels);

 private:
  // The buffers' first `batch` rows, made once per batch size (views cost as much as small
  // kernels): one set for full batches, one for the epoch's last.
  struct Views {
    int64_t batch = -1;
    at::Tensor sig, clamped, scores, log_probs, grad, grad_scores, mask;
  };
  const Views& views(int64_t batch);

  bool sigmoid_;
  int64_t max_batch_;
  at::Tensor sig_, clamped_, scores_, log_probs_, grad_, grad_scores_, mask_;  // [max_batch, K]
  at::Tensor one_, loss_, total_weight_;
  Views full_, partial_;
};

}  // namespace mnist
