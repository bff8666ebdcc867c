// The IDX reader: round trips, and every way a corrupt or wrong file can fail, each a DataError
// that names the file.

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/data/dataset.h"
#include "mnist/data/idx.h"
#include "mnist/io/files.h"
#include "support.h"

namespace mnist {
namespace {

using testing::read_bytes;
using testing::TempDir;
using testing::write_bytes;

// Expects read to throw a DataError whose message names `path` and contains `fragment`.
template <typename Fn>
void expect_data_error(Fn&& read, const std::string& path, const std::string& fragment) {
  try {
    read();
    FAIL() << "no error for " << path << " (expected \"" << fragment << "\")";
  } catch (const DataError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find(fragment), std::string::npos) << what;
  }
}

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string image_file(uint32_t n, uint32_t rows, uint32_t cols, size_t payload) {
  return be32(0x803) + be32(n) + be32(rows) + be32(cols) + std::string(payload, '\x7f');
}

TEST(Idx, RoundTripRawAndGzip) {
  TempDir dir;
  const auto images = torch::randint(0, 256, {5, 28, 28}, torch::kInt64).to(torch::kUInt8);
  const auto labels = torch::tensor({0, 9, 3, 3, 7}, torch::kUInt8);
  for (const std::string ext : {"", ".gz"}) {
    write_idx_images(dir / ("img" + ext), images);
    write_idx_labels(dir / ("lab" + ext), labels);
    EXPECT_TRUE(torch::equal(read_idx_images(dir / ("img" + ext), 28, 28), images));
    EXPECT_TRUE(torch::equal(read_idx_labels(dir / ("lab" + ext), 10), labels.to(torch::kInt64)));
  }
  // The gzip file really is compressed, not a raw file with another name.
  EXPECT_EQ(read_bytes(dir / "img.gz").substr(0, 2), "\x1f\x8b");
}

TEST(Idx, BadMagic) {
  TempDir dir;
  write_bytes(dir / "f", be32(0x801) + be32(1) + be32(28) + be32(28) + std::string(784, 'x'));
  expect_data_error([&] { read_idx_images(dir / "f", 28, 28); }, dir / "f",
                    "bad magic number 0x00000801");
}

TEST(Idx, TruncatedAndTrailingBytes) {
  TempDir dir;
  write_bytes(dir / "short", image_file(2, 28, 28, 784 * 2 - 1));
  expect_data_error([&] { read_idx_images(dir / "short", 28, 28); }, dir / "short", "truncated");
  write_bytes(dir / "long", image_file(2, 28, 28, 784 * 2 + 1));
  expect_data_error([&] { read_idx_images(dir / "long", 28, 28); }, dir / "long", "trailing bytes");
  write_bytes(dir / "header", be32(0x803) + be32(2));
  expect_data_error([&] { read_idx_images(dir / "header", 28, 28); }, dir / "header",
                    "truncated header");
  write_bytes(dir / "tiny", "ab");
  expect_data_error([&] { read_idx_images(dir / "tiny", 28, 28); }, dir / "tiny", "too short");
}

TEST(Idx, AbsurdDeclaredSizeIsRefusedWithoutAllocating) {
  TempDir dir;
  // Declares 4 billion images of 65535x65535: refused from the header, long before any allocation.
  write_bytes(dir / "f", image_file(0xffffffffu, 0xffff, 0xffff, 10));
  expect_data_error([&] { read_idx_images(dir / "f", 28, 28); }, dir / "f",
                    "more data than the file can hold");
  write_bytes(dir / "g", image_file(1000000, 28, 28, 784));
  expect_data_error([&] { read_idx_images(dir / "g", 28, 28); }, dir / "g", "truncated");
}

TEST(Idx, WrongImageSize) {
  TempDir dir;
  write_bytes(dir / "f", image_file(1, 27, 28, 27 * 28));
  expect_data_error([&] { read_idx_images(dir / "f", 28, 28); }, dir / "f",
                    "images are 27x28, expected 28x28");
}

TEST(Idx, EmptySplit) {
  TempDir dir;
  write_bytes(dir / "f", image_file(0, 28, 28, 0));
  expect_data_error([&] { read_idx_images(dir / "f", 28, 28); }, dir / "f", "empty split");
}

TEST(Idx, LabelOutOfRange) {
  TempDir dir;
  write_bytes(dir / "f", be32(0x801) + be32(3) + std::string("\x01\x0a\x02", 3));
  expect_data_error([&] { read_idx_labels(dir / "f", 10); }, dir / "f",
                    "label 10 at index 1 is out of range 0..9");
}

TEST(Idx, GzipProblems) {
  TempDir dir;
  const auto images = torch::zeros({20, 28, 28}, torch::kUInt8) + 5;
  write_idx_images(dir / "good.gz", images);
  const std::string gz = read_bytes(dir / "good.gz");

  write_bytes(dir / "cut.gz", gz.substr(0, gz.size() / 2));
  expect_data_error([&] { read_idx_images(dir / "cut.gz", 28, 28); }, dir / "cut.gz",
                    "corrupt gzip");

  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 6] ^= 0x55;  // inside the CRC-32 of the trailer
  write_bytes(dir / "crc.gz", bad_crc);
  expect_data_error([&] { read_idx_images(dir / "crc.gz", 28, 28); }, dir / "crc.gz",
                    "corrupt gzip");

  write_bytes(dir / "plain.gz", image_file(1, 28, 28, 784));
  expect_data_error([&] { read_idx_images(dir / "plain.gz", 28, 28); }, dir / "plain.gz",
                    "not a gzip file");
}

TEST(Idx, MissingFileAndDirectory) {
  TempDir dir;
  expect_data_error([&] { read_idx_images(dir / "nope", 28, 28); }, dir / "nope", "no such file");
  expect_data_error([&] { read_idx_images(dir.path(), 28, 28); }, dir.path(), "is a directory");
}

TEST(Dataset, LoadsSplitsFromRawOrGzipAndSplitsValidationBySeed) {
  TempDir raw, gz;
  testing::write_synthetic_mnist(raw.path(), 200, 50, /*gzip=*/false);
  testing::write_synthetic_mnist(gz.path(), 200, 50, /*gzip=*/true);
  DataConfig cfg;
  cfg.dir = raw.path();
  cfg.val_size = 30;
  const auto a = load_splits(cfg, 1);
  cfg.dir = gz.path();
  const auto b = load_splits(cfg, 1);
  EXPECT_EQ(a.train.size(), 170);
  EXPECT_EQ(a.val.size(), 30);
  EXPECT_EQ(a.test.size(), 50);
  EXPECT_TRUE(
      torch::equal(a.val.images, b.val.images));  // same seed, same split, whatever the format
  const auto c = load_splits(cfg, 2);
  EXPECT_FALSE(torch::equal(a.val.labels, c.val.labels) &&
               torch::equal(a.val.images, c.val.images));
  // Validation and training images are disjoint and together the whole training file: as multisets
  // of images (each image's bytes a key; the file's images are all different), the same.
  const auto keys = [](const at::Tensor& images) {
    const auto bytes = images.contiguous();
    const int64_t size = bytes[0].numel();
    std::vector<std::string> k;
    for (int64_t i = 0; i < bytes.size(0); ++i) {
      k.emplace_back(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()) + i * size,
                     static_cast<size_t>(size));
    }
    std::sort(k.begin(), k.end());
    return k;
  };
  const auto whole = keys(read_idx_images(raw / "train-images-idx3-ubyte", 28, 28));
  ASSERT_EQ(std::adjacent_find(whole.begin(), whole.end()), whole.end());
  EXPECT_EQ(keys(torch::cat({a.train.images, a.val.images})), whole);
  EXPECT_EQ(a.train.images.size(0) + a.val.images.size(0), 200);
}

TEST(Dataset, CountMismatchAndMissingFilesNameTheFile) {
  TempDir dir;
  testing::write_synthetic_mnist(dir.path(), 20, 10);
  write_idx_labels(dir / "t10k-labels-idx1-ubyte", torch::zeros({9}, torch::kUInt8));
  DataConfig cfg;
  cfg.dir = dir.path();
  cfg.val_size = 0;
  expect_data_error([&] { load_splits(cfg, 0); }, dir / "t10k-labels-idx1-ubyte", "holds 9 labels");
  std::filesystem::remove(dir / "train-images-idx3-ubyte");
  expect_data_error([&] { load_splits(cfg, 0); }, dir / "train-images-idx3-ubyte", "not found");
}

TEST(Dataset, ValidationLargerThanTrainingIsAConfigError) {
  TempDir dir;
  testing::write_synthetic_mnist(dir.path(), 20, 10);
  DataConfig cfg;
  cfg.dir = dir.path();
  cfg.val_size = 20;
  EXPECT_THROW(load_splits(cfg, 0), UsageError);
}

TEST(Dataset, SeededPermutationIsAPermutationAndDependsOnSeedAndStream) {
  const auto p = seeded_permutation(1000, 5, 1);
  EXPECT_TRUE(torch::equal(std::get<0>(p.sort()), torch::arange(1000)));
  EXPECT_TRUE(torch::equal(p, seeded_permutation(1000, 5, 1)));
  EXPECT_FALSE(torch::equal(p, seeded_permutation(1000, 5, 2)));
  EXPECT_FALSE(torch::equal(p, seeded_permutation(1000, 6, 1)));
  // Pinned: the order must not change between library versions or platforms.
  EXPECT_TRUE(torch::equal(seeded_permutation(10, 0, 0),
                           torch::tensor({6, 1, 2, 4, 7, 5, 3, 0, 9, 8}, torch::kInt64)));
}

TEST(Dataset, ModelInputScalesToUnitRange) {
  const auto x = torch::tensor({0, 51, 255}, torch::kUInt8).view({1, 1, 3});
  const auto y = to_model_input(x);
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({1, 1, 1, 3}));
  EXPECT_TRUE(torch::allclose(y.flatten(), torch::tensor({0.0f, 0.2f, 1.0f})));
}

}  // namespace
}  // namespace mnist
