#include "mnist/vision/attribution.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "mnist/vision/preprocess.h"

namespace mnist::vision {

Attribution explain_input(const Predictor& predictor, const cv::Mat& input, int64_t target,
                          AttributionMethod method, int steps) {
  return explain(predictor, images_to_tensor({input})[0], target, method, steps);
}

cv::Mat attribution_overlay(const cv::Mat& input, const at::Tensor& map, int scale) {
  CV_Assert(scale >= 1 && !input.empty());
  cv::Mat gray;
  if (input.channels() == 3) {
    cv::cvtColor(input, gray, cv::COLOR_BGR2GRAY);
  } else {
    gray = input;
  }
  const auto m = map.to(torch::kFloat).contiguous();
  CV_Assert(m.dim() == 2 && m.size(0) == gray.rows && m.size(1) == gray.cols);
  const float* v = m.data_ptr<float>();
  const float peak = std::max(1e-12f, m.abs().max().item<float>());
  cv::Mat out(gray.rows, gray.cols, CV_8UC3);
  for (int y = 0; y < gray.rows; ++y) {
    for (int x = 0; x < gray.cols; ++x) {
      const float a = std::min(1.0f, std::abs(v[y * gray.cols + x]) / peak);
      const float base = 0.35f * gray.at<uint8_t>(y, x);  // the input, dimmed
      // Red (BGR 40, 40, 230) for up, blue (230, 110, 30) for down.
      const bool up = v[y * gray.cols + x] >= 0;
      const float colour[3] = {up ? 40.f : 230.f, up ? 40.f : 110.f, up ? 230.f : 30.f};
      auto& px = out.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) {
        px[c] = cv::saturate_cast<uint8_t>(base * (1 - a) + colour[c] * a);
      }
    }
  }
  cv::Mat big;
  cv::resize(out, big, cv::Size(), scale, scale, cv::INTER_NEAREST);
  return big;
}

}  // namespace mnist::vision
