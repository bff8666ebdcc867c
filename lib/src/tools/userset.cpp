#include "mnist/tools/userset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/io/bytes.h"
#include "mnist/io/files.h"

namespace mnist::vision {
namespace {

double uniform(std::mt19937& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}
int uniform_int(std::mt19937& rng, int lo, int hi) {
  return std::uniform_int_distribution<int>(lo, hi)(rng);
}

struct Pen {
  double edge = 0.45;  // level of the upscaled digit where the pen's edge is (higher = thinner)
  int grow = 0;        // extra dilation in pixels (thick markers)
};

/// The digit as a pen stroke: ink box scaled to `box` px on its longer side, crisp edges, rotated
/// by `angle` degrees; float [0, 1], cropped to the ink.
cv::Mat pen_stroke(const cv::Mat& digit, double box, double angle, const Pen& pen) {
  cv::Mat f;
  digit.convertTo(f, CV_32F, 1.0 / 255);
  cv::Mat nz;
  cv::findNonZero(digit, nz);
  const cv::Rect bb = cv::boundingRect(nz);
  const double s = box / std::max(bb.width, bb.height);
  const int pad = 2;
  const cv::Rect padded =
      cv::Rect(bb.x - pad, bb.y - pad, bb.width + 2 * pad, bb.height + 2 * pad) &
      cv::Rect(0, 0, digit.cols, digit.rows);
  cv::Mat big;
  cv::resize(f(padded), big, cv::Size(), s, s, cv::INTER_CUBIC);
  big = (big - pen.edge) / 0.2 + 0.5;
  big = cv::min(cv::max(big, 0.0), 1.0);
  if (pen.grow > 0) {
    cv::dilate(
        big, big,
        cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * pen.grow + 1, 2 * pen.grow + 1)));
  }
  if (angle != 0) {
    const int side = static_cast<int>(std::hypot(big.cols, big.rows)) + 2;
    cv::Mat square = cv::Mat::zeros(side, side, CV_32F);
    big.copyTo(square(cv::Rect((side - big.cols) / 2, (side - big.rows) / 2, big.cols, big.rows)));
    const cv::Mat rot = cv::getRotationMatrix2D(cv::Point2f(side / 2.0F, side / 2.0F), angle, 1.0);
    cv::warpAffine(square, big, rot, square.size(), cv::INTER_LINEAR);
  }
  cv::findNonZero(big > 0.02, nz);
  return big(cv::boundingRect(nz)).clone();
}

/// `stroke` placed on a canvas of `size`; `where` in [0, 1]^2 picks the position among those that
/// keep it inside (0.5, 0.5 = centred). Strokes larger than the canvas are shrunk to fit.
cv::Mat place(cv::Mat stroke, cv::Size size, cv::Point2d where) {
  const double fit =
      std::min({1.0, 0.98 * size.width / stroke.cols, 0.98 * size.height / stroke.rows});
  if (fit < 1.0) cv::resize(stroke, stroke, cv::Size(), fit, fit, cv::INTER_AREA);
  cv::Mat canvas = cv::Mat::zeros(size, CV_32F);
  const int x = static_cast<int>(where.x * (size.width - stroke.cols));
  const int y = static_cast<int>(where.y * (size.height - stroke.rows));
  stroke.copyTo(canvas(cv::Rect(x, y, stroke.cols, stroke.rows)));
  return canvas;
}

/// paper * (1 - ink) + colour * ink, per channel; `paper` is CV_32FC3 in [0, 255].
cv::Mat compose(const cv::Mat& ink, const cv::Mat& paper, const cv::Scalar& colour) {
  cv::Mat ink3;
  cv::cvtColor(ink, ink3, cv::COLOR_GRAY2BGR);
  cv::Mat solid(ink.size(), CV_32FC3, colour);
  return paper.mul(cv::Scalar::all(1.0) - ink3) + solid.mul(ink3);
}

cv::Scalar hsv_colour(double h, double s, double v) {
  cv::Mat px(1, 1, CV_8UC3, cv::Scalar(h, s, v));
  cv::cvtColor(px, px, cv::COLOR_HSV2BGR);
  const auto c = px.at<cv::Vec3b>(0, 0);
  return {double(c[0]), double(c[1]), double(c[2])};
}

cv::Mat to_8u(const cv::Mat& f) {
  cv::Mat out;
  f.convertTo(out, CV_8U);  // rounds and saturates
  return out;
}

cv::Mat gray_of(const cv::Mat& bgr) {
  cv::Mat g;
  cv::cvtColor(bgr, g, cv::COLOR_BGR2GRAY);
  return g;
}

// zlib's CRC-32 (the one PNG chunks carry).
uint32_t crc_of(const std::string& data) {
  return static_cast<uint32_t>(
      ::crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

void put_chunk(std::string& png, const std::string& type, const std::string& data) {
  append_be32(png, static_cast<uint32_t>(data.size()));
  const std::string body = type + data;
  png += body;
  append_be32(png, crc_of(body));
}

}  // namespace

const std::vector<std::string>& user_styles() {
  static const std::vector<std::string> styles = {
      "clean", "dark_on_white", "white_on_black", "off_centre",     "rotated", "thick",
      "thin",  "colour_ink",    "tinted_paper",   "noise_gradient", "jpeg",    "rgba_transparent",
      "png16"};
  return styles;
}

UserImage render_user_image(const cv::Mat& digit, const std::string& style, std::mt19937& rng) {
  CV_Assert(digit.type() == CV_8UC1);
  UserImage out;
  out.ext = ".png";
  if (style == "clean") {
    out.image = digit.clone();
    return out;
  }
  if (std::find(user_styles().begin(), user_styles().end(), style) == user_styles().end()) {
    throw UsageError("unknown user image style \"" + style + "\"");
  }
  // Size and placement shared by most styles: 64..400 px, aspect 3:4..4:3, digit 50-80% of the
  // shorter side, near the centre.
  const int w = uniform_int(rng, 64, 400);
  const int h = std::clamp(static_cast<int>(w * uniform(rng, 0.75, 1.33)), 64, 400);
  const cv::Size size(w, h);
  double box = uniform(rng, 0.5, 0.8) * std::min(w, h);
  cv::Point2d where(uniform(rng, 0.4, 0.6), uniform(rng, 0.4, 0.6));
  double angle = 0;
  Pen pen;
  if (style == "off_centre") {
    box = uniform(rng, 0.25, 0.45) * std::min(w, h);
    where = {uniform(rng, 0.0, 1.0), uniform(rng, 0.0, 1.0)};
  } else if (style == "rotated") {
    angle = uniform(rng, -12, 12);
  } else if (style == "thick") {
    pen.edge = 0.2;
    pen.grow = std::max(1, static_cast<int>(std::lround(box * uniform(rng, 0.03, 0.06))));
  } else if (style == "thin") {
    pen.edge = 0.8;
  } else if (style == "white_on_black") {
    box = uniform(rng, 0.6, 0.85) * std::min(w, h);
  }
  const cv::Mat ink = place(pen_stroke(digit, box, angle, pen), size, where);
  const double white = uniform(rng, 225, 255);
  const double black = uniform(rng, 0, 60);
  cv::Mat paper(size, CV_32FC3, cv::Scalar::all(white));

  if (style == "white_on_black") {
    paper = cv::Scalar::all(uniform(rng, 0, 30));
    out.image = gray_of(to_8u(compose(ink, paper, cv::Scalar::all(uniform(rng, 200, 255)))));
  } else if (style == "colour_ink") {
    paper = cv::Scalar(uniform(rng, 230, 255), uniform(rng, 230, 255), uniform(rng, 230, 255));
    out.image = to_8u(
        compose(ink, paper,
                hsv_colour(uniform(rng, 0, 180), uniform(rng, 150, 255), uniform(rng, 100, 230))));
  } else if (style == "tinted_paper") {
    paper = hsv_colour(uniform(rng, 0, 180), uniform(rng, 40, 120), uniform(rng, 170, 235));
    out.image = to_8u(compose(
        ink, paper, hsv_colour(uniform(rng, 90, 130), uniform(rng, 0, 200), uniform(rng, 20, 80))));
  } else if (style == "noise_gradient") {
    // A phone photo of paper: light falling off across the page, a darker corner, sensor noise.
    const double dark = uniform(rng, 110, 170);
    const double light = uniform(rng, 215, 250);
    const double theta = uniform(rng, 0, 2 * CV_PI);
    cv::Mat g(size, CV_32F);
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const double t = 0.5 + ((x - w / 2.0) * std::cos(theta) + (y - h / 2.0) * std::sin(theta)) /
                                   std::hypot(w, h);
        g.at<float>(y, x) = static_cast<float>(dark + (light - dark) * std::clamp(t, 0.0, 1.0));
      }
    }
    cv::Mat g3;
    cv::cvtColor(g, g3, cv::COLOR_GRAY2BGR);
    paper = g3.mul(cv::Scalar(uniform(rng, 0.9, 1.0), uniform(rng, 0.95, 1.0), 1.0));
    cv::Mat img = compose(ink, paper, cv::Scalar::all(uniform(rng, 20, 80)));
    cv::Mat noise(size, CV_32FC3);
    cv::theRNG().state = rng() | 1;  // OpenCV's generator, seeded from ours: reproducible
    cv::randn(noise, 0, uniform(rng, 5, 18));
    img += noise;
    out.image = to_8u(img);
  } else if (style == "jpeg") {
    out.image = to_8u(compose(ink, paper, cv::Scalar::all(black)));
    out.ext = ".jpg";
    out.jpeg_quality = uniform_int(rng, 10, 30);
  } else if (style == "rgba_transparent") {
    // A drawing app's export: the stroke opaque in any colour, the rest fully transparent (its
    // colour channels black or white, depending on the app).
    const cv::Scalar colour =
        uniform(rng, 0, 1) < 0.5
            ? cv::Scalar::all(0)
            : hsv_colour(uniform(rng, 0, 180), uniform(rng, 0, 255), uniform(rng, 0, 255));
    const double hidden = uniform(rng, 0, 1) < 0.5 ? 0 : 255;
    cv::Mat bgr = to_8u(compose(ink, cv::Mat(size, CV_32FC3, cv::Scalar::all(hidden)), colour));
    cv::Mat alpha = to_8u(ink * 255.0);
    std::vector<cv::Mat> ch;
    cv::split(bgr, ch);
    for (int y = 0; y < h; ++y) {  // stroke pixels keep the pen's colour under their coverage
      for (int x = 0; x < w; ++x) {
        if (alpha.at<uint8_t>(y, x) > 0) {
          for (int c = 0; c < 3; ++c) ch[c].at<uint8_t>(y, x) = static_cast<uint8_t>(colour[c]);
        }
      }
    }
    ch.push_back(alpha);
    cv::merge(ch, out.image);
  } else if (style == "png16") {
    cv::Mat img = compose(ink, paper, cv::Scalar::all(black));
    gray_of(img).convertTo(out.image, CV_16U, 257.0);
  } else {  // dark_on_white, off_centre, rotated, thick, thin: a pen on white paper
    out.image = gray_of(to_8u(compose(ink, paper, cv::Scalar::all(black))));
  }
  return out;
}

void write_user_image(const UserImage& img, const std::string& path) {
  std::vector<uint8_t> buf;
  std::vector<int> params;
  if (img.ext == ".jpg") params = {cv::IMWRITE_JPEG_QUALITY, img.jpeg_quality};
  if (!cv::imencode(img.ext, img.image, buf, params)) throw RunError(path + ": encoding failed");
  write_file_atomic(path, std::string(buf.begin(), buf.end()));
}

std::vector<std::string> write_bad_images(const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  std::vector<std::string> paths;
  auto write = [&](const std::string& name, const std::string& bytes) {
    const std::string p = (fs::path(dir) / name).string();
    write_file_atomic(p, bytes);
    paths.push_back(p);
  };
  cv::Mat digit(64, 64, CV_8UC1, cv::Scalar(255));
  cv::circle(digit, {32, 32}, 20, cv::Scalar(0), 6);
  std::vector<uint8_t> png, jpg, one;
  cv::imencode(".png", digit, png);
  cv::imencode(".jpg", digit, jpg);
  cv::imencode(".png", cv::Mat(1, 1, CV_8UC1, cv::Scalar(0)), one);
  write("bad_empty.png", "");
  write("bad_text.png", "This is a text file, not an image.\n");
  write("bad_truncated.png", std::string(png.begin(), png.begin() + png.size() / 2));
  write("bad_truncated.jpg", std::string(jpg.begin(), jpg.begin() + jpg.size() * 6 / 10));
  write("bad_1x1.png", std::string(one.begin(), one.end()));
  // A decompression bomb's header: 30000 x 30000 pixels (900 megapixels) declared by a tiny file.
  std::string bomb = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  append_be32(ihdr, 30000);
  append_be32(ihdr, 30000);
  ihdr += std::string("\x08\x00\x00\x00\x00", 5);  // 8-bit gray, deflate, no filter, no interlace
  put_chunk(bomb, "IHDR", ihdr);
  put_chunk(bomb, "IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
  put_chunk(bomb, "IEND", "");
  write("bad_bomb.png", bomb);
  const std::string folder = (fs::path(dir) / "bad_folder.png").string();
  fs::create_directories(folder);
  paths.push_back(folder);
  return paths;
}

}  // namespace mnist::vision
