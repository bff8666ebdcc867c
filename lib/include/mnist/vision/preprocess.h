#pragma once
// The ONE place a user's image becomes what the model saw in training (every app that predicts
// calls it; train/predict skew is the classic silent bug of MNIST apps).
//
// MNIST's construction: a bright digit on black, its ink scaled so that the longer side of its
// bounding box is 20 px (keeping the aspect ratio, antialiased), placed in a 28x28 frame so that
// its centre of mass is at pixel (14, 14). preprocess_digit rebuilds that from any decoded image:
//   1. depth and channels: 8- or 16-bit (or float), gray, BGR or BGRA. With real transparency the
//      opaque part is the ink, whatever its colour; otherwise alpha is ignored.
//   2. background: a smooth surface (per channel, quadratic in x and y) fitted robustly to the
//      pixels that are not ink, so paper tint and uneven lighting are removed, not thresholded.
//   3. ink: the colour direction in which the ink differs from the background, found from the
//      pixels that differ most; projecting onto it detects polarity (dark on light or light on
//      dark) and works for coloured ink on tinted paper. Noise is measured and subtracted.
//   4. the digit: Otsu threshold on the (slightly smoothed) ink map, connected components, small
//      specks far smaller than the digit dropped; the ink intensities (not a binary mask) inside
//      the kept parts are stretched so the stroke core is 1.
//   5. crop to the ink, scale the longer side to 20 px (area averaging when shrinking), centre the
//      mass at (14, 14) in 28x28, clamped so nothing is cut.
// An MNIST-style crop passes through unchanged in effect: its background is exactly black, its
// longer side is already 20 px (not resampled) and its mass is already centred.
//
// Two routes to the ink map (steps 1-3), chosen per image by a cheap test, both from one reduction
// to the working size (512 px; 8- and 16-bit inputs reduced by a whole factor before anything
// else):
//   - the clean route, for images that are already clean (canvas drawings, scans, MNIST crops): 8
//     or 16 bits, gray (or colour whose channels agree), opaque, a uniform background (the border
//     ring within a few grey levels of its median, little noise) and ink on one side of it. It
//     works in 8 bits, and the background is that one level (found from histograms): no surface
//     fit, no float copy of the input; step 4 then sees only the ink's neighbourhood (the whole
//     image when its threshold falls to the paper's own variation).
//   - the robust route (every other image, and every image with MNIST_PLAIN set): the surface fit
//     above, on a float copy at the working size; the surfaces are fitted on a copy reduced to
//     128 px and evaluated at the working size (MNIST_PLAIN: fitted at the working size).
// Steps 4-5 are the same for both.

#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <opencv2/core.hpp>

#include "mnist/vision/image_io.h"

namespace mnist::vision {

inline constexpr int kDigitFrame = 28;        // MNIST's frame
inline constexpr int kDigitBox = 20;          // MNIST's longer side of the ink
inline constexpr double kDigitCentre = 14.0;  // MNIST's mean centre of mass (row and column)
/// preprocess_digit analyses larger images at this longer side: a JPEG may be decoded reduced down
/// to it (image_io.h's DecodeLimits::reduce_to) without changing what the analysis sees much
/// (tested: the same 28x28 input to within a grey level or so on average).
inline constexpr int kWorkingSide = 512;

/// How a file is decoded when preprocess_digit will read it (mnist-predict, digit folders, the
/// server's default): a large JPEG at 1/2, 1/4 or 1/8 (libjpeg's DCT scaling) while its longer side
/// stays at least kWorkingSide, so a 12-megapixel photo never becomes a 12-megapixel image.
DecodeLimits digit_decode_limits();

/// How the found object is placed in the 28x28 frame: the construction of the data set the model
/// was trained on.
struct Framing {
  int box = kDigitBox;           // longer side of the object, in pixels
  bool centre_by_mass = true;    // MNIST: centre of mass at (14, 14); else the box is centred
  bool normalise_stroke = true;  // bring pen strokes to MNIST's width range (digits only)
};

/// MNIST's framing (the default), or Fashion-MNIST's: the object's longer side fills the 28 px
/// frame, centred by its bounding box, no stroke normalisation.
Framing framing_for(const std::string& dataset);

struct Preprocessed {
  cv::Mat digit;               // CV_8UC1 28x28, bright ink on black: what the model is given
  cv::Rect ink_box;            // where the digit was found, in the input image's pixels
  bool dark_on_light = false;  // the ink was darker than its background
  bool clean_route = false;    // the image passed the clean test (see above)
};

/// Where one preprocess_digit call spent its time, in milliseconds (mnist-bench's profile).
struct PreprocessProfile {
  double resize = 0;      // depth and colour conversion, reduction to the working size
  double background = 0;  // the background (one level or the fitted surface) and the ink map
  double threshold = 0;   // smoothing, threshold, connected components, the stroke core
  double crop = 0;        // crop, stroke width, scaling to the box, centring in the frame
  double total() const { return resize + background + threshold + crop; }
};

/// Which route preprocess_digit may take: the one its test chooses (the clean route is off with
/// MNIST_PLAIN), or the robust one always (to compare the two, in tests and the profile).
enum class Route { kChoose, kRobust };

/// Turns any decoded image (see image_io.h) into the model's 28x28 input, framed as `framing` says.
/// DataError
/// "<name>: no digit found ..." when the image is blank (no ink stands out from its background).
/// With `profile`, the time of each stage is written there.
Preprocessed preprocess_digit(const cv::Mat& image, const std::string& name,
                              const Framing& framing = Framing(),
                              PreprocessProfile* profile = nullptr, Route route = Route::kChoose);

/// The Keras tutorial's pipeline, kept for comparison: colour to gray, resize to 28x28 with
/// bilinear interpolation, nothing else (no inversion, no cropping, no centring). Alpha dropped.
cv::Mat naive_preprocess(const cv::Mat& image);

/// CV_8UC1 28x28 digits -> uint8 tensor [B, 28, 28] (copied), for to_model_input.
at::Tensor digits_to_tensor(const std::vector<cv::Mat>& digits);

/// How an image-folder data set is read, and so how images are given to a model trained on one:
/// any depth scaled to 8 bits, alpha dropped, converted to `channels` (1: gray by OpenCV's luma; 3:
/// BGR, gray repeated), resized to height x width (area averaging when shrinking, bilinear when
/// growing). -> CV_8UC1 or CV_8UC3 (BGR).
cv::Mat resize_preprocess(const cv::Mat& image, int channels, int height, int width);

/// How an image-folder data set reads each image (data.preprocess), and so how images are given to
/// a model trained on one: with `digit`, the digit is found and framed as preprocess_digit does
/// (MNIST's framing; `ink_box`, when given, receives where it was found), and its 28x28 input is
/// brought to `channels` and height x width by resize_preprocess; without, resize_preprocess of
/// the whole image. DataError "<name>: no digit found ..." for a blank image with `digit`.
cv::Mat folder_preprocess(const cv::Mat& image, const std::string& name, bool digit, int channels,
                          int height, int width, cv::Rect* ink_box = nullptr);

/// Equal-sized CV_8UC1 or CV_8UC3 (BGR) images -> uint8 tensor [B, H, W] or [B, H, W, 3] (RGB),
/// copied: what to_model_input takes.
at::Tensor images_to_tensor(const std::vector<cv::Mat>& images);

/// Writes one CV_8UC1 or CV_8UC3 (BGR) image into `out`, a contiguous uint8 [H, W] or [H, W, 3]
/// (RGB) slot of the same size.
void copy_image_to(const cv::Mat& image, uint8_t* out);

}  // namespace mnist::vision
