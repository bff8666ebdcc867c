// The MNIST-M construction (tools/mnistm.h) on a few digits: the blend rule, the plan's bounds and
// determinism, and a whole build written twice, byte for byte the same, each file being the blend
// of its digit and its planned patch.

#include <cstdio>
#include <filesystem>
#include <tuple>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

#include "mnist/core/error.h"
#include "mnist/data/idx.h"
#include "mnist/tools/mnistm.h"
#include "support.h"

namespace mnist::tools {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A colour "photograph" with texture: every pixel differs from its neighbours.
cv::Mat textured(int rows, int cols, int salt) {
  cv::Mat m(rows, cols, CV_8UC3);
  for (int y = 0; y < rows; ++y)
    for (int x = 0; x < cols; ++x)
      m.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uint8_t>((x * 7 + y * 3 + salt) % 256),
                                        static_cast<uint8_t>((x * 5 + y * 11) % 256),
                                        static_cast<uint8_t>((x + y * 13 + 2 * salt) % 256));
  return m;
}

TEST(Mnistm, TheBlendIsTheAbsoluteDifferenceOfThePatchAndTheBinarisedDigit) {
  cv::Mat digit(28, 28, CV_8UC1, cv::Scalar(0));
  digit(cv::Rect(10, 5, 6, 18)) = 255;
  digit.at<uint8_t>(2, 2) = 1;  // faint ink counts as ink (binarised at > 0)
  const cv::Mat photo = textured(60, 70, 3);
  const Patch patch{0, 17, 9};
  const cv::Mat out = compose_mnistm(digit, photo, patch);
  ASSERT_EQ(out.type(), CV_8UC3);
  for (int y = 0; y < 28; ++y) {
    for (int x = 0; x < 28; ++x) {
      const cv::Vec3b bg = photo.at<cv::Vec3b>(patch.y + y, patch.x + x);
      for (int c = 0; c < 3; ++c) {
        const int expected = digit.at<uint8_t>(y, x) > 0 ? 255 - bg[c] : bg[c];
        ASSERT_EQ(out.at<cv::Vec3b>(y, x)[c], expected) << "at " << x << "," << y << " c" << c;
      }
    }
  }
}

TEST(Mnistm, ThePlanIsDeterministicAndInsideThePhotographs) {
  const std::vector<cv::Mat> photos = {textured(40, 300, 1), textured(321, 29, 2)};
  const auto a = plan_patches(500, photos, 1, 7);
  const auto b = plan_patches(500, photos, 1, 7);
  const auto c = plan_patches(500, photos, 2, 7);
  int differ = 0, second = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].photo, b[i].photo);
    EXPECT_EQ(a[i].x, b[i].x);
    EXPECT_EQ(a[i].y, b[i].y);
    const cv::Mat& p = photos[static_cast<size_t>(a[i].photo)];
    ASSERT_GE(a[i].x, 0);
    ASSERT_GE(a[i].y, 0);
    ASSERT_LE(a[i].x + 28, p.cols);
    ASSERT_LE(a[i].y + 28, p.rows);
    differ += a[i].x != c[i].x || a[i].photo != c[i].photo;
    second += a[i].photo == 1;
  }
  EXPECT_GT(differ, 400);  // another seed, another plan
  EXPECT_GT(second, 200);  // both photographs used
  EXPECT_LT(second, 300);
}

TEST(Mnistm, ABuildIsTheSameFilesEveryTimeAndEachFileIsItsDigitsBlend) {
  TempDir tmp;
  const fs::path root(tmp.path());
  testing::write_synthetic_mnist((root / "mnist").string(), 40, 20);
  cv::imwrite((root / "p1.png").string(),
              textured(400, 500, 5));  // scaled to 321 on the short side
  cv::imwrite((root / "p2.png").string(), textured(50, 90, 9));
  MnistmOptions o;
  o.mnist_dir = (root / "mnist").string();
  o.photos = {(root / "p1.png").string(), (root / "p2.png").string()};
  o.limit = 25;
  o.out = (root / "a").string();
  const auto s = build_mnistm(o);
  EXPECT_EQ(s.train, 25);
  EXPECT_EQ(s.test, 20);
  o.out = (root / "b").string();
  build_mnistm(o);
  int files = 0;
  for (const auto& e : fs::recursive_directory_iterator(root / "a")) {
    if (!e.is_regular_file()) continue;
    ++files;
    const auto rel = fs::relative(e.path(), root / "a");
    ASSERT_EQ(testing::read_bytes(e.path().string()),
              testing::read_bytes((root / "b" / rel).string()))
        << rel;
  }
  EXPECT_EQ(files, 25 + 20 + 1);  // and README.txt
  for (const auto& e : fs::directory_iterator(root)) {
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
  }

  // Every image of both splits is the blend of its digit with the patch the plan gives it (the
  // plan of each split drawn from its own stream), in its label's folder: a build that ignored
  // the plan, or used one split's plan for the other, writes other files.
  const auto photos = load_photos(o.photos);
  EXPECT_EQ(std::min(photos[0].rows, photos[0].cols), 321);
  for (const auto& [prefix, split, stream, count] :
       {std::tuple{"train", "train", kMnistmTrainStream, 25},
        std::tuple{"t10k", "test", kMnistmTestStream, 20}}) {
    const auto images = read_idx_images(
        (root / "mnist" / (std::string(prefix) + "-images-idx3-ubyte")).string(), 28, 28);
    const auto labels = read_idx_labels(
        (root / "mnist" / (std::string(prefix) + "-labels-idx1-ubyte")).string(), 10);
    const auto plan = plan_patches(count, photos, o.seed, stream);
    for (int64_t i = 0; i < count; ++i) {
      char name[16];
      std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(i));
      const std::string file =
          (root / "a" / split / std::to_string(labels[i].item<int64_t>()) / name).string();
      const cv::Mat written = cv::imread(file, cv::IMREAD_COLOR);
      ASSERT_FALSE(written.empty()) << file;
      const cv::Mat digit(28, 28, CV_8UC1, images[i].contiguous().data_ptr<uint8_t>());
      const Patch& p = plan[static_cast<size_t>(i)];
      const cv::Mat blend = compose_mnistm(digit, photos[static_cast<size_t>(p.photo)], p);
      ASSERT_EQ(cv::norm(blend, written, cv::NORM_INF), 0) << file << " is not its planned blend";
    }
  }

  // An existing folder is refused.
  EXPECT_THROW(build_mnistm(o), UsageError);
}

}  // namespace
}  // namespace mnist::tools
