#include "mnist/vision/canvas.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/io/files.h"

namespace mnist::vision {
namespace {
constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
}  // namespace

int text_width(const std::string& text, double scale, int thickness) {
  int baseline = 0;
  return cv::getTextSize(text, kFont, scale, thickness, &baseline).width;
}

void put_text_centered(cv::Mat& img, const std::string& text, int x, int y, double scale,
                       const cv::Scalar& color, int thickness) {
  cv::putText(img, text, {x - text_width(text, scale, thickness) / 2, y}, kFont, scale, color,
              thickness, cv::LINE_AA);
}

void put_text_right(cv::Mat& img, const std::string& text, int x, int y, double scale,
                    const cv::Scalar& color, int thickness) {
  cv::putText(img, text, {x - text_width(text, scale, thickness), y}, kFont, scale, color,
              thickness, cv::LINE_AA);
}

std::vector<double> nice_ticks(double lo, double hi, int max_ticks) {
  if (!(hi > lo)) hi = lo + 1.0;
  const double raw = (hi - lo) / std::max(1, max_ticks - 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    step = m * mag;
    if (step >= raw) break;
  }
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push_back(std::abs(v) < step * 1e-9 ? 0.0 : v);
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  const int decimals = std::clamp(static_cast<int>(std::ceil(-std::log10(step) - 1e-9)), 0, 6);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

cv::Mat gray_tile(const uint8_t* pixels, int height, int width, int scale) {
  cv::Mat gray(height, width, CV_8UC1, const_cast<uint8_t*>(pixels));
  cv::Mat big, bgr;
  cv::resize(gray, big, {width * scale, height * scale}, 0, 0, cv::INTER_NEAREST);
  cv::cvtColor(big, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

cv::Scalar blues(double t) {
  t = std::clamp(t, 0.0, 1.0);
  // Three stops of matplotlib's "Blues" (BGR): near white, mid blue, dark navy.
  const cv::Vec3d stops[3] = {{247, 251, 247}, {225, 158, 66}, {107, 48, 8}};
  const double pos = t * 2.0;
  const int i = std::min(1, static_cast<int>(pos));
  const double f = pos - i;
  const cv::Vec3d c = stops[i] * (1.0 - f) + stops[i + 1] * f;
  return {c[0], c[1], c[2]};
}

void save_png(const cv::Mat& img, const std::string& path) {
  std::vector<uint8_t> buf;
  if (!cv::imencode(".png", img, buf)) throw RunError(path + ": PNG encoding failed");
  write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

}  // namespace mnist::vision
