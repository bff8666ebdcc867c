#include "mnist/train/epoch_meter.h"

#include <cmath>

#include <torch/torch.h>

#include "mnist/core/runtime.h"

namespace mnist {

int64_t count_correct(const at::Tensor& logits, const at::Tensor& labels) {
  torch::NoGradGuard no_grad;
  if (!logits.is_cpu() || logits.scalar_type() != at::kFloat || !logits.is_contiguous() ||
      labels.scalar_type() != at::kLong || !labels.is_contiguous()) {
    return logits.argmax(1).eq(labels).sum().item<int64_t>();
  }
  const int64_t n = logits.size(0), k = logits.size(1);
  const float* z = logits.data_ptr<float>();
  const int64_t* y = labels.data_ptr<int64_t>();
  int64_t right = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float* row = z + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; ++j) {
      if (std::isnan(row[best])) break;
      if (row[j] > row[best] || std::isnan(row[j])) best = j;
    }
    right += best == y[i];
  }
  return right;
}

EpochMeter::EpochMeter(c10::Device device) : on_host_(device.is_cpu() && !plain_paths()) {
  if (!on_host_) {
    loss_sum_t_ = torch::zeros({}, torch::TensorOptions(torch::kFloat32).device(device));
    correct_t_ = torch::zeros({}, torch::TensorOptions(torch::kInt64).device(device));
  }
}

void EpochMeter::add(const at::Tensor& loss, const at::Tensor& logits, const at::Tensor& labels,
                     int64_t len) {
  torch::NoGradGuard no_grad;
  if (!on_host_) {
    loss_sum_t_ += loss.detach() * static_cast<float>(len);
    correct_t_ += logits.argmax(1).eq(labels).sum();
    return;
  }
  const float weighted = loss.item<float>() * static_cast<float>(len);
  loss_sum_ = loss_sum_ + weighted;
  correct_ += count_correct(logits, labels);  // `len` rows
}

void EpochMeter::restore(double loss_sum, int64_t correct) {
  if (on_host_) {
    loss_sum_ = static_cast<float>(loss_sum);
    correct_ = correct;
  } else {
    loss_sum_t_.fill_(loss_sum);
    correct_t_.fill_(correct);
  }
}

double EpochMeter::loss_sum() const {
  return on_host_ ? static_cast<double>(loss_sum_) : loss_sum_t_.item<double>();
}

int64_t EpochMeter::correct() const {
  return on_host_ ? correct_ : correct_t_.item<int64_t>();
}

}  // namespace mnist
