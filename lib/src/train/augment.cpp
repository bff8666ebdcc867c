#include "mnist/train/augment.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "mnist/core/runtime.h"

namespace mnist {
namespace {

constexpr double kDegree = M_PI / 180.0;

// Uniform in [-limit, limit], one per image: [B].
at::Tensor symmetric(int64_t n, double limit, const torch::TensorOptions& options) {
  return (torch::rand({n}, options) * 2.0 - 1.0) * limit;
}

// A 1-D Gaussian kernel [1, 1, 1, K] (normalised) for sigma in pixels.
at::Tensor gaussian_kernel(double sigma, const torch::TensorOptions& options) {
  const int64_t radius = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(3.0 * sigma)));
  const auto x = torch::arange(-radius, radius + 1, options);
  auto k = torch::exp(-(x * x) / (2.0 * sigma * sigma));
  return (k / k.sum()).view({1, 1, 1, -1});
}

// The same smoothing as a matrix: row i of the [n, n] result holds the weights that the padded
// convolution above gives input pixel j at output pixel i, its replicate border folded in (the
// taps that fall outside land on the edge pixel). `field @ S^T` then smooths along the last axis,
// `S @ field` along the one before: the convolutions' sums in exact arithmetic, rounded
// differently, in one matrix product each instead of a slow single-channel convolution.
at::Tensor smoothing_matrix(int64_t n, double sigma, const torch::TensorOptions& options) {
  const auto k = gaussian_kernel(sigma, torch::TensorOptions().dtype(torch::kFloat64));
  const int64_t taps = k.size(3), r = taps / 2;
  const auto weights = k.view({-1});
  auto s = torch::zeros({n, n}, torch::kFloat64);
  auto sa = s.accessor<double, 2>();
  const auto wa = weights.accessor<double, 1>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t t = -r; t <= r; ++t) {
      sa[i][std::clamp<int64_t>(i + t, 0, n - 1)] += wa[t + r];
    }
  }
  return s.to(options);
}

}  // namespace

Augmenter::Augmenter(const AugmentConfig& config) : config_(config) {}

std::pair<at::Tensor, at::Tensor> Augmenter::smoothing(int64_t h, int64_t w,
                                                       const torch::TensorOptions& options) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!smoothing_.first.defined() || smoothing_.first.size(0) != h ||
      smoothing_.second.size(0) != w || smoothing_.first.device() != options.device()) {
    smoothing_ = {smoothing_matrix(h, config_.elastic_sigma, options),
                  smoothing_matrix(w, config_.elastic_sigma, options).t().contiguous()};
  }
  return smoothing_;
}

at::Tensor Augmenter::operator()(const at::Tensor& images) const {
  if (!enabled()) return images;
  namespace F = torch::nn::functional;
  torch::NoGradGuard no_grad;
  const int64_t b = images.size(0), h = images.size(2), w = images.size(3);
  const auto options = images.options().dtype(torch::kFloat32);

  // The sampling transform in normalised coordinates ([-1, 1] across the image): output pixel p
  // reads input pixel A p + t. Rotation and shear angles, zoom and shift are symmetric around the
  // identity, so sampling with A directly is as good as inverting a forward transform.
  const auto angle = symmetric(b, config_.rotation * kDegree, options);
  const auto shear = symmetric(b, config_.shear * kDegree, options);
  const auto zoom = 1.0 + symmetric(b, config_.scale, options);  // > 1 makes the digit larger
  const auto cos_a = torch::cos(angle), sin_a = torch::sin(angle), tan_s = torch::tan(shear);
  // A = R(angle) * [[1, tan(shear)], [0, 1]] / zoom
  // A mirror flips the sign of the x input: the first column of A.
  const auto mirror =
      config_.hflip ? torch::where(torch::rand({b}, options) < 0.5, -1.0, 1.0).to(torch::kFloat32)
                    : torch::ones({b}, options);
  const auto a00 = mirror * cos_a / zoom;
  const auto a01 = (cos_a * tan_s - sin_a) / zoom;
  const auto a10 = mirror * sin_a / zoom;
  const auto a11 = (sin_a * tan_s + cos_a) / zoom;
  const auto tx = symmetric(b, 2.0 * config_.translate, options);
  const auto ty = symmetric(b, 2.0 * config_.translate, options);
  const auto theta = torch::stack({a00, a01, tx, a10, a11, ty}, 1).view({b, 2, 3});
  auto grid = F::affine_grid(theta, {b, images.size(1), h, w}, /*align_corners=*/false);

  if (config_.elastic_alpha > 0) {
    // Random displacements in [-1, 1] per pixel and axis, smoothed (separable Gaussian), scaled to
    // elastic_alpha pixels, then converted to normalised units.
    auto field = torch::rand({b * 2, 1, h, w}, options) * 2.0 - 1.0;
    if (config_.blur_by_matmul && !plain_paths()) {
      const auto [rows, columns_t] = smoothing(h, w, options);
      field = torch::matmul(rows, torch::matmul(field.view({b * 2, h, w}), columns_t));
    } else {
      const auto k = gaussian_kernel(config_.elastic_sigma, options);
      const int64_t r = k.size(3) / 2;
      field = F::conv2d(F::pad(field, F::PadFuncOptions({r, r, 0, 0}).mode(torch::kReplicate)), k);
      field = F::conv2d(F::pad(field, F::PadFuncOptions({0, 0, r, r}).mode(torch::kReplicate)),
                        k.transpose(2, 3));
    }
    field = field.view({b, 2, h, w}).permute({0, 2, 3, 1}) * config_.elastic_alpha;
    const auto scale =
        torch::tensor({2.0 / static_cast<double>(w), 2.0 / static_cast<double>(h)}, options);
    grid = grid + field * scale;
  }
  return F::grid_sample(images, grid,
                        F::GridSampleFuncOptions()
                            .mode(torch::kBilinear)
                            .padding_mode(torch::kZeros)
                            .align_corners(false));
}

}  // namespace mnist
