#pragma once
// MNIST-M (Ganin & Lempitsky, 2015, "Unsupervised Domain Adaptation by Backpropagation"): each
// MNIST digit blended with a patch cut at random from a colour photograph, by the absolute
// difference of the patch and the digit. The construction here follows the paper's published
// recipe, with Debian's wallpaper photographs standing in for BSDS500 (not downloadable here):
//   1. each photograph is decoded and scaled (area averaging) so its shorter side is 321 pixels,
//      BSDS500's size, so that a 28x28 patch holds as much texture as in the original;
//   2. digit i of a split takes photograph (r mod P) and the patch at a uniform random position,
//      from a generator seeded by (seed, split) whose draws are specified, so the set is the same
//      on every machine with the same photographs;
//   3. the digit is binarised (pixel > 0 -> 255, as the original script does) and each channel of
//      the result is |patch - digit|: the background keeps the photograph, the strokes become its
//      inverse colour.
// Differences from the original: other photographs (26 k photos of BSDS500's 200 training images
// vs. the wallpapers listed in docs/data.md), so accuracies are comparable in kind, not to the
// decimal.

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace mnist::tools {

/// Where a digit's patch comes from.
struct Patch {
  int64_t photo = 0;  // index into the photographs
  int x = 0, y = 0;   // top-left corner of the 28x28 patch
};

/// The photographs, decoded (BGR) and scaled so the shorter side is `short_side` pixels (never
/// enlarged). DataError naming a file that cannot be read.
std::vector<cv::Mat> load_photos(const std::vector<std::string>& paths, int short_side = 321);

/// The generator streams of the two splits' plans ("mnistm" + split).
inline constexpr uint64_t kMnistmTrainStream = 0x6d6e'6973'746d'0001;
inline constexpr uint64_t kMnistmTestStream = 0x6d6e'6973'746d'0002;

/// The patches of `n` digits: photograph and position, from a generator seeded by (seed, stream).
std::vector<Patch> plan_patches(int64_t n, const std::vector<cv::Mat>& photos, uint64_t seed,
                                uint64_t stream);

/// One MNIST-M image: `digit` (CV_8UC1 28x28) binarised and blended with the patch: CV_8UC3 BGR,
/// each channel |patch - (digit > 0 ? 255 : 0)|.
cv::Mat compose_mnistm(const cv::Mat& digit, const cv::Mat& photo, const Patch& patch);

struct MnistmOptions {
  std::string mnist_dir;            // the four MNIST IDX files
  std::vector<std::string> photos;  // photograph files
  std::string out;                  // new folder: out/train/<digit>/NNNNN.png, out/test/...
  uint64_t seed = 1;
  int64_t limit = 0;  // digits per split, from the start of each file; 0: all
};

struct MnistmSummary {
  int64_t train = 0, test = 0;
};

/// Writes the image folder (in a temporary folder renamed to `out` at the end, so a stopped build
/// never looks complete) and out/README.txt with the construction, seed and photographs. UsageError
/// when `out` exists; DataError naming an unreadable input.
MnistmSummary build_mnistm(const MnistmOptions& options);

}  // namespace mnist::tools
