#pragma once
// Attributions (eval/explain.h) of what the model saw, as pictures: the heatmap that
// mnist-predict --explain writes, the window shows and the web page draws the same way.

#include <cstdint>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include "mnist/eval/explain.h"

namespace mnist::vision {

/// explain() for `input`, an ImageResult's input (CV_8UC1, or CV_8UC3 BGR, of the model's size).
Attribution explain_input(const Predictor& predictor, const cv::Mat& input, int64_t target,
                          AttributionMethod method, int steps = 64);

/// `map` (float [H, W]) over `input` (CV_8UC1 or CV_8UC3 BGR, H x W), `scale` times larger: the
/// input in dim gray, red where pixels pushed the score up and blue where they pushed it down,
/// opaque at the largest |value| (symmetric, so equal pushes look equal). CV_8UC3 BGR.
cv::Mat attribution_overlay(const cv::Mat& input, const at::Tensor& map, int scale);

}  // namespace mnist::vision
