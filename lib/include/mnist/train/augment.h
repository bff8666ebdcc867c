#pragma once
// On-the-fly augmentation of training batches, on the batch's device and in one pass per batch:
// every image gets its own random affine transform (rotation, shear, scale, shift) and, when
// configured, an elastic distortion (Simard et al. 2003: a random displacement field smoothed by a
// Gaussian), applied together by one bilinear resampling (grid_sample). Randomness comes from
// torch's global generator, which the training loop seeds per epoch: runs are reproducible and a
// resumed run draws the same transforms.

#include <ATen/core/Tensor.h>

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
  AugmentConfig config_;
};

}  // namespace mnist
