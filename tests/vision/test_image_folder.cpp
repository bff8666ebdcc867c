// Image-folder data sets (vision/image_folder.h) on small folders written here: gray and colour,
// mixed sizes and formats, class names from the folders, bad files (stop or skip and count), empty
// classes, the one-folder layout's test split, data.extra, the normalisation, and the cache (used,
// rebuilt when a file changes, never trusted when damaged).

#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/vision/image_folder.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/preprocess.h"
#include "support.h"

namespace mnist::vision {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// A solid BGR image of `rows` x `cols`.
cv::Mat solid(int rows, int cols, cv::Scalar bgr) {
  return cv::Mat(rows, cols, CV_8UC3, bgr);
}

void write(const fs::path& path, const cv::Mat& image) {
  fs::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), image)) << path;
}

DataConfig folder_config(const fs::path& dir, const fs::path& cache, int64_t channels = 3) {
  DataConfig d;
  d.dataset = DatasetName::kFolder;
  d.dir = dir.string();
  d.image_size = {8, 12};
  d.channels = channels;
  d.val_size = 0;
  d.cache_dir = cache.string();
  return d;
}

// ROOT/train/{blue,red}/... and ROOT/test/{blue,red}/...: colour and gray files, PNG and JPEG,
// in sizes other than the 8x12 the config asks for.
void write_two_class_set(const fs::path& root) {
  for (int i = 0; i < 4; ++i) {
    write(root / "train/red" / ("r" + std::to_string(i) + ".png"), solid(20 + i, 30, {0, 0, 200}));
    write(root / "train/blue" / ("b" + std::to_string(i) + ".png"), solid(16, 16 + i, {200, 0, 0}));
  }
  write(root / "train/blue/gray.png", cv::Mat(10, 10, CV_8UC1, cv::Scalar(90)));
  write(root / "train/blue/photo.jpg", solid(40, 60, {200, 0, 0}));
  write(root / "test/red/t.png", solid(8, 12, {0, 0, 200}));
  write(root / "test/blue/t.png", solid(8, 12, {200, 0, 0}));
  testing::write_bytes((root / "train/red/notes.txt").string(), "not an image: ignored");
}

TEST(ImageFolder, ColourFoldersGiveRgbTensorsAndClassNamesFromTheFolders) {
  TempDir tmp;
  const fs::path root(tmp.path());
  write_two_class_set(root / "set");
  const Splits s = load_dataset(folder_config(root / "set", root / "cache"), 1);
  EXPECT_EQ(s.info.name, "folder");
  EXPECT_EQ(s.info.class_names, (std::vector<std::string>{"blue", "red"}));
  EXPECT_EQ(s.info.channels, 3);
  EXPECT_EQ(s.info.height, 8);
  EXPECT_EQ(s.info.width, 12);
  ASSERT_EQ(s.train.images.sizes(), torch::IntArrayRef({10, 8, 12, 3}));
  ASSERT_EQ(s.test.images.sizes(), torch::IntArrayRef({2, 8, 12, 3}));
  // Files sorted by path: blue/b0..b3, blue/gray, blue/photo, red/r0..r3.
  const auto labels = s.train.labels;
  EXPECT_EQ(labels.sum().item<int64_t>(), 4);  // four red (label 1)
  EXPECT_EQ(labels[0].item<int64_t>(), 0);
  EXPECT_EQ(labels[9].item<int64_t>(), 1);
  // Red in BGR is (0, 0, 200): the tensor is RGB, so channel 0 holds the 200.
  const auto red = s.train.images[9];
  EXPECT_EQ(red.select(2, 0).min().item<int>(), 200);
  EXPECT_EQ(red.select(2, 2).max().item<int>(), 0);
  // The gray file became three equal channels.
  const auto gray = s.train.images[4].to(torch::kInt);
  EXPECT_TRUE(torch::equal(gray.select(2, 0), gray.select(2, 1)));
  EXPECT_EQ(gray.select(2, 0).max().item<int>(), 90);
  // The normalisation is the training split's, per channel, and every split carries it.
  const auto stats = channel_statistics(s.train.images);
  EXPECT_EQ(s.info.normalization, stats);
  EXPECT_EQ(s.test.normalization, stats);
  ASSERT_EQ(stats.mean.size(), 3u);
}

TEST(ImageFolder, GrayReadingConvertsColourByLuma) {
  TempDir tmp;
  const fs::path root(tmp.path());
  write_two_class_set(root / "set");
  const Splits s = load_dataset(folder_config(root / "set", root / "cache", 1), 1);
  ASSERT_EQ(s.train.images.sizes(), torch::IntArrayRef({10, 8, 12}));
  // OpenCV's luma of pure red 200: 0.299 * 200 = 59.8 -> 60.
  EXPECT_NEAR(s.train.images[9].to(torch::kFloat).mean().item<float>(), 60.0f, 1.0f);
  ASSERT_EQ(s.info.normalization.mean.size(), 1u);
}

TEST(ImageFolder, ABadFileStopsTheLoadNamingItOrIsSkippedAndCounted) {
  TempDir tmp;
  const fs::path root(tmp.path());
  write_two_class_set(root / "set");
  const auto bad = root / "set/train/red/broken.png";
  testing::write_bytes(bad.string(), "this is not a PNG");
  try {
    load_dataset(folder_config(root / "set", root / "cache"), 1);
    FAIL() << "a bad file was not reported";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("data.skip_bad"), std::string::npos) << e.what();
  }
  auto config = folder_config(root / "set", root / "cache");
  config.skip_bad = true;
  const Splits s = load_dataset(config, 1);
  EXPECT_EQ(s.train.size(), 10);
  ASSERT_EQ(s.notes.size(), 1u);
  EXPECT_NE(s.notes[0].find("skipped 1 unreadable"), std::string::npos) << s.notes[0];
  EXPECT_NE(s.notes[0].find(bad.string()), std::string::npos) << s.notes[0];
  // From the cache, the same count is reported again.
  const Splits again = load_dataset(config, 1);
  ASSERT_EQ(again.notes.size(), 1u);
  EXPECT_EQ(again.notes[0], s.notes[0]);
}

TEST(ImageFolder, AnEmptyTrainingClassIsAnErrorAnEmptyTestClassIsNot) {
  TempDir tmp;
  const fs::path root(tmp.path());
  write_two_class_set(root / "set");
  fs::create_directories(root / "set/test/green");  // a class with no test images: fine
  try {
    load_dataset(folder_config(root / "set", root / "cache"), 1);
    FAIL() << "an empty training class was accepted";
  } catch (const DataError& e) {
    // green exists only in test/: it has no training images.
    EXPECT_NE(std::string(e.what()).find("green"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no training images"), std::string::npos) << e.what();
  }
  write(root / "set/train/green/g.png", solid(8, 12, {0, 200, 0}));
  const Splits s = load_dataset(folder_config(root / "set", root / "cache"), 1);
  EXPECT_EQ(s.info.class_names, (std::vector<std::string>{"blue", "green", "red"}));
  EXPECT_EQ(s.test.size(), 2);
  // No class folders at all.
  fs::create_directories(root / "empty");
  EXPECT_THROW(load_dataset(folder_config(root / "empty", root / "cache"), 1), DataError);
}

TEST(ImageFolder, OneFolderLayoutHoldsOutTheSameTestImagesEveryTime) {
  TempDir tmp;
  const fs::path root(tmp.path());
  for (int i = 0; i < 10; ++i) {
    write(root / "set/a" / (std::to_string(i) + ".png"), solid(8, 12, {0, 0, 10.0 * i}));
    write(root / "set/b" / (std::to_string(i) + ".png"), solid(8, 12, {10.0 * i, 0, 0}));
  }
  auto config = folder_config(root / "set", root / "cache");
  config.test_fraction = 0.3;
  const Splits s = load_dataset(config, 1);
  EXPECT_EQ(s.test.size(), 6);  // 3 of each class
  EXPECT_EQ(s.train.size(), 14);
  EXPECT_EQ(s.test.labels.sum().item<int64_t>(), 3);
  const Splits other_seed = load_dataset(config, 2);  // the run's seed does not move the test split
  EXPECT_TRUE(torch::equal(s.test.images, other_seed.test.images));
  const TestSet t = load_test_set(config);  // evaluation sees the same images
  EXPECT_TRUE(torch::equal(s.test.images, t.data.images));
  EXPECT_EQ(t.class_names, s.info.class_names);
}

TEST(ImageFolder, ExtraFoldersJoinTrainingOnlyAndMustNameKnownClasses) {
  TempDir tmp;
  const fs::path root(tmp.path());
  write_two_class_set(root / "set");
  write(root / "fixes/red/x.png", solid(8, 12, {0, 0, 255}));
  auto config = folder_config(root / "set", root / "cache");
  config.val_size = 2;
  config.extra = {(root / "fixes").string()};
  config.extra_repeat = 3;
  const Splits s = load_dataset(config, 1);
  EXPECT_EQ(s.train.size(), 8 + 3);
  EXPECT_EQ(s.val.size(), 2);
  EXPECT_EQ(s.test.size(), 2);
  EXPECT_EQ(s.train.labels.narrow(0, 8, 3).sum().item<int64_t>(), 3);  // red, three times
  // The normalisation comes from the training split without the extras.
  EXPECT_EQ(s.info.normalization, channel_statistics(s.train.images.narrow(0, 0, 8)));
  // A folder that is not a class: an error naming it.
  write(root / "fixes/purple/y.png", solid(8, 12, {200, 0, 200}));
  try {
    load_dataset(config, 1);
    FAIL() << "an unknown class was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find((root / "fixes/purple").string()), std::string::npos)
        << e.what();
  }
  // The web page's folder-safe spelling of a class name is accepted.
  fs::remove_all(root / "fixes/purple");
  write(root / "set2/train/T-shirt top/a.png", solid(8, 12, {1, 2, 3}));
  write(root / "set2/train/bag/a.png", solid(8, 12, {1, 2, 3}));
  write(root / "set2/test/bag/a.png", solid(8, 12, {1, 2, 3}));
  write(root / "fixes2/T-shirt_top/a.png", solid(8, 12, {1, 2, 3}));
  auto safe = folder_config(root / "set2", root / "cache");
  safe.extra = {(root / "fixes2").string()};
  EXPECT_EQ(load_dataset(safe, 1).train.labels[2].item<int64_t>(), 0);
}

TEST(ImageFolder, TheCacheIsUsedAndRebuiltWhenAFileChanges) {
  TempDir tmp;
  const fs::path root(tmp.path());
  write_two_class_set(root / "set");
  const auto options = FolderOptions::from(folder_config(root / "set", root / "cache"));
  const std::vector<std::string> classes = {"blue", "red"};
  const auto first = read_image_folder((root / "set/train").string(), classes, options);
  EXPECT_FALSE(first.from_cache);
  const auto second = read_image_folder((root / "set/train").string(), classes, options);
  EXPECT_TRUE(second.from_cache);
  EXPECT_TRUE(torch::equal(first.data.images, second.data.images));
  EXPECT_TRUE(torch::equal(first.data.labels, second.data.labels));

  // A file rewritten with other pixels of the same size, well within the same second (the listing
  // keeps nanoseconds): the cache is rebuilt, the new pixels read.
  const auto changed = root / "set/train/red/r0.png";
  const auto before = fs::file_size(changed);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  write(changed, solid(20, 30, {0, 0, 100}));
  ASSERT_EQ(fs::file_size(changed), before) << "the rewrite must keep the size";
  const auto third = read_image_folder((root / "set/train").string(), classes, options);
  EXPECT_FALSE(third.from_cache);
  EXPECT_EQ(third.data.images[6].select(2, 0).max().item<int>(), 100);  // red/r0 is 7th

  // A file added: rebuilt, one more image.
  write(root / "set/train/red/r9.png", solid(8, 12, {0, 0, 50}));
  const auto fourth = read_image_folder((root / "set/train").string(), classes, options);
  EXPECT_FALSE(fourth.from_cache);
  EXPECT_EQ(fourth.data.size(), 11);

  // Other reading options use their own cache file.
  auto gray = options;
  gray.channels = 1;
  EXPECT_FALSE(read_image_folder((root / "set/train").string(), classes, gray).from_cache);
  EXPECT_TRUE(read_image_folder((root / "set/train").string(), classes, options).from_cache);

  // A damaged cache file is rebuilt, never trusted.
  std::vector<fs::path> cache_files;
  for (const auto& e : fs::directory_iterator(root / "cache")) cache_files.push_back(e.path());
  ASSERT_EQ(cache_files.size(), 2u);
  for (const auto& f : cache_files) {
    std::string bytes = testing::read_bytes(f.string());
    bytes[bytes.size() / 2] ^= 0x55;
    testing::write_bytes(f.string(), bytes);
  }
  const auto fifth = read_image_folder((root / "set/train").string(), classes, options);
  EXPECT_FALSE(fifth.from_cache);
  EXPECT_TRUE(torch::equal(fifth.data.images, fourth.data.images));

  // Caching off: nothing read from or written to the cache.
  auto off = options;
  off.cache = false;
  off.cache_dir = (root / "nocache").string();
  EXPECT_FALSE(read_image_folder((root / "set/train").string(), classes, off).from_cache);
  EXPECT_FALSE(fs::exists(root / "nocache"));
}

/// A photographed digit: `text` in dark ink on light grey paper, somewhere off centre, in an image
/// far from MNIST's size.
cv::Mat paper_digit(const std::string& text, int rows, int cols, int seed) {
  cv::Mat img(rows, cols, CV_8UC3, cv::Scalar(210, 220, 225));
  cv::putText(img, text, {cols / 5 + seed * 7, rows * 3 / 4}, cv::FONT_HERSHEY_SIMPLEX, rows / 60.0,
              cv::Scalar(40, 30, 30), std::max(2, rows / 25), cv::LINE_AA);
  return img;
}

// data.preprocess "digit": each image is framed as mnist-predict frames a photo (preprocess_digit),
// then brought to the folder's channels and size; a blank image is an error naming it (or skipped
// with skip_bad); the cache keeps the two readings apart.
TEST(ImageFolder, DigitPreprocessingFramesEachImageAsPredictionDoes) {
  TempDir tmp;
  const fs::path root(tmp.path());
  for (int i = 0; i < 3; ++i) {
    write(root / "set/train/three" / ("a" + std::to_string(i) + ".jpg"),
          paper_digit("3", 180 + 20 * i, 240, i));
    write(root / "set/train/seven" / ("b" + std::to_string(i) + ".png"),
          paper_digit("7", 300, 200 + 30 * i, i));
  }
  write(root / "set/test/three/t.png", paper_digit("3", 120, 90, 1));
  write(root / "set/test/seven/t.png", paper_digit("7", 90, 120, 2));
  DataConfig d = folder_config(root / "set", root / "cache", 1);
  d.image_size = {28, 28};
  d.preprocess = FolderPreprocess::kDigit;
  const Splits s = load_dataset(d, 1);
  ASSERT_EQ(s.train.images.sizes(), torch::IntArrayRef({6, 28, 28}));
  // Files sorted by path: seven/b0..b2, three/a0..a2.
  const std::vector<std::string> files = {"seven/b0.png", "seven/b1.png", "seven/b2.png",
                                          "three/a0.jpg", "three/a1.jpg", "three/a2.jpg"};
  for (size_t i = 0; i < files.size(); ++i) {
    const fs::path path = root / "set/train" / files[i];
    const cv::Mat expected = preprocess_digit(read_image(path.string()), "x").digit;
    const cv::Mat got(28, 28, CV_8UC1, s.train.images[static_cast<int64_t>(i)].data_ptr<uint8_t>());
    EXPECT_EQ(cv::norm(expected, got, cv::NORM_INF), 0) << files[i];
    // MNIST's look: bright ink on black, the paper gone.
    EXPECT_EQ(got.at<uint8_t>(0, 0), 0) << files[i];
    EXPECT_GT(cv::countNonZero(got > 128), 20) << files[i];
  }
  // The plain resize reads the same files otherwise (and from its own cache file).
  DataConfig resized = d;
  resized.preprocess = FolderPreprocess::kResize;
  const Splits r = load_dataset(resized, 1);
  EXPECT_GT(
      (r.train.images.to(torch::kInt) - s.train.images.to(torch::kInt)).abs().max().item<int>(),
      100);
  EXPECT_TRUE(load_dataset(d, 1).train.images.equal(s.train.images));
  // Colour and another size: the framed digit, repeated to RGB and resized.
  DataConfig colour = d;
  colour.channels = 3;
  colour.image_size = {32, 32};
  const Splits c = load_dataset(colour, 1);
  ASSERT_EQ(c.train.images.sizes(), torch::IntArrayRef({6, 32, 32, 3}));
  const cv::Mat first =
      preprocess_digit(read_image((root / "set/train" / files[0]).string()), "x").digit;
  const cv::Mat expected = resize_preprocess(first, 3, 32, 32);
  cv::Mat rgb;
  cv::cvtColor(expected, rgb, cv::COLOR_BGR2RGB);
  const cv::Mat got(32, 32, CV_8UC3, c.train.images[0].data_ptr<uint8_t>());
  EXPECT_EQ(cv::norm(rgb, got, cv::NORM_INF), 0);
  // A blank page has no digit: an error naming it, or skipped and counted.
  write(root / "set/train/three/blank.png", cv::Mat(100, 100, CV_8UC1, cv::Scalar(230)));
  try {
    load_dataset(d, 1);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("blank.png: no digit found"), std::string::npos)
        << e.what();
  }
  d.skip_bad = true;
  EXPECT_EQ(load_dataset(d, 1).train.size(), 6);
}

// A folder's default validation split is a share of its training images (data.val_fraction), not
// the IDX sets' 5,000, which no small folder has.
TEST(ImageFolder, TheDefaultValidationSplitIsAFractionOfTheTrainingImages) {
  TempDir tmp;
  const fs::path root(tmp.path());
  for (int i = 0; i < 25; ++i) {
    write(root / "set/train/a" / (std::to_string(i) + ".png"), solid(8, 12, {0, 0, 200}));
    write(root / "set/train/b" / (std::to_string(i) + ".png"), solid(8, 12, {200, 0, 0}));
  }
  write(root / "set/test/a/t.png", solid(8, 12, {0, 0, 200}));
  write(root / "set/test/b/t.png", solid(8, 12, {200, 0, 0}));
  DataConfig d = folder_config(root / "set", root / "cache");
  d.val_size = -1;  // the default
  const Splits s = load_dataset(d, 1);
  EXPECT_EQ(s.val.size(), 5);  // 10% of 50
  EXPECT_EQ(s.train.size(), 45);
  d.val_fraction = 0.3;
  EXPECT_EQ(load_dataset(d, 1).val.size(), 15);
  d.val_fraction = 0.001;  // rounds to none, but a split asked for keeps one image
  EXPECT_EQ(load_dataset(d, 1).val.size(), 1);
  d.val_fraction = 0;
  EXPECT_EQ(load_dataset(d, 1).val.size(), 0);
  d.val_size = 7;  // a count, when given, is the count
  EXPECT_EQ(load_dataset(d, 1).val.size(), 7);
  EXPECT_EQ(validation_size(d, 50), 7);
}

}  // namespace
}  // namespace mnist::vision
