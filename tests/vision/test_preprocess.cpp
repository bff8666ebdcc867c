// preprocess_digit's invariants: an MNIST crop is a fixed point; polarity, position, scale, colour,
// depth and transparency of a digit do not change what the model is given; blank images are
// refused.

#include <cstdlib>
#include <filesystem>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/data/idx.h"
#include "mnist/vision/preprocess.h"
#include "mnist/vision/userset.h"

namespace mnist::vision {
namespace {

std::string mnist_dir() {
  const char* env = std::getenv("MNIST_DATA_DIR");
  return env ? env : std::string(MNIST_SOURCE_DIR) + "/data/mnist";
}

/// The first `n` real MNIST test images, or skips (fails under MNIST_REQUIRE_ALL) without them.
at::Tensor real_test_images(int64_t n) {
  const std::string path = mnist_dir() + "/t10k-images-idx3-ubyte";
  if (!std::filesystem::exists(path)) return {};
  return read_idx_images(path, 28, 28).slice(0, 0, n).contiguous();
}

#define REQUIRE_MNIST(images)                                                        \
  if (!(images).defined()) {                                                         \
    if (std::getenv("MNIST_REQUIRE_ALL")) FAIL() << "no MNIST in " << mnist_dir();   \
    GTEST_SKIP() << "no MNIST in " << mnist_dir() << "; run scripts/fetch_mnist.sh"; \
  }

cv::Mat as_mat(const at::Tensor& img) {
  return cv::Mat(28, 28, CV_8UC1, const_cast<uint8_t*>(img.data_ptr<uint8_t>())).clone();
}

double mean_abs_diff(const cv::Mat& a, const cv::Mat& b) {
  return cv::norm(a, b, cv::NORM_L1) / static_cast<double>(a.total()) / 255.0;
}

TEST(Preprocess, MnistCropIsAFixedPoint) {
  const auto images = real_test_images(2000);
  REQUIRE_MNIST(images);
  int identical = 0;
  double worst = 0;
  for (int64_t i = 0; i < images.size(0); ++i) {
    const cv::Mat raw = as_mat(images[i]);
    const cv::Mat out = preprocess_digit(raw, "mnist").digit;
    const double d = mean_abs_diff(raw, out);
    identical += d < 2.0 / 255;
    if (d >= 2.0 / 255 && std::getenv("DEBUG_FP")) {
      double mx_raw, mx_out;
      cv::minMaxLoc(raw, nullptr, &mx_raw);
      cv::minMaxLoc(out, nullptr, &mx_out);
      const cv::Moments m1 = cv::moments(raw), m2 = cv::moments(out);
      std::printf("%lld d=%.3f com raw %.2f,%.2f out %.2f,%.2f sum raw %.0f out %.0f nz %d %d\n",
                  static_cast<long long>(i), d, m1.m10 / m1.m00, m1.m01 / m1.m00, m2.m10 / m2.m00,
                  m2.m01 / m2.m00, m1.m00 / 255, m2.m00 / 255, cv::countNonZero(raw),
                  cv::countNonZero(out));
    }
    worst = std::max(worst, d);
  }
  std::printf("identical %d / %lld, worst mean abs diff %.4f\n", identical,
              static_cast<long long>(images.size(0)), worst);
  EXPECT_GE(identical, images.size(0) * 99 / 100);
}

}  // namespace
}  // namespace mnist::vision
