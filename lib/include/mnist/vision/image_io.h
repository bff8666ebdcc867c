#pragma once
// Reading users' image files safely. Every failure is a DataError whose message starts with the
// path as given, so one bad file becomes one error entry and never a crash, a hang or a huge
// allocation:
//   - only regular files are opened (a FIFO would block, a directory is not an image);
//   - the header is parsed by this code before anything is decoded, and images of more than
//     kMaxImagePixels or with a side shorter than kMinImageSide are refused (decompression bombs);
//   - PNG and JPEG files must be complete (a truncated file is refused, not half-decoded);
//   - the formats are those OpenCV decodes here: PNG (8/16-bit), JPEG, BMP, TIFF, WebP, PNM.
// Why this code reads headers itself, although OpenCV 4.6 refuses truncated PNG, BMP, TIFF, WebP
// and PNM files and images beyond OPENCV_IO_MAX_IMAGE_PIXELS (set here too, as a second line):
// measured with a probe over 37 cuts of each format, OpenCV then returns an empty image and writes
// its reason to stderr itself (libpng's "PNG input buffer is incomplete", imdecode's "can't read
// data: ... Unexpected end of input stream"), which would break the one-error-line rule, and the
// empty image does not say whether the file was cut short or a decompression bomb (400 or 422 in
// the web API). A truncated JPEG it decodes without complaint (32 of 37 cuts), hence the end
// marker.

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "mnist/core/error.h"

namespace mnist::vision {

/// A readable image that cannot be used: its size is outside [kMinImageSide, kMaxImagePixels], or
/// no ink stands out from its background. A DataError like every other refusal (mnist-predict makes
/// it an error entry); the web API answers it with 422 where a file that is not a decodable image
/// gets 400.
class UnusableImage : public DataError {
 public:
  using DataError::DataError;
};

inline constexpr int64_t kMaxImagePixels = 64'000'000;  // 64 megapixels
inline constexpr int kMinImageSide = 8;
inline constexpr int64_t kMaxImageFileBytes = 256LL << 20;  // no image format needs more here

struct ImageHeader {
  std::string format;  // "PNG", "JPEG", "BMP", "TIFF", "WebP", "PNM"
  int64_t width = 0;
  int64_t height = 0;
};

/// UnusableImage "<name>: <what> of WxH pixels is too small/larger than ..." when the size is
/// outside [kMinImageSide, kMaxImagePixels]: the one size rule for files and for canvas pixels.
void check_image_size(int64_t width, int64_t height, const std::string& name,
                      const std::string& what);

/// The format and size declared by the header of `bytes`; DataError "<name>: ..." when the bytes
/// are not a supported image, the header is cut short, the file is truncated (PNG, JPEG, BMP), or
/// the size is outside [kMinImageSide, kMaxImagePixels].
ImageHeader check_image_bytes(const std::vector<uint8_t>& bytes, const std::string& name);

/// How far decoding may go, for callers that hold a tighter budget than mnist-predict (the web
/// server): `max_pixels` counts the decoded image; `reduce_to` > 0 lets a JPEG be decoded at 1/2,
/// 1/4 or 1/8 of its size (libjpeg's DCT scaling, IMREAD_REDUCED_COLOR_*), the largest reduction
/// that keeps its longer side at least `reduce_to` pixels.
struct DecodeLimits {
  int64_t max_pixels = kMaxImagePixels;
  int reduce_to = 0;
};

/// The reduction (1, 2, 4 or 8) decode_image uses for an image of `header`'s size under `limits`:
/// more than 1 only for JPEG.
int decode_reduction(const ImageHeader& header, const DecodeLimits& limits);

/// check_image_bytes, then decodes with OpenCV keeping depth and channels (8U or 16U; 1, 3 or 4
/// channels, BGR order). DataError naming `name` when decoding fails; UnusableImage when the
/// decoded image would have more than `limits.max_pixels`. `reduction`, when given, receives the
/// reduction used (decode_reduction).
cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                     const DecodeLimits& limits = DecodeLimits(), int* reduction = nullptr);

/// The file (io/files.h's read_file_bytes, at most kMaxImageFileBytes; DataError naming `path`
/// when it is missing, not a regular file, unreadable, empty or too large) + decode_image.
cv::Mat read_image(const std::string& path, const DecodeLimits& limits = DecodeLimits(),
                   int* reduction = nullptr);

/// True when `path`'s extension is one of the image formats above (case-insensitive): what a
/// folder given to mnist-predict contributes.
bool has_image_extension(const std::string& path);

}  // namespace mnist::vision
