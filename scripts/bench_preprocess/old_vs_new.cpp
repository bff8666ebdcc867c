// scripts/bench_preprocess_vs.sh: an earlier revision's preprocess_digit (compiled with its
// namespace renamed to mnist_old) against the working tree's, alternating calls on one thread, as
// a server worker runs; medians in ms. The declarations below are the earlier API (66be0af).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <vector>
#include "mnist/core/runtime.h"
#include "mnist/vision/preprocess.h"
namespace mnist_old::vision {
struct Framing {
  int box = 20;
  bool centre_by_mass = true;
  bool normalise_stroke = true;
};
struct Preprocessed {
  cv::Mat digit;
  cv::Rect ink_box;
  bool dark_on_light = false;
};
Preprocessed preprocess_digit(const cv::Mat& image, const std::string& name,
                              const Framing& framing);
}  // namespace mnist_old::vision
using Clock = std::chrono::steady_clock;
double med(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}
int main(int argc, char** argv) {
  mnist::configure_runtime(1);
  cv::setNumThreads(0);
  struct Case {
    const char* name;
    cv::Mat img;
  };
  cv::Mat drawing(280, 280, CV_8UC4, cv::Scalar(255, 255, 255, 255));
  cv::line(drawing, {70, 60}, {210, 60}, cv::Scalar(17, 17, 17, 255), 20, cv::LINE_AA);
  cv::line(drawing, {210, 60}, {120, 240}, cv::Scalar(17, 17, 17, 255), 20, cv::LINE_AA);
  cv::Mat gray;
  cv::cvtColor(drawing, gray, cv::COLOR_BGRA2GRAY);
  cv::Mat photo(1000, 1000, CV_8UC3);
  cv::RNG rng(11);
  for (int y = 0; y < 1000; ++y)
    for (int x = 0; x < 1000; ++x) {
      const double l = 235 - 90 * 0.5 * (x / 1000.0 + y / 1000.0);
      photo.at<cv::Vec3b>(y, x) = cv::Vec3b(cv::saturate_cast<uchar>(l * 0.92 + rng.gaussian(6)),
                                            cv::saturate_cast<uchar>(l * 0.97 + rng.gaussian(6)),
                                            cv::saturate_cast<uchar>(l + rng.gaussian(6)));
    }
  cv::putText(photo, "5", {380, 700}, cv::FONT_HERSHEY_SIMPLEX, 25, cv::Scalar(70, 40, 30), 25,
              cv::LINE_AA);
  std::vector<Case> cases = {{"drawing 280x280 BGRA (canvas)", drawing},
                             {"drawing 280x280 gray (bench_serve's)", gray},
                             {"photo 1000x1000 BGR", photo}};
  const int n = argc > 1 ? atoi(argv[1]) : 300;
  for (auto& c : cases) {
    std::vector<double> told, tnew;
    int same = 0;
    for (int i = 0; i < n + 20; ++i) {
      auto t0 = Clock::now();
      auto a = mnist_old::vision::preprocess_digit(c.img, "x", {});
      auto t1 = Clock::now();
      auto b = mnist::vision::preprocess_digit(c.img, "x");
      auto t2 = Clock::now();
      if (i < 20) continue;
      told.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      tnew.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
      same = cv::norm(a.digit, b.digit, cv::NORM_INF);
    }
    std::printf("| %s | %.3f | %.3f | %.1fx | %d |\n", c.name, med(told), med(tnew),
                med(told) / med(tnew), same);
  }
}
