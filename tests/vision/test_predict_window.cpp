// The prediction window's views, drawn without a display: the user's image fitted into its panel
// with the ink box where the digit was found, the predicted class's bar highlighted and the others'
// bars in proportion, errors in red, and the draw mode's canvas exactly where the mouse maps to.
// Positions are found by colour, so the tests do not depend on the layout's numbers.

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "mnist/data/dataset.h"
#include "mnist/vision/attribution.h"
#include "mnist/vision/canvas.h"
#include "mnist/vision/predict_window.h"

namespace mnist::vision {
namespace {

cv::Mat pixels_of(const cv::Mat& view, const cv::Scalar& colour) {
  cv::Mat mask;
  cv::inRange(view, colour, colour, mask);
  return mask;
}

/// The bounding box of the pixels of exactly `colour` (empty when there are none).
cv::Rect box_of(const cv::Mat& view, const cv::Scalar& colour) {
  std::vector<cv::Point> points;
  cv::findNonZero(pixels_of(view, colour), points);
  return points.empty() ? cv::Rect() : cv::boundingRect(points);
}

int count_of(const cv::Mat& view, const cv::Scalar& colour) {
  return cv::countNonZero(pixels_of(view, colour));
}

/// Pixels within `tolerance` of `colour` in every channel (anti-aliased text is rarely exact).
int count_near(const cv::Mat& view, const cv::Scalar& colour, double tolerance) {
  cv::Mat mask;
  cv::inRange(view, colour - cv::Scalar::all(tolerance), colour + cv::Scalar::all(tolerance), mask);
  return cv::countNonZero(mask);
}

/// A successful prediction of class 3 (75%) over class 5 (25%) for a 600x300 image.
ImageResult prediction(const cv::Mat& image) {
  ImageResult r;
  r.path = "digit.png";
  r.image = image;
  r.input = cv::Mat(28, 28, CV_8UC1, cv::Scalar(0));
  r.input(cv::Rect(10, 6, 8, 16)) = 255;
  r.ink_box = cv::Rect(300, 100, 100, 100);
  r.probabilities.assign(10, 0.0f);
  r.probabilities[3] = 0.75f;
  r.probabilities[5] = 0.25f;
  r.predicted = 3;
  r.confidence = 0.75;
  return r;
}

const cv::Scalar kMagenta(255, 0, 255);  // in no palette: only the user's image has it

TEST(PredictWindow, FileViewFitsTheImageAndDrawsTheInkBoxOnIt) {
  const auto& info = dataset_info(DatasetName::kMnist);
  const cv::Mat view =
      render_file_view(prediction(cv::Mat(300, 600, CV_8UC3, kMagenta)), info, "1/1");
  const cv::Rect shown = box_of(view, kMagenta);
  ASSERT_FALSE(shown.empty());
  EXPECT_GE(shown.width, 200);
  EXPECT_NEAR(shown.width, 2 * shown.height, 2) << "the aspect ratio is kept";
  // The ink box (300, 100, 100x100 of 600x300) scaled to where the image is shown.
  const double s = shown.width / 600.0;
  const cv::Rect ink = box_of(view, kGreen);
  ASSERT_FALSE(ink.empty());
  EXPECT_NEAR(ink.x, shown.x + 300 * s, 1.5);
  EXPECT_NEAR(ink.y, shown.y + 100 * s, 1.5);
  EXPECT_NEAR(ink.width, 100 * s, 1.5);
  EXPECT_NEAR(ink.height, 100 * s, 1.5);
  EXPECT_EQ(count_near(view, kRed, 40), 0) << "no error to show";
}

// A folder-trained colour model's input (16x32 here, not MNIST's 28x28 gray) is shown in its
// colours, fitted to the input panel with its aspect ratio.
TEST(PredictWindow, AColourModelsInputIsShownInColourAtItsOwnShape) {
  const auto& info = dataset_info(DatasetName::kMnist);
  ImageResult r = prediction(cv::Mat(100, 100, CV_8UC3, cv::Scalar(255, 255, 255)));
  r.input = cv::Mat(16, 32, CV_8UC3, kMagenta);
  const cv::Mat view = render_file_view(r, info, "1/1");
  const cv::Rect shown = box_of(view, kMagenta);
  ASSERT_FALSE(shown.empty()) << "the colour input is not shown";
  EXPECT_GE(shown.width, 250);
  EXPECT_NEAR(shown.width, 2 * shown.height, 2) << "the aspect ratio is kept";
  EXPECT_EQ(count_of(view, kMagenta), shown.area()) << "shown whole, in one colour";
}

TEST(PredictWindow, ThePredictedClassHasTheHighlightedBarAndTheOthersAreInProportion) {
  const auto& info = dataset_info(DatasetName::kMnist);
  const cv::Mat view =
      render_file_view(prediction(cv::Mat(300, 600, CV_8UC3, kMagenta)), info, "1/1");
  const cv::Rect best = box_of(view, kOrange), other = box_of(view, kBlue);
  ASSERT_FALSE(best.empty());
  ASSERT_FALSE(other.empty());
  // One bar each (filled rectangles), the same height, class 5's two rows below class 3's.
  EXPECT_EQ(count_of(view, kOrange), best.area());
  EXPECT_EQ(count_of(view, kBlue), other.area());
  EXPECT_EQ(best.height, other.height);
  EXPECT_EQ(best.x, other.x);
  const int row = (other.y - best.y) / 2;
  EXPECT_EQ(other.y - best.y, 2 * row);
  EXPECT_GT(row, best.height);
  EXPECT_NEAR(other.width * 3.0, best.width, 3.0) << "25% is a third of 75%";
}

TEST(PredictWindow, AnErrorIsShownInRedWithoutBars) {
  const auto& info = dataset_info(DatasetName::kMnist);
  ImageResult r;
  r.path = "broken.png";
  r.error = "cannot decode the image";
  const cv::Mat view = render_file_view(r, info, "2/3");
  EXPECT_GT(count_near(view, kRed, 40), 50);
  EXPECT_EQ(count_of(view, kOrange), 0);
  EXPECT_EQ(count_of(view, kBlue), 0);
  EXPECT_EQ(count_of(view, kGreen), 0);
}

// The panel's centre is the draw canvas's centre (the canvas sits in the same panel).
cv::Vec3b panel_centre(const cv::Mat& view) {
  const cv::Rect c = draw_canvas_rect();
  return view.at<cv::Vec3b>(c.y + c.height / 2, c.x + c.width / 2);
}

TEST(PredictWindow, SixteenBitGrayAndTransparentImagesAreShownAsAPersonSeesThem) {
  const auto& info = dataset_info(DatasetName::kMnist);
  ImageResult r = prediction(cv::Mat());
  r.ink_box = cv::Rect();
  r.image = cv::Mat(60, 60, CV_16UC1, cv::Scalar(32896));  // 128 * 257
  EXPECT_EQ(panel_centre(render_file_view(r, info, "1/2")), cv::Vec3b(128, 128, 128));
  // Fully transparent red: the light checkerboard behind it, not red.
  r.image = cv::Mat(64, 64, CV_8UC4, cv::Scalar(0, 0, 255, 0));
  const cv::Mat view = render_file_view(r, info, "2/2");
  const cv::Vec3b centre = panel_centre(view);
  EXPECT_TRUE(centre == cv::Vec3b(205, 205, 205) || centre == cv::Vec3b(245, 245, 245)) << centre;
  EXPECT_GT(count_of(view, cv::Scalar(205, 205, 205)), 1000);
  EXPECT_GT(count_of(view, cv::Scalar(245, 245, 245)), 1000);
}

TEST(PredictWindow, TheDrawViewShowsTheCanvasExactlyWhereTheMouseMapsTo) {
  const auto& info = dataset_info(DatasetName::kMnist);
  cv::Mat canvas(kDrawCanvasSide, kDrawCanvasSide, CV_8UC1, cv::Scalar(255));
  cv::line(canvas, {10, 20}, {200, 250}, cv::Scalar(0), 9);
  cv::circle(canvas, {220, 60}, 30, cv::Scalar(90), cv::FILLED);
  const cv::Mat blank = render_draw_view(canvas, nullptr, info);
  // Inside its one-pixel frame, the view's pixels are the canvas's.
  const cv::Rect area = draw_canvas_rect();
  ASSERT_EQ(area.size(), canvas.size());
  const cv::Rect inner(1, 1, area.width - 2, area.height - 2);
  cv::Mat expected;
  cv::cvtColor(canvas(inner), expected, cv::COLOR_GRAY2BGR);
  const cv::Mat shown = blank(area)(inner);
  EXPECT_EQ(cv::norm(shown, expected, cv::NORM_INF), 0.0);
  // Nothing predicted yet: no bars; with a prediction, its bar.
  EXPECT_EQ(count_of(blank, kOrange), 0);
  EXPECT_EQ(count_of(blank, kBlue), 0);
  const ImageResult r = prediction(cv::Mat());
  EXPECT_GT(count_of(render_draw_view(canvas, &r, info), kOrange), 100);
}

// e: the input panel shows the attribution overlay in place of the plain input, with a caption
// naming the class explained; without it the panel is the input as before.
TEST(PredictWindow, TheExplainKeyShowsTheOverlayInTheInputPanel) {
  const ImageResult r = prediction(cv::Mat(300, 600, CV_8UC3, kMagenta));
  DatasetInfo info = dataset_info(DatasetName::kMnist);
  auto map = torch::zeros({28, 28});
  map.index_put_({torch::indexing::Slice(6, 22), torch::indexing::Slice(10, 18)}, 1.0);
  map[0][0] = -0.5;
  const cv::Mat why = attribution_overlay(r.input, map, 10);
  ASSERT_EQ(why.size(), cv::Size(280, 280));
  const cv::Vec3b up = why.at<cv::Vec3b>(100, 140), down = why.at<cv::Vec3b>(5, 5);
  EXPECT_GT(up[2], 200);    // red where the score went up
  EXPECT_GT(down[0], 100);  // blue where it went down
  EXPECT_LT(down[2], 100);
  const cv::Mat plain = render_file_view(r, info, "1/1");
  const cv::Mat explained = render_file_view(r, info, "1/1", why);
  EXPECT_EQ(count_near(plain, cv::Scalar(40, 40, 230), 2), 0);
  EXPECT_GT(count_near(explained, cv::Scalar(40, 40, 230), 2), 1000);
  cv::Mat diff;
  cv::absdiff(plain, explained, diff);
  cv::Mat changed = diff.reshape(1, diff.rows * diff.cols);
  EXPECT_GT(cv::countNonZero(changed), 1000);
  const cv::Mat drawn =
      render_draw_view(cv::Mat(280, 280, CV_8UC1, cv::Scalar(255)), &r, info, why);
  EXPECT_GT(count_near(drawn, cv::Scalar(40, 40, 230), 2), 1000);
}

}  // namespace
}  // namespace mnist::vision
