#include "mnist/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <tuple>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/data/idx.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;

// Stream ids for seeded_permutation: each use of randomness draws from its own stream.
constexpr uint64_t kValidationSplitStream = 0x5eed'0001;

const std::vector<DatasetInfo>& known_datasets() {
  static const std::vector<DatasetInfo> kAll = {
      {"mnist", 1, 28, 28, {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}, {}},
      {"fashion-mnist",
       1,
       28,
       28,
       {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
        "Ankle boot"},
       {}},
  };
  return kAll;
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Dataset load_pair(const DataConfig& data, const DatasetInfo& info, const std::string& prefix) {
  if (data.dataset == DatasetName::kFolder) {
    throw UsageError(
        "data.dataset: image folders are read by mnist::vision::load_dataset (this "
        "program was built without OpenCV)");
  }
  Dataset d;
  const auto images_path = find_idx_file(data.dir, prefix + "-images-idx3-ubyte");
  const auto labels_path = find_idx_file(data.dir, prefix + "-labels-idx1-ubyte");
  d.images = read_idx_images(images_path, info.height, info.width);
  d.labels = read_idx_labels(labels_path, info.num_classes());
  if (d.images.size(0) != d.labels.size(0)) {
    throw DataError(labels_path + ": holds " + std::to_string(d.labels.size(0)) + " labels but " +
                    images_path + " holds " + std::to_string(d.images.size(0)) + " images");
  }
  d.images = match_channels(d.images, data.channels);
  return d;
}

DatasetInfo idx_info(const DataConfig& data) {
  DatasetInfo info = dataset_info(data.dataset);
  info.channels = data.channels;
  return info;
}

}  // namespace

const DatasetInfo& dataset_info(DatasetName name) {
  static const DatasetInfo kFolder{"folder", 1, 0, 0, {}, {}};
  for (const auto& info : known_datasets()) {
    if (info.name == name_of(name)) return info;
  }
  return kFolder;
}

nlohmann::json dataset_info_json(const DatasetInfo& info) {
  return {{"name", info.name},
          {"channels", info.channels},
          {"height", info.height},
          {"width", info.width},
          {"class_names", info.class_names},
          {"normalization", {{"mean", info.normalization.mean}, {"std", info.normalization.std}}}};
}

DatasetInfo dataset_info_from_json(const nlohmann::json& j, const std::string& source) {
  DatasetInfo info;
  try {
    info.name = j.at("name").get<std::string>();
    info.channels = j.at("channels").get<int64_t>();
    info.height = j.at("height").get<int64_t>();
    info.width = j.at("width").get<int64_t>();
    info.class_names = j.at("class_names").get<std::vector<std::string>>();
    info.normalization.mean = j.at("normalization").at("mean").get<std::vector<float>>();
    info.normalization.std = j.at("normalization").at("std").get<std::vector<float>>();
  } catch (const nlohmann::json::exception& e) {
    throw DataError(source + ": not a data set description (" + e.what() + ")");
  }
  const auto channels = static_cast<size_t>(info.channels);
  const bool normalized = !info.normalization.mean.empty();
  if ((info.channels != 1 && info.channels != 3) || info.height < 1 || info.width < 1 ||
      info.height > 4096 || info.width > 4096 || info.class_names.size() < 2 ||
      (normalized &&
       (info.normalization.mean.size() != channels || info.normalization.std.size() != channels)) ||
      info.normalization.std.size() != info.normalization.mean.size()) {
    throw DataError(source + ": inconsistent data set description");
  }
  for (const float s : info.normalization.std) {
    if (!(s > 0.0f)) throw DataError(source + ": normalization.std must be positive");
  }
  return info;
}

int64_t Dataset::size() const {
  return labels.defined() ? labels.size(0) : 0;
}

Dataset Dataset::subset(const at::Tensor& indices) const {
  Dataset d{images.index_select(0, indices), labels.index_select(0, indices), normalization, {}};
  if (!files.empty()) {
    const auto idx = indices.to(torch::kCPU).to(torch::kInt64).contiguous();
    for (int64_t i = 0; i < idx.numel(); ++i) {
      d.files.push_back(files.at(static_cast<size_t>(idx.data_ptr<int64_t>()[i])));
    }
  }
  return d;
}

std::string find_idx_file(const std::string& dir, const std::string& name) {
  const auto raw = (fs::path(dir) / name).string();
  const auto gz = raw + ".gz";
  std::error_code ec;
  if (fs::exists(raw, ec)) return raw;
  if (fs::exists(gz, ec)) return gz;
  throw DataError(raw + ": not found (nor " + name + ".gz); scripts/fetch_mnist.sh fetches MNIST");
}

std::pair<Dataset, Dataset> split_validation(const Dataset& full_train, int64_t val_size,
                                             int64_t seed) {
  const int64_t n = full_train.size();
  if (val_size < 0 || val_size >= n) {
    throw UsageError("data.val_size: " + std::to_string(val_size) +
                     " leaves no training images (the training split holds " + std::to_string(n) +
                     ")");
  }
  // Sorted index lists keep file order inside each split; training order comes from the epoch
  // shuffle.
  const auto perm = seeded_permutation(n, static_cast<uint64_t>(seed), kValidationSplitStream);
  return {full_train.subset(std::get<0>(perm.narrow(0, val_size, n - val_size).sort())),
          full_train.subset(std::get<0>(perm.narrow(0, 0, val_size).sort()))};
}

Splits load_splits(const DataConfig& data, int64_t seed) {
  Splits s;
  s.info = idx_info(data);
  const Dataset full_train = load_pair(data, s.info, "train");
  s.test = load_pair(data, s.info, "t10k");
  const int64_t val_size = data.val_size < 0 ? kIdxValidationImages : data.val_size;
  std::tie(s.train, s.val) = split_validation(full_train, val_size, seed);
  return s;
}

Dataset load_test_split(const DataConfig& data) {
  return load_pair(data, idx_info(data), "t10k");
}

Normalization channel_statistics(const at::Tensor& images) {
  TORCH_CHECK(images.scalar_type() == torch::kUInt8 && (images.dim() == 3 || images.dim() == 4),
              "channel_statistics: expected uint8 [N, H, W] or [N, H, W, C]");
  // Exact integer sums of the values and their squares per channel (a float copy of MNIST-M's
  // training split would be a gigabyte).
  const int64_t channels = images.dim() == 3 ? 1 : images.size(3);
  const auto pixels = images.to(torch::kCPU).contiguous();
  const auto* p = pixels.data_ptr<uint8_t>();
  const int64_t count = pixels.numel() / channels;
  std::vector<uint64_t> sum(static_cast<size_t>(channels), 0), squares(sum);
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t c = 0; c < channels; ++c) {
      const uint64_t v = p[i * channels + c];
      sum[static_cast<size_t>(c)] += v;
      squares[static_cast<size_t>(c)] += v * v;
    }
  }
  Normalization n;
  for (size_t c = 0; c < sum.size(); ++c) {
    const double mean = count > 0 ? static_cast<double>(sum[c]) / static_cast<double>(count) : 0.0;
    const double second =
        count > 0 ? static_cast<double>(squares[c]) / static_cast<double>(count) : 0.0;
    const double std = std::sqrt(std::max(0.0, second - mean * mean)) / 255.0;
    n.mean.push_back(static_cast<float>(mean / 255.0));
    n.std.push_back(std > 1e-6 ? static_cast<float>(std) : 1.0f);
  }
  return n;
}

at::Tensor seeded_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::mt19937_64 rng(splitmix64(seed ^ splitmix64(stream)));
  auto perm = torch::arange(n, torch::kInt64);
  auto* p = perm.data_ptr<int64_t>();
  // Fisher-Yates with rejection sampling: unbiased, and unlike std::uniform_int_distribution its
  // output is specified, so a seed means the same order with every standard library.
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t bound = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t r;
    do {
      r = rng();
    } while (r >= limit);
    std::swap(p[i], p[static_cast<int64_t>(r % bound)]);
  }
  return perm;
}

at::Tensor to_model_input(const at::Tensor& images, const Normalization& normalization) {
  TORCH_CHECK((images.dim() == 3 || images.dim() == 4) && images.scalar_type() == torch::kUInt8,
              "to_model_input: expected uint8 [B, H, W] or [B, H, W, C], got ", images.sizes(), " ",
              images.scalar_type());
  const auto nchw = images.dim() == 3 ? images.unsqueeze(1) : images.permute({0, 3, 1, 2});
  // Contiguous NCHW: a permuted colour batch would keep [B, H, W, C] strides, which Flatten's view
  // cannot take.
  auto x = nchw.to(torch::kFloat32).contiguous().div_(255.0f);
  if (normalization.empty()) return x;
  const auto channels = static_cast<int64_t>(normalization.mean.size());
  TORCH_CHECK(channels == x.size(1), "to_model_input: normalisation for ", channels,
              " channels, images have ", x.size(1));
  const auto options = torch::TensorOptions(torch::kFloat32);
  const auto mean = torch::tensor(normalization.mean, options).to(x.device()).view({1, -1, 1, 1});
  const auto std = torch::tensor(normalization.std, options).to(x.device()).view({1, -1, 1, 1});
  return x.sub_(mean).div_(std);
}

BatchGatherer::BatchGatherer(at::Tensor images, at::Tensor labels, int64_t max_batch,
                             Normalization normalization)
    : images_(std::move(images)),
      labels_(std::move(labels)),
      normalization_(std::move(normalization)) {
  const int64_t channels = images_.dim() == 4 ? images_.size(3) : 1;
  x_ = at::empty({max_batch, channels, images_.size(1), images_.size(2)},
                 images_.options().dtype(at::kFloat));
  y_ = at::empty({max_batch}, labels_.options());
}

std::pair<at::Tensor, at::Tensor> BatchGatherer::operator()(const at::Tensor& indices) {
  const int64_t b = indices.size(0);
  TORCH_CHECK(b <= x_.size(0), "BatchGatherer: batch of ", b, " > ", x_.size(0));
  const bool loop = !plain_paths() && images_.is_cpu() && images_.dim() == 3 &&
                    images_.is_contiguous() && labels_.is_contiguous() && indices.is_cpu() &&
                    indices.is_contiguous() && labels_.scalar_type() == at::kLong &&
                    indices.scalar_type() == at::kLong;
  if (!loop) {
    return {to_model_input(images_.index_select(0, indices), normalization_),
            labels_.index_select(0, indices)};
  }
  // Gray: one channel. The same float operations as to_model_input, in the same order.
  const float mean = normalization_.empty() ? 0.0f : normalization_.mean[0];
  const float std = normalization_.empty() ? 1.0f : normalization_.std[0];
  const bool standardise = !normalization_.empty();
  const int64_t pixels = images_.size(1) * images_.size(2), n = images_.size(0);
  const auto* src = images_.data_ptr<uint8_t>();
  const auto* lab = labels_.data_ptr<int64_t>();
  const auto* idx = indices.data_ptr<int64_t>();
  auto* x = x_.data_ptr<float>();
  auto* y = y_.data_ptr<int64_t>();
  for (int64_t i = 0; i < b; ++i) {
    const int64_t k = idx[i];
    TORCH_CHECK(k >= 0 && k < n, "BatchGatherer: index ", k, " out of range");
    const uint8_t* from = src + k * pixels;
    float* to = x + i * pixels;
    if (standardise) {
      for (int64_t j = 0; j < pixels; ++j)
        to[j] = (static_cast<float>(from[j]) / 255.0f - mean) / std;
    } else {
      for (int64_t j = 0; j < pixels; ++j) to[j] = static_cast<float>(from[j]) / 255.0f;
    }
    y[i] = lab[k];
  }
  return {x_.narrow(0, 0, b), y_.narrow(0, 0, b)};
}

at::Tensor match_channels(const at::Tensor& images, int64_t channels) {
  const int64_t have = images.dim() == 3 ? 1 : images.size(3);
  if (have == channels) return images;
  if (channels == 1) {
    // ITU-R BT.601 luma of RGB, rounded, as OpenCV's colour-to-gray conversion does.
    const auto rgb = images.to(torch::kFloat32);
    const auto luma =
        rgb.select(3, 0) * 0.299f + rgb.select(3, 1) * 0.587f + rgb.select(3, 2) * 0.114f;
    return luma.round_().clamp_(0, 255).to(torch::kUInt8);
  }
  TORCH_CHECK(have == 1, "match_channels: cannot turn ", have, " channels into ", channels);
  return (images.dim() == 3 ? images.unsqueeze(3) : images)
      .expand({-1, -1, -1, channels})
      .contiguous();
}

}  // namespace mnist
