#pragma once
// The OpenCV prediction window of mnist-predict. Each view shows, left to right: the user's image
// (with the box where the digit was found), the 28x28 image the model saw, a bar chart of the class
// probabilities; the header names the file and the predicted class with its confidence.
//   files:     n / Right / Space  next,  p / Left  previous,  d  draw mode,  q / Esc  quit
//   both:      e  explain: the input panel shows which pixels pushed the answer up (red) or down
//              (blue), integrated gradients (vision/attribution.h)
//   draw mode: write with the left mouse button, the prediction follows as you draw;
//              c  clear,  d  back to the files (when there are any),  q / Esc  quit
// The views are rendered by functions that need no display, so tests and docs can draw them too.

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "mnist/vision/predict.h"

namespace mnist::vision {

inline constexpr const char* kPredictWindowTitle = "mnist-predict";
inline constexpr int kDrawCanvasSide = 280;

/// One file's view; `position` is "3/12". With `why` (an attribution_overlay of r.input), the
/// input panel shows it instead of the plain input.
cv::Mat render_file_view(const ImageResult& r, const DatasetInfo& info, const std::string& position,
                         const cv::Mat& why = cv::Mat());

/// The draw mode's view: the canvas (CV_8UC1, white paper, black ink) and the prediction for it
/// (nullptr while the canvas is blank); `why` as for render_file_view.
cv::Mat render_draw_view(const cv::Mat& canvas, const ImageResult* r, const DatasetInfo& info,
                         const cv::Mat& why = cv::Mat());

/// Where the canvas sits in render_draw_view's image (mouse coordinates map through it).
cv::Rect draw_canvas_rect();

/// Runs the window until the user quits. Starts in draw mode when `results` is empty or `draw`.
/// Returns the last draw-mode prediction, if any (empty ImageResult otherwise).
ImageResult run_predict_window(const Predictor& predictor, const std::vector<ImageResult>& results,
                               Pipeline pipeline, bool draw);

}  // namespace mnist::vision
