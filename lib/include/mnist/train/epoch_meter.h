#pragma once
// An epoch's running loss sum and count of right answers. On the CPU they are host numbers: a CPU
// tensor's value costs nothing to read, and a loop replaces the four tensor operations per step
// that the sums would take. On a GPU (and with core/runtime.h's plain_paths()) they stay tensors,
// read (on a GPU, a synchronisation) only when logging. Both give the same figures: the loss is
// summed in float as the tensors do, and a right answer is counted_correct()'s.

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

namespace mnist {

/// The number of rows of `logits` [B, K] whose argmax is the row's label (int64 [B]), with
/// torch's argmax rules: the first of equal largest values wins, and NaN counts as the largest.
/// The host loop for float CPU tensors; logits.argmax(1).eq(labels).sum() otherwise. The two agree
/// on every input (a unit test compares them on ties and NaN).
int64_t count_correct(const at::Tensor& logits, const at::Tensor& labels);

class EpochMeter {
 public:
  explicit EpochMeter(c10::Device device);

  /// Adds one step: its mean `loss` [] over `len` images, and their logits and labels.
  void add(const at::Tensor& loss, const at::Tensor& logits, const at::Tensor& labels, int64_t len);

  /// Continues from a stopped run's figures (loss_sum as loss_sum() returned it: a float's value).
  void restore(double loss_sum, int64_t correct);

  double loss_sum() const;
  int64_t correct() const;

 private:
  bool on_host_;
  float loss_sum_ = 0.0f;
  int64_t correct_ = 0;
  at::Tensor loss_sum_t_, correct_t_;
};

}  // namespace mnist
