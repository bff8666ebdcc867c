#include "mnist/train/augment.h"

#include <cmath>

#include <torch/torch.h>

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

}  // namespace

Augmenter::Augmenter(const AugmentConfig& config) : config_(config) {}

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
    const auto k = gaussian_kernel(config_.elastic_sigma, options);
    const int64_t r = k.size(3) / 2;
    field = F::conv2d(F::pad(field, F::PadFuncOptions({r, r, 0, 0}).mode(torch::kReplicate)), k);
    field = F::conv2d(F::pad(field, F::PadFuncOptions({0, 0, r, r}).mode(torch::kReplicate)),
                      k.transpose(2, 3));
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
