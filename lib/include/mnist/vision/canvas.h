#pragma once
// Small drawing helpers shared by the figures (OpenCV, BGR 8-bit images).

#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace mnist::vision {

inline const cv::Scalar kWhite(255, 255, 255);
inline const cv::Scalar kBlack(0, 0, 0);
inline const cv::Scalar kGrid(225, 225, 225);
inline const cv::Scalar kAxis(90, 90, 90);
inline const cv::Scalar kBlue(180, 119, 31);    // matplotlib's C0, in BGR
inline const cv::Scalar kOrange(14, 127, 255);  // matplotlib's C1
inline const cv::Scalar kGreen(44, 160, 44);    // matplotlib's C2
inline const cv::Scalar kRed(40, 39, 214);      // matplotlib's C3

/// Text with its centre (horizontally) at x and its baseline at y.
void put_text_centered(cv::Mat& img, const std::string& text, int x, int y, double scale,
                       const cv::Scalar& color, int thickness = 1);
/// Text whose right end is at x, baseline at y.
void put_text_right(cv::Mat& img, const std::string& text, int x, int y, double scale,
                    const cv::Scalar& color, int thickness = 1);
/// Width in pixels of `text` at `scale`.
int text_width(const std::string& text, double scale, int thickness = 1);

/// "Nice" tick values (1, 2, 2.5, 5 x 10^k steps) covering [lo, hi], at most about `max_ticks`.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks);
/// A tick label with as few decimals as the step needs.
std::string tick_label(double value, double step);

/// A uint8 gray image [h, w] (row-major) scaled by `scale` with nearest neighbour, as BGR.
cv::Mat gray_tile(const uint8_t* pixels, int height, int width, int scale);

/// Interpolates white -> light blue -> dark blue for t in [0, 1] (the heatmap's colour scale).
cv::Scalar blues(double t);

/// Encodes `img` as PNG and writes it atomically; RunError naming `path` on failure.
void save_png(const cv::Mat& img, const std::string& path);

}  // namespace mnist::vision
