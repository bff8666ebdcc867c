#include "mnist/tools/mnistm.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"
#include "mnist/data/dataset.h"
#include "mnist/data/idx.h"
#include "mnist/io/files.h"
#include "mnist/io/run_folder.h"
#include "mnist/vision/image_io.h"

namespace mnist::tools {
namespace {

namespace fs = std::filesystem;

constexpr int kSide = 28;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// A uniform integer in [0, bound) by rejection: specified, unlike std::uniform_int_distribution,
// so the plan is the same with every standard library.
uint64_t below(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
  uint64_t r;
  do {
    r = rng();
  } while (r >= limit);
  return r % bound;
}

void write_png(const cv::Mat& image, const fs::path& path) {
  std::vector<uint8_t> bytes;
  if (!cv::imencode(".png", image, bytes)) throw RunError(path.string() + ": cannot encode PNG");
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  if (!out) throw RunError(path.string() + ": cannot write");
}

int64_t write_split(const std::string& mnist_dir, const std::string& prefix, const char* split,
                    const std::vector<cv::Mat>& photos, uint64_t seed, uint64_t stream,
                    int64_t limit, const fs::path& out) {
  auto images =
      read_idx_images(find_idx_file(mnist_dir, prefix + "-images-idx3-ubyte"), kSide, kSide);
  auto labels = read_idx_labels(find_idx_file(mnist_dir, prefix + "-labels-idx1-ubyte"), 10);
  int64_t n = std::min(images.size(0), labels.size(0));
  if (limit > 0) n = std::min(n, limit);
  const auto plan = plan_patches(n, photos, seed, stream);
  for (int d = 0; d < 10; ++d) fs::create_directories(out / split / std::to_string(d));
  images = images.contiguous();
  const auto* label = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (stop_requested() != 0) throw Interrupted(stop_requested(), "stopped; nothing was written");
    const cv::Mat digit(kSide, kSide, CV_8UC1, images[i].data_ptr<uint8_t>());
    const Patch& patch = plan[static_cast<size_t>(i)];
    const cv::Mat blended = compose_mnistm(digit, photos[static_cast<size_t>(patch.photo)], patch);
    char name[32];
    std::snprintf(name, sizeof name, "%05lld.png", static_cast<long long>(i));
    write_png(blended, out / split / std::to_string(label[i]) / name);
  }
  return n;
}

}  // namespace

std::vector<cv::Mat> load_photos(const std::vector<std::string>& paths, int short_side) {
  std::vector<cv::Mat> photos;
  for (const auto& path : paths) {
    cv::Mat image = vision::read_image(path);
    if (image.depth() == CV_16U) image.convertTo(image, CV_8U, 1.0 / 257);
    if (image.depth() != CV_8U) throw DataError(path + ": not an 8- or 16-bit image");
    if (image.channels() == 4) cv::cvtColor(image, image, cv::COLOR_BGRA2BGR);
    if (image.channels() == 1) cv::cvtColor(image, image, cv::COLOR_GRAY2BGR);
    if (image.channels() != 3) throw DataError(path + ": not a colour image");
    const int shorter = std::min(image.rows, image.cols);
    if (shorter > short_side) {
      const double s = static_cast<double>(short_side) / shorter;
      cv::resize(image, image,
                 cv::Size(std::max(kSide, static_cast<int>(std::lround(image.cols * s))),
                          std::max(kSide, static_cast<int>(std::lround(image.rows * s)))),
                 0, 0, cv::INTER_AREA);
    }
    if (image.rows < kSide || image.cols < kSide) throw DataError(path + ": smaller than 28x28");
    photos.push_back(image);
  }
  if (photos.empty()) throw UsageError("--photos: no photographs given");
  return photos;
}

std::vector<Patch> plan_patches(int64_t n, const std::vector<cv::Mat>& photos, uint64_t seed,
                                uint64_t stream) {
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(stream)));
  std::vector<Patch> plan(static_cast<size_t>(n));
  for (auto& p : plan) {
    p.photo = static_cast<int64_t>(below(rng, photos.size()));
    const cv::Mat& photo = photos[static_cast<size_t>(p.photo)];
    p.x = static_cast<int>(below(rng, static_cast<uint64_t>(photo.cols - kSide + 1)));
    p.y = static_cast<int>(below(rng, static_cast<uint64_t>(photo.rows - kSide + 1)));
  }
  return plan;
}

cv::Mat compose_mnistm(const cv::Mat& digit, const cv::Mat& photo, const Patch& patch) {
  CV_Assert(digit.type() == CV_8UC1 && digit.rows == kSide && digit.cols == kSide &&
            photo.type() == CV_8UC3);
  const cv::Mat bg = photo(cv::Rect(patch.x, patch.y, kSide, kSide));
  cv::Mat out(kSide, kSide, CV_8UC3);
  for (int y = 0; y < kSide; ++y) {
    const auto* d = digit.ptr<uint8_t>(y);
    const auto* b = bg.ptr<cv::Vec3b>(y);
    auto* o = out.ptr<cv::Vec3b>(y);
    for (int x = 0; x < kSide; ++x) {
      const int ink = d[x] > 0 ? 255 : 0;
      for (int c = 0; c < 3; ++c) o[x][c] = static_cast<uint8_t>(std::abs(b[x][c] - ink));
    }
  }
  return out;
}

MnistmSummary build_mnistm(const MnistmOptions& o) {
  RunFolder::check_new(o.out);
  std::error_code ec;
  if (fs::exists(o.out, ec)) fs::remove(o.out, ec);  // check_new allows an empty folder
  const auto photos = load_photos(o.photos);
  const fs::path out(o.out);
  const fs::path partial = out.string() + ".partial-" + std::to_string(::getpid());
  fs::remove_all(partial, ec);
  fs::create_directories(partial);
  MnistmSummary s;
  try {
    s.train = write_split(o.mnist_dir, "train", "train", photos, o.seed, kMnistmTrainStream,
                          o.limit, partial);
    s.test = write_split(o.mnist_dir, "t10k", "test", photos, o.seed, kMnistmTestStream, o.limit,
                         partial);
    std::ostringstream readme;
    readme << "MNIST-M, built by mnist-mnistm (lib/include/mnist/tools/mnistm.h has the "
              "construction).\n"
           << "seed " << o.seed << "; " << s.train << " training and " << s.test
           << " test images from " << o.mnist_dir << "\nphotographs (scaled to a shorter side "
           << "of 321 px):\n";
    for (size_t i = 0; i < o.photos.size(); ++i) {
      readme << "  " << o.photos[i] << "  " << photos[i].cols << "x" << photos[i].rows << "\n";
    }
    write_file_atomic((partial / "README.txt").string(), readme.str());
    fs::rename(partial, out);
  } catch (...) {
    fs::remove_all(partial, ec);
    throw;
  }
  return s;
}

}  // namespace mnist::tools
