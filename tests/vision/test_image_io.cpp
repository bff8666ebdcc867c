// Reading users' files: every format OpenCV decodes here round-trips; every bad input is one
// DataError naming the file, decided before decoding where it can be (size limits, truncation).

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/tools/userset.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/preprocess.h"
#include "support.h"

namespace mnist::vision {
namespace {

/// The message of the DataError that reading `path` throws ("" when it does not throw).
std::string read_error(const std::string& path) {
  try {
    read_image(path);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

void expect_refused(const std::string& path, const std::string& fragment) {
  const std::string msg = read_error(path);
  EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << "message must start with the path: " << msg;
  EXPECT_NE(msg.find(fragment), std::string::npos) << msg;
}

cv::Mat sample(int type, int w = 40, int h = 30) {
  cv::Mat img(h, w, type, cv::Scalar::all(0));
  const double top = CV_MAT_DEPTH(type) == CV_16U ? 65535 : 255;
  cv::circle(img, {w / 2, h / 2}, h / 3, cv::Scalar::all(top), 3);
  return img;
}

TEST(ImageIo, EveryFormatRoundTrips) {
  testing::TempDir tmp;
  struct Case {
    std::string ext;
    int type;
  };
  for (const Case& c : {Case{".png", CV_8UC1}, Case{".png", CV_8UC3}, Case{".png", CV_8UC4},
                        Case{".png", CV_16UC1}, Case{".jpg", CV_8UC3}, Case{".bmp", CV_8UC3},
                        Case{".tif", CV_8UC1}, Case{".tiff", CV_16UC1}, Case{".webp", CV_8UC3},
                        Case{".pgm", CV_8UC1}, Case{".ppm", CV_8UC3}}) {
    const std::string path = tmp / ("img" + c.ext);
    ASSERT_TRUE(cv::imwrite(path, sample(c.type))) << c.ext;
    const cv::Mat back = read_image(path);
    EXPECT_EQ(back.cols, 40) << c.ext;
    EXPECT_EQ(back.rows, 30) << c.ext;
    EXPECT_EQ(back.depth(), CV_MAT_DEPTH(c.type)) << c.ext;
    EXPECT_TRUE(has_image_extension(path)) << c.ext;
  }
  EXPECT_FALSE(has_image_extension("labels.csv"));
  EXPECT_TRUE(has_image_extension("SCAN.JPG"));
}

TEST(ImageIo, EveryBadFileIsOneErrorNamingIt) {
  testing::TempDir tmp;
  const auto bad = write_bad_images(tmp.path());
  const std::map<std::string, std::string> expected = {
      {"bad_empty.png", "empty file"},
      {"bad_text.png", "not an image"},
      {"bad_truncated.png", "truncated PNG"},
      {"bad_truncated.jpg", "truncated JPEG"},
      {"bad_1x1.png", "1x1 pixels is too small"},
      {"bad_bomb.png", "30000x30000 pixels is larger than the limit of 64 megapixels"},
      {"bad_folder.png", "is a directory"}};
  ASSERT_EQ(bad.size(), expected.size());
  for (const auto& path : bad) {
    expect_refused(path, expected.at(std::filesystem::path(path).filename().string()));
  }
  expect_refused(tmp / "missing.png", "no such file");
}

TEST(ImageIo, SpecialFilesAreRefusedWithoutHanging) {
  testing::TempDir tmp;
  const std::string fifo = tmp / "pipe.png";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_refused(fifo, "not a regular file");  // opening a FIFO for reading would block forever
  if (geteuid() == 0) {
    expect_refused("/proc/self/mem", "cannot read");  // root reads any mode; this one fails
  } else {
    const std::string locked = tmp / "locked.png";
    ASSERT_TRUE(cv::imwrite(locked, sample(CV_8UC1)));
    chmod(locked.c_str(), 0);
    expect_refused(locked, "cannot open");
  }
}

TEST(ImageIo, SizeLimitsAreCheckedInTheHeader) {
  std::vector<uint8_t> png;
  cv::imencode(".png", cv::Mat(8, 8, CV_8UC1, cv::Scalar(0)), png);
  EXPECT_EQ(check_image_bytes(png, "ok.png").width, 8);
  cv::imencode(".png", cv::Mat(8, 7, CV_8UC1, cv::Scalar(0)), png);
  EXPECT_THROW(check_image_bytes(png, "narrow.png"), DataError);
  // Sides whose product does not fit in 64 bits (a PGM header, found by fuzzing) are too large, not
  // an overflow.
  try {
    check_image_size(3777777777777, 7777777777777, "huge.pgm", "PGM image");
    ADD_FAILURE() << "accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("megapixels"), std::string::npos) << e.what();
  }
  // A BMP header declaring 9000 x 9000 pixels (81 megapixels) is refused before any pixel is read.
  std::vector<uint8_t> bmp;
  cv::imencode(".bmp", cv::Mat(8, 8, CV_8UC3, cv::Scalar::all(0)), bmp);
  const int32_t big = 9000;
  std::memcpy(&bmp[18], &big, 4);
  std::memcpy(&bmp[22], &big, 4);
  try {
    check_image_bytes(bmp, "huge.bmp");
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("megapixels"), std::string::npos) << e.what();
  }
  // JPEG and PNG cut anywhere are refused (never half decoded).
  std::vector<uint8_t> jpg;
  cv::imencode(".jpg", sample(CV_8UC3, 64, 64), jpg);
  cv::imencode(".png", sample(CV_8UC3, 64, 64), png);
  for (const auto* full : {&jpg, &png}) {
    for (size_t cut = 1; cut < full->size(); cut += full->size() / 17) {
      const std::vector<uint8_t> part(full->begin(), full->begin() + static_cast<long>(cut));
      EXPECT_THROW(decode_image(part, "cut"), DataError) << cut << " of " << full->size();
    }
    EXPECT_NO_THROW(decode_image(*full, "whole"));
  }
}

// The digit pipeline's decoding (DecodeLimits, digit_decode_limits: the web server and
// mnist-predict): JPEG photos reduced by libjpeg's DCT scaling as far as their longer side stays at
// least `reduce_to`, other formats never; the pixel limit counts the decoded image; and the reduced
// photo gives the model the same digit as the full one.
TEST(ImageIo, LargeJpegPhotosAreDecodedReducedAndGiveTheSameDigit) {
  const DecodeLimits web{12'000'000, 1024};
  EXPECT_EQ(decode_reduction({"JPEG", 6000, 4000}, web), 4);  // 1500 x 1000
  EXPECT_EQ(decode_reduction({"JPEG", 4000, 3000}, web), 2);  // 2000 x 1500
  EXPECT_EQ(decode_reduction({"JPEG", 3000, 4000}, web), 2);
  EXPECT_EQ(decode_reduction({"JPEG", 2047, 1000}, web), 1);
  EXPECT_EQ(decode_reduction({"JPEG", 20000, 9000}, web), 8);
  EXPECT_EQ(decode_reduction({"PNG", 6000, 4000}, web), 1);
  EXPECT_EQ(decode_reduction({"JPEG", 6000, 4000}, DecodeLimits()), 1);  // the naive pipeline's
  EXPECT_EQ(decode_reduction({"JPEG", 4000, 3000}, digit_decode_limits()), 4);  // 1000 x 750
  EXPECT_EQ(decode_reduction({"JPEG", 1023, 1000}, digit_decode_limits()), 1);

  // A 4000x3000 phone-style photo: lit unevenly, paper texture, a dark 7.
  cv::Mat photo(3000, 4000, CV_8UC3);
  cv::RNG rng(7);
  for (int y = 0; y < photo.rows; ++y) {
    auto* row = photo.ptr<cv::Vec3b>(y);
    for (int x = 0; x < photo.cols; ++x) {
      const int base = 200 + 30 * x / photo.cols - 20 * y / photo.rows + rng.uniform(-6, 7);
      row[x] = cv::Vec3b(static_cast<uint8_t>(base - 10), static_cast<uint8_t>(base - 4),
                         static_cast<uint8_t>(base));
    }
  }
  cv::line(photo, {1500, 900}, {2500, 900}, cv::Scalar(40, 35, 30), 90);
  cv::line(photo, {2500, 900}, {1800, 2200}, cv::Scalar(40, 35, 30), 90);
  std::vector<uint8_t> jpg;
  cv::imencode(".jpg", photo, jpg, {cv::IMWRITE_JPEG_QUALITY, 90});
  int reduction = 0;
  const cv::Mat reduced = decode_image(jpg, "photo.jpg", web, &reduction);
  EXPECT_EQ(reduction, 2);
  EXPECT_EQ(reduced.cols, 2000);
  EXPECT_EQ(reduced.rows, 1500);
  const cv::Mat full = decode_image(jpg, "photo.jpg");
  ASSERT_EQ(full.cols, 4000);
  const auto a = preprocess_digit(full, "full");
  const auto b = preprocess_digit(reduced, "reduced");
  cv::Mat diff;
  cv::absdiff(a.digit, b.digit, diff);
  EXPECT_LT(cv::mean(diff)[0], 3.0) << "mean difference of the 28x28 inputs (0..255)";
  EXPECT_NEAR(a.ink_box.x, b.ink_box.x * reduction, 8);
  EXPECT_NEAR(a.ink_box.width, b.ink_box.width * reduction, 16);

  // The limit counts decoded pixels: the photo fits at 1/2, not whole.
  EXPECT_NO_THROW(decode_image(jpg, "photo.jpg", {4'000'000, 1024}));
  EXPECT_THROW(decode_image(jpg, "photo.jpg", {4'000'000, 0}), UnusableImage);
  std::vector<uint8_t> png;
  cv::imencode(".png", cv::Mat(3000, 3000, CV_8UC1, cv::Scalar(255)), png);
  try {
    decode_image(png, "big.png", {4'000'000, 1024});
    FAIL() << "no error";
  } catch (const UnusableImage& e) {
    EXPECT_NE(std::string(e.what()).find("limit of 4 megapixels"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mnist::vision
