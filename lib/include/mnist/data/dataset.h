#pragma once
// The data set in memory: uint8 images and int64 labels as whole tensors (MNIST's 70k images are 55
// MB), the seeded train/validation split, the per-epoch shuffle, and the one function that turns
// pixels into model input. Data flows one way: IDX files -> these tensors -> batches -> model.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "mnist/config/config.h"

namespace mnist {

/// Per-channel standardisation of model input: x = (pixel / 255 - mean[c]) / std[c]. Empty (the
/// IDX sets, as the Keras tutorial): x = pixel / 255.
struct Normalization {
  std::vector<float> mean, std;
  bool empty() const { return mean.empty(); }
  bool operator==(const Normalization& o) const { return mean == o.mean && std == o.std; }
};

/// What a data set is: its name, image geometry, class names and input normalisation. A run folder
/// keeps it as dataset.json, from which prediction and evaluation rebuild the model's input.
struct DatasetInfo {
  std::string name;      // as config key data.dataset spells it
  int64_t channels = 1;  // models take their input channels from here
  int64_t height = 28;
  int64_t width = 28;
  std::vector<std::string> class_names;  // index = label
  Normalization normalization;
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
};

/// The description of an IDX data set (MNIST, Fashion-MNIST) as config key data.dataset names it;
/// for "folder", only the name (the rest comes from the folder).
const DatasetInfo& dataset_info(DatasetName name);

/// dataset.json of a run folder, and back; DataError naming `source` for a malformed file.
nlohmann::json dataset_info_json(const DatasetInfo& info);
DatasetInfo dataset_info_from_json(const nlohmann::json& j, const std::string& source);

/// Images and labels of one split.
struct Dataset {
  at::Tensor images;               // uint8 [N, H, W] (gray) or [N, H, W, C] (colour, RGB)
  at::Tensor labels;               // int64 [N]
  Normalization normalization;     // how the images become model input (to_model_input)
  std::vector<std::string> files;  // image folders: each image's file; empty for the IDX sets
  int64_t size() const;
  /// The samples at `indices` (int64 [K]), copied (their files too).
  Dataset subset(const at::Tensor& indices) const;
};

struct Splits {
  DatasetInfo info;
  Dataset train;  // the training file minus the validation images
  Dataset val;    // data.val_size images drawn from the training file by `seed`; may be empty
  Dataset test;   // the test file
  std::vector<std::string> notes;  // what the user should hear about reading (skipped files)
};

/// The path of `name` (e.g. "train-images-idx3-ubyte") in `dir`, raw or with ".gz" (raw preferred);
/// DataError naming both candidates when neither exists.
std::string find_idx_file(const std::string& dir, const std::string& name);

/// Loads all three splits of an IDX data set (config.data); DataError naming the file at fault;
/// UsageError naming data.val_size when it leaves no training images. Image folders are read by
/// mnist::vision::load_dataset (vision/image_folder.h), which calls this for the IDX sets.
Splits load_splits(const DataConfig& data, int64_t seed);

/// Loads only the test split of an IDX data set (evaluation).
Dataset load_test_split(const DataConfig& data);

/// The seeded train/validation split of `full_train` (data.val_size images drawn by `seed`; file
/// order kept inside each split). UsageError naming data.val_size when it leaves no training image.
std::pair<Dataset, Dataset> split_validation(const Dataset& full_train, int64_t val_size,
                                             int64_t seed);

/// Per-channel mean and standard deviation of `images` (uint8 [N, H, W] or [N, H, W, C]) on the
/// [0, 1] scale; a channel with no spread gets std 1.
Normalization channel_statistics(const at::Tensor& images);

/// A permutation of 0..n-1 (int64 [n]) that depends only on (seed, stream): the same on every
/// platform and after a resume, so shuffling needs no saved RNG state.
at::Tensor seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

/// The only place pixels become model input: uint8 [B, H, W] (gray) or [B, H, W, C] (colour, RGB)
/// -> float [B, C, H, W]: x / 255 (Keras'), then standardised per channel when `normalization` is
/// not empty; on the images' device. Training, evaluation and prediction all call this.
at::Tensor to_model_input(const at::Tensor& images, const Normalization& normalization = {});

/// Training batches: images[indices] and labels[indices] gathered into buffers allocated once. On
/// the CPU a plain loop copies and scales the selected images in one pass; elsewhere it is
/// index_select and to_model_input. The values are to_model_input's either way.
class BatchGatherer {
 public:
  /// `images` uint8 [N, H, W] or [N, H, W, C] and `labels` int64 [N], on one device.
  BatchGatherer(at::Tensor images, at::Tensor labels, int64_t max_batch,
                Normalization normalization = {});
  /// {float [B, C, H, W] in [0, 1], int64 [B]} for int64 `indices` [B] (B <= max_batch), on the
  /// data's device. Views of the buffers: valid until the next call.
  std::pair<at::Tensor, at::Tensor> operator()(const at::Tensor& indices);

 private:
  at::Tensor images_, labels_, x_, y_;
  Normalization normalization_;
};

/// Converts uint8 images to the `channels` a model was trained on: RGB [B, H, W, 3] to gray
/// [B, H, W] by luma, gray to C identical channels [B, H, W, C]; unchanged when they match.
at::Tensor match_channels(const at::Tensor& images, int64_t channels);

}  // namespace mnist
