#pragma once
// A test set of realistic "user" images made from MNIST test digits (never trained on): the styles
// people actually save (dark ink on white paper, large off-centre digits, coloured ink, photos with
// noise and uneven light, JPEG, transparent PNG, 16-bit PNG, ...). mnist-userset writes it;
// scripts/robustness.sh measures the naive and the project's preprocessing on it; the tests use the
// same renderer for the preprocessing invariants and the bad files for the error contract.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace mnist::vision {

struct UserImage {
  cv::Mat image;    // 8- or 16-bit, 1, 3 or 4 channels
  std::string ext;  // ".png" or ".jpg"
  int jpeg_quality = 95;
};

/// The style names, in table order: clean, dark_on_white, white_on_black, off_centre, rotated,
/// thick, thin, colour_ink, tinted_paper, noise_gradient, jpeg, rgba_transparent, png16.
const std::vector<std::string>& user_styles();

/// Renders `digit` (CV_8UC1 28x28, MNIST: bright on black) in `style` with randomness from `rng`;
/// sizes from 64 to 400 px except "clean" (the 28x28 itself). UsageError for an unknown style.
UserImage render_user_image(const cv::Mat& digit, const std::string& style, std::mt19937& rng);

/// Encodes and writes `img` to `path` (its extension decides the format).
void write_user_image(const UserImage& img, const std::string& path);

/// Writes into `dir` one file of every kind of bad input the predictor must survive (zero bytes,
/// text named .png, truncated PNG and JPEG, a decompression bomb's header, a 1x1 image, a folder
/// named like an image) and returns their paths.
std::vector<std::string> write_bad_images(const std::string& dir);

}  // namespace mnist::vision
