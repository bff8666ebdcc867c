#include "mnist/tools/stage_profile.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/tools/bench.h"
#include "mnist/vision/image_io.h"

namespace mnist::bench {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

/// A canvas's PNG: the 280x280 drawing of a 7 that scripts/bench_serve.py sends (dark strokes,
/// 20 px wide, on white), opaque RGBA as a browser's canvas.toBlob gives it.
std::vector<uint8_t> drawing() {
  cv::Mat img(280, 280, CV_8UC4, cv::Scalar(255, 255, 255, 255));
  const cv::Scalar ink(17, 17, 17, 255);
  cv::line(img, {70, 60}, {210, 60}, ink, 20, cv::LINE_AA);
  cv::line(img, {210, 60}, {120, 240}, ink, 20, cv::LINE_AA);
  std::vector<uint8_t> out;
  cv::imencode(".png", img, out);
  return out;
}

/// A digit written with a pen: `text` in Hershey strokes, dark on the given paper.
void write_digit(cv::Mat& img, const std::string& text, const cv::Scalar& ink) {
  const double scale = std::min(img.rows, img.cols) / 40.0;
  const int thickness = std::max(2, std::min(img.rows, img.cols) / 40);
  int baseline = 0;
  const cv::Size size =
      cv::getTextSize(text, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
  const cv::Point at((img.cols - size.width) / 2, (img.rows + size.height) / 2);
  cv::putText(img, text, at, cv::FONT_HERSHEY_SIMPLEX, scale, ink, thickness, cv::LINE_AA);
}

/// Sensor noise: Gaussian with deviation `sigma` (grey levels) added to every channel of an 8-bit
/// image, seeded, saturated.
void add_noise(cv::Mat& img, double sigma, uint64_t seed) {
  const int type = CV_MAKETYPE(CV_16S, img.channels());
  cv::Mat noise(img.size(), type);
  cv::RNG rng(seed);
  rng.fill(noise, cv::RNG::NORMAL, 0, sigma);
  cv::Mat noisy;
  img.convertTo(noisy, type);
  noisy += noise;
  noisy.convertTo(img, img.type());
}

/// A flatbed scan: 1000x1000 gray, white paper with a little sensor noise, a dark 3.
std::vector<uint8_t> scan() {
  cv::Mat img(1000, 1000, CV_8UC1, cv::Scalar(238));
  write_digit(img, "3", cv::Scalar(35));
  add_noise(img, 1.0, 7);
  std::vector<uint8_t> out;
  cv::imencode(".png", img, out);
  return out;
}

/// A phone photo of paper: light falling off to one corner, a warm tint, noise, a blue-black 5;
/// JPEG at quality 90.
std::vector<uint8_t> photo(int width, int height) {
  cv::Mat img(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    auto* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      const double t = 0.5 * (static_cast<double>(x) / width + static_cast<double>(y) / height);
      const double light = 235 - 90 * t;
      row[x] =
          cv::Vec3b(cv::saturate_cast<uint8_t>(light * 0.92),
                    cv::saturate_cast<uint8_t>(light * 0.97), cv::saturate_cast<uint8_t>(light));
    }
  }
  write_digit(img, "5", cv::Scalar(70, 40, 30));
  add_noise(img, 6.0, 11);
  std::vector<uint8_t> out;
  cv::imencode(".jpg", img, out, {cv::IMWRITE_JPEG_QUALITY, 90});
  return out;
}

StageRow profile_one(const Predictor& predictor, const std::string& label,
                     const std::vector<uint8_t>& bytes, vision::Route route, int iterations) {
  // As the web server decodes uploads: JPEGs reduced so the longer side stays >= 512 px.
  vision::DecodeLimits limits;
  limits.reduce_to = 512;
  const vision::Framing framing = vision::framing_for(predictor.info().name);
  std::vector<double> decode, resize, background, threshold, crop, inference, total;
  StageRow row;
  row.image = label;
  const int warmup = std::max(2, iterations / 10);
  for (int i = 0; i < warmup + iterations; ++i) {
    const auto start = Clock::now();
    const cv::Mat image = vision::decode_image(bytes, label, limits);
    const double d = ms_since(start);
    vision::PreprocessProfile p;
    const vision::Preprocessed pre = vision::preprocess_digit(image, label, framing, &p, route);
    const auto infer = Clock::now();
    const at::Tensor probs = predictor.probabilities(vision::digits_to_tensor({pre.digit}));
    const double inf = ms_since(infer);
    const double all = ms_since(start);
    if (i < warmup) continue;
    decode.push_back(d);
    resize.push_back(p.resize);
    background.push_back(p.background);
    threshold.push_back(p.threshold);
    crop.push_back(p.crop);
    inference.push_back(inf);
    total.push_back(all);
    row.route = pre.clean_route ? "clean" : "robust";
    row.digit = static_cast<int>(probs.argmax(1).item<int64_t>());
  }
  row.decode_ms = median(decode);
  row.stages.resize = median(resize);
  row.stages.background = median(background);
  row.stages.threshold = median(threshold);
  row.stages.crop = median(crop);
  row.inference_ms = median(inference);
  row.total_ms = median(total);
  return row;
}

}  // namespace

std::vector<StageRow> profile_stages(const Predictor& predictor, int iterations) {
  const torch::NoGradGuard no_grad;
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  cv::setNumThreads(0);  // OpenCV's own pool off: one worker, one thread
  struct Case {
    std::string label;
    std::vector<uint8_t> bytes;
    int iterations;
  };
  const std::vector<Case> cases = {
      {"drawing 280x280 PNG", drawing(), iterations},
      {"scan 1000x1000 PNG", scan(), iterations},
      {"photo 1000x1000 JPEG", photo(1000, 1000), iterations},
      {"photo 4000x3000 JPEG", photo(4000, 3000), std::max(5, iterations / 20)},
  };
  std::vector<StageRow> rows;
  for (const auto& c : cases) {
    // The two routes alternate per image, each after its own warm-up.
    rows.push_back(profile_one(predictor, c.label, c.bytes, vision::Route::kChoose, c.iterations));
    StageRow robust =
        profile_one(predictor, c.label, c.bytes, vision::Route::kRobust, c.iterations);
    if (rows.back().route == "clean") rows.push_back(robust);
  }
  at::set_num_threads(threads);
  return rows;
}

std::string stage_table(const std::vector<StageRow>& rows) {
  std::string out =
      "| image | route | decode | resize | background | threshold | crop/centre | inference | "
      "total ms | digit |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  char line[512];
  for (const auto& r : rows) {
    std::snprintf(
        line, sizeof line, "| %s | %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %d |\n",
        r.image.c_str(), r.route.c_str(), r.decode_ms, r.stages.resize, r.stages.background,
        r.stages.threshold, r.stages.crop, r.inference_ms, r.total_ms, r.digit);
    out += line;
  }
  return out;
}

}  // namespace mnist::bench
