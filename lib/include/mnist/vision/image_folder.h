#pragma once
// Users' own images as a data set, in torchvision's ImageFolder layout:
//
//   DIR/train/<class>/*.png and DIR/test/<class>/*.png    the two splits, or
//   DIR/<class>/*.png                                      one folder; a seeded test split is drawn
//
// Class names are the folder names, sorted (byte order, as torchvision); a class is the union of
// the two splits' folders. Files are any image type image_io.h reads, in any size, gray or colour,
// found recursively below each class folder; hidden files and other extensions are ignored. Each
// image becomes what the model takes by folder_preprocess (preprocess.h): data.preprocess (the
// whole image resized, or the digit found and framed as MNIST's), data.channels, data.image_size.
//
// Decoding happens once: the decoded tensor is kept in a cache file (data.cache_dir) named by the
// folder and the reading options, and valid while the folder's listing (every file's path, size
// and modification time) is the one it was built from; a changed, added or removed file rebuilds
// it. A corrupt or foreign cache file is rebuilt too, never trusted (a CRC-32 covers it).
//
// A file that cannot be read stops the load with a DataError naming it; with data.skip_bad it is
// left out and counted (Splits::notes says how many, and the first one's path and reason).

#include <cstdint>
#include <string>
#include <vector>

#include "mnist/config/config.h"
#include "mnist/data/dataset.h"

namespace mnist::vision {

/// How images are read: the model's input geometry and the data.* reading options.
struct FolderOptions {
  int64_t height = 28, width = 28, channels = 1;
  bool digit = false;  // data.preprocess "digit"
  bool skip_bad = false;
  bool cache = true;
  std::string cache_dir;  // empty: default_cache_dir()
  static FolderOptions from(const DataConfig& data);
};

/// The images below `root`'s class folders, labelled by `class_names` (index = label).
struct FolderImages {
  Dataset data;                    // uint8 [N, H, W] or [N, H, W, 3] RGB; int64 labels
  int64_t skipped = 0;             // unreadable files left out (skip_bad)
  std::string first_skipped;       // "path: reason" of the first
  bool from_cache = false;         // read from the cache file, nothing decoded
  std::vector<int64_t> per_class;  // images per class
};

/// The class folders directly below `root` (names, sorted); DataError naming `root` when it is not
/// a folder.
std::vector<std::string> class_folders(const std::string& root);

/// Reads every image below `root`/<class folder>, where each class folder's name is one of
/// `class_names` or its folder_name spelling; a folder that is neither is a DataError naming it.
/// Classes without a folder, or with an empty one, get no images.
FolderImages read_image_folder(const std::string& root, const std::vector<std::string>& class_names,
                               const FolderOptions& options);

/// The validation split's size for a folder of `training_images`: data.val_size, or with -1
/// data.val_fraction of them (rounded down, at least one when the fraction is above 0).
int64_t validation_size(const DataConfig& data, int64_t training_images);

/// The three splits of config.data: an image folder (as above: class names from the folders,
/// per-channel normalisation from the training split), or an IDX set (data/dataset.h's
/// load_splits); then data.extra's folders appended to the training split data.extra_repeat times.
/// DataError naming the file or folder at fault; UsageError naming the key.
Splits load_dataset(const DataConfig& data, int64_t seed);

/// Only the test split (evaluation): its images and labels (no normalisation: the model's is
/// used), the data set's class names, and what the user should hear (skipped files).
struct TestSet {
  Dataset data;
  std::vector<std::string> class_names;
  std::vector<std::string> notes;
};
TestSet load_test_set(const DataConfig& data);

/// `name` as a folder name: letters, digits, '-' and '_' kept, anything else '_' (the web
/// page's corrections are saved under these names; data.extra accepts them).
std::string folder_name(const std::string& name);

}  // namespace mnist::vision
