#pragma once
// On-the-fly augmentation of training batches, on the batch's device and in one pass per batch:
// every image gets its own random affine transform (rotation, shear, scale, shift) and, when
// configured, an elastic distortion (Simard et al. 2003: a random displacement field smoothed by a
// Gaussian), applied together by one bilinear resampling (grid_sample). Randomness comes from
// torch's global generator, which the training loop seeds per epoch: runs are reproducible and a
// resumed run draws the same transforms.

#include <mutex>
#include <utility>

#include <ATen/core/Tensor.h>
#include <c10/core/TensorOptions.h>

#include "mnist/config/config.h"

namespace mnist {

class Augmenter {
 public:
  explicit Augmenter(const AugmentConfig& config);
  bool enabled() const { return config_.enabled(); }
  /// float [B, C, H, W] model input -> the same shape, transformed (the input itself when
  /// disabled). Pixels brought in from outside the image are 0 (background).
  at::Tensor operator()(const at::Tensor& images) const;

 private:
  /// The elastic field's smoothing matrices for h x w images: [h, h] and the transposed [w, w].
  /// Returned by value (two handles): another thread may replace the cached pair meanwhile.
  std::pair<at::Tensor, at::Tensor> smoothing(int64_t h, int64_t w,
                                              const at::TensorOptions& options) const;

  AugmentConfig config_;
  mutable std::mutex mutex_;
  mutable std::pair<at::Tensor, at::Tensor> smoothing_;
};

}  // namespace mnist
