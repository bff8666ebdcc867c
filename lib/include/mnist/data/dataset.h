#pragma once
// The data set in memory: uint8 images and int64 labels as whole tensors (MNIST's 70k images are 55
// MB), the seeded train/validation split, the per-epoch shuffle, and the one function that turns
// pixels into model input. Data flows one way: IDX files -> these tensors -> batches -> model.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mnist/config/config.h"

namespace mnist {

/// What a data set is: its name, image geometry and class names.
struct DatasetInfo {
  std::string name;      // as config key data.dataset spells it
  int64_t channels = 1;  // 1 for both gray-scale sets; models take their input channels from here
  int64_t height = 28;
  int64_t width = 28;
  std::vector<std::string> class_names;  // index = label
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

/// The description of the data set config key data.dataset names.
const DatasetInfo& dataset_info(DatasetName name);

/// Images and labels of one split.
struct Dataset {
  at::Tensor images;  // uint8 [N, H, W] (gray) or [N, H, W, C] (colour)
  at::Tensor labels;  // int64 [N]
  int64_t size() const;
  /// The samples at `indices` (int64 [K]), copied.
  Dataset subset(const at::Tensor& indices) const;
};

struct Splits {
  DatasetInfo info;
  Dataset train;  // the training file minus the validation images
  Dataset val;    // data.val_size images drawn from the training file by `seed`; may be empty
  Dataset test;   // the test file
};

/// The path of `name` (e.g. "train-images-idx3-ubyte") in `dir`, raw or with ".gz" (raw preferred);
/// DataError naming both candidates when neither exists.
std::string find_idx_file(const std::string& dir, const std::string& name);

/// Loads all three splits of config.data; DataError naming the file at fault; UsageError naming
/// data.val_size when it leaves no training images.
Splits load_splits(const DataConfig& data, int64_t seed);

/// Loads only the test split (evaluation).
Dataset load_test_split(const DataConfig& data);

/// A permutation of 0..n-1 (int64 [n]) that depends only on (seed, stream): the same on every
/// platform and after a resume, so shuffling needs no saved RNG state.
at::Tensor seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

/// The only place pixels become model input: uint8 [B, H, W] (gray) or [B, H, W, C] (colour, RGB)
/// -> float [B, C, H, W] in [0, 1] (Keras' x / 255), on the images' device. Training, evaluation
/// and prediction all call this.
at::Tensor to_model_input(const at::Tensor& images);

/// Training batches: images[indices] and labels[indices] gathered into buffers allocated once. On
/// the CPU a plain loop copies and scales the selected images in one pass; elsewhere it is
/// index_select and to_model_input. The values are to_model_input's either way.
class BatchGatherer {
 public:
  /// `images` uint8 [N, H, W] or [N, H, W, C] and `labels` int64 [N], on one device.
  BatchGatherer(at::Tensor images, at::Tensor labels, int64_t max_batch);
  /// {float [B, C, H, W] in [0, 1], int64 [B]} for int64 `indices` [B] (B <= max_batch), on the
  /// data's device. Views of the buffers: valid until the next call.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& indices);

 private:
  at::Tensor images_, labels_, x_, y_;
};

/// Converts uint8 images to the `channels` a model was trained on: RGB [B, H, W, 3] to gray
/// [B, H, W] by luma, gray to C identical channels [B, H, W, C]; unchanged when they match.
at::Tensor match_channels(const at::Tensor& images, int64_t channels);

}  // namespace mnist
