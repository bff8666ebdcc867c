#pragma once
// The output head: how a model's logits become class probabilities and a loss. One place, so that
// training, evaluation and prediction cannot disagree.
//
// "softmax": probabilities = softmax(logits), loss = cross-entropy.
// "sigmoid": the Keras tutorial's Dense(10, activation='sigmoid') trained with
//   sparse_categorical_crossentropy. Keras clips each sigmoid output to [1e-7, 1 - 1e-7], takes the
//   log, and applies softmax cross-entropy to those logs: the loss is -log(c_y / sum_k c_k) with c
//   = clip(sigmoid(z)); its probabilities are the normalised clipped sigmoids c / sum(c).

#include <string>

#include <ATen/core/Tensor.h>

namespace mnist {

/// Keras' epsilon, the clipping bound of the sigmoid head.
inline constexpr double kKerasEpsilon = 1e-7;

/// Mean loss of `logits` [B, K] against int64 `targets` [B] for `output` ("softmax" | "sigmoid").
/// `label_smoothing` s > 0 (softmax only; training only) puts 1 - s + s/K on the true class and
/// s/K on the others.
at::Tensor classification_loss(const at::Tensor& logits, const at::Tensor& targets,
                               const std::string& output, double label_smoothing = 0.0);

/// Per-sample losses [B] (for evaluation sums).
at::Tensor classification_loss_per_sample(const at::Tensor& logits, const at::Tensor& targets,
                                          const std::string& output);

/// Class probabilities [B, K], each row summing to one.
at::Tensor class_probabilities(const at::Tensor& logits, const std::string& output);

}  // namespace mnist
