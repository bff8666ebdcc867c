#include "mnist/vision/image_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include <opencv2/core/utils/logger.hpp>
#include <opencv2/imgcodecs.hpp>

#include "mnist/core/error.h"
#include "mnist/io/bytes.h"
#include "mnist/io/files.h"

namespace mnist::vision {
namespace {

[[noreturn]] void fail(const std::string& name, const std::string& why) {
  throw DataError(name + ": " + why);
}

bool starts_with(const std::vector<uint8_t>& b, const char* magic, size_t at = 0) {
  const size_t n = std::strlen(magic);
  return b.size() >= at + n && std::memcmp(b.data() + at, magic, n) == 0;
}

ImageHeader png_header(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.size() < 33 || !starts_with(b, "IHDR", 12)) fail(name, "PNG header is cut short");
  ImageHeader h{"PNG", load_be32(&b[16]), load_be32(&b[20])};
  // Walk the chunks to IEND: a file cut short is refused rather than decoded to a partial image.
  size_t pos = 8;
  while (true) {
    if (pos + 12 > b.size()) fail(name, "truncated PNG (it ends before its IEND chunk)");
    const uint64_t len = load_be32(&b[pos]);
    if (std::memcmp(&b[pos + 4], "IEND", 4) == 0) break;
    pos += 12 + len;
  }
  return h;
}

ImageHeader jpeg_header(const std::vector<uint8_t>& b, const std::string& name) {
  ImageHeader h{"JPEG", 0, 0};
  size_t pos = 2;
  while (true) {
    if (pos + 4 > b.size()) fail(name, "truncated JPEG (it ends inside its header)");
    if (b[pos] != 0xFF) fail(name, "corrupt JPEG (bad marker in its header)");
    const uint8_t marker = b[pos + 1];
    if (marker == 0xFF) {  // fill byte
      ++pos;
      continue;
    }
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) {  // markers without a length
      pos += 2;
      continue;
    }
    if (marker == 0xD9) fail(name, "corrupt JPEG (no image data)");
    const size_t len = load_be16(&b[pos + 2]);
    if (len < 2) fail(name, "corrupt JPEG (bad segment length)");
    const bool sof =
        marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (pos + 9 > b.size()) fail(name, "truncated JPEG (it ends inside its header)");
      h.height = load_be16(&b[pos + 5]);
      h.width = load_be16(&b[pos + 7]);
    }
    if (marker == 0xDA) {  // start of scan: the entropy-coded data follows
      if (h.width == 0 || h.height == 0) fail(name, "corrupt JPEG (no frame size before the data)");
      // In entropy-coded data 0xFF is always followed by 0x00 or a restart marker, so an FF D9
      // after the first scan can only be the end-of-image marker.
      const uint8_t eoi[2] = {0xFF, 0xD9};
      if (std::search(b.begin() + static_cast<std::ptrdiff_t>(pos), b.end(), eoi, eoi + 2) ==
          b.end()) {
        fail(name, "truncated JPEG (no end-of-image marker)");
      }
      return h;
    }
    pos += 2 + len;
  }
}

ImageHeader bmp_header(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.size() < 26) fail(name, "BMP header is cut short");
  const uint32_t dib = load_le32(&b[14]);
  ImageHeader h{"BMP", 0, 0};
  if (dib == 12) {
    h.width = load_le16(&b[18]);
    h.height = load_le16(&b[20]);
    return h;
  }
  if (b.size() < 34) fail(name, "BMP header is cut short");
  const auto w = static_cast<int32_t>(load_le32(&b[18]));
  const auto ht = static_cast<int32_t>(load_le32(&b[22]));
  h.width = std::abs(static_cast<int64_t>(w));
  h.height = std::abs(static_cast<int64_t>(ht));
  // The size limits speak before the truncation check: a huge declared size is what matters.
  check_image_size(h.width, h.height, name, "BMP image");
  const uint32_t bpp = load_le16(&b[28]);
  const uint32_t compression = load_le32(&b[30]);
  const uint64_t offset = load_le32(&b[10]);
  if (compression == 0 && bpp > 0 && bpp <= 32 && h.width <= (int64_t{1} << 20) &&
      h.height <= (int64_t{1} << 20)) {
    const uint64_t stride = ((static_cast<uint64_t>(h.width) * bpp + 31) / 32) * 4;
    if (offset + stride * static_cast<uint64_t>(h.height) > b.size()) {
      fail(name, "truncated BMP (fewer pixel bytes than its header declares)");
    }
  }
  return h;
}

ImageHeader tiff_header(const std::vector<uint8_t>& b, const std::string& name) {
  const bool le = b[0] == 'I';
  auto u16 = [&](size_t at) { return le ? load_le16(&b[at]) : load_be16(&b[at]); };
  auto u32 = [&](size_t at) { return le ? load_le32(&b[at]) : load_be32(&b[at]); };
  if (b.size() < 8) fail(name, "TIFF header is cut short");
  const uint64_t ifd = u32(4);
  if (ifd + 2 > b.size()) fail(name, "truncated TIFF (no image directory)");
  const uint32_t count = u16(ifd);
  ImageHeader h{"TIFF", 0, 0};
  for (uint32_t i = 0; i < count; ++i) {
    const uint64_t e = ifd + 2 + 12ull * i;
    if (e + 12 > b.size()) fail(name, "truncated TIFF (image directory cut short)");
    const uint32_t tag = u16(e);
    const uint32_t type = u16(e + 2);
    const uint32_t value = type == 3 ? u16(e + 8) : u32(e + 8);
    if (tag == 256) h.width = value;
    if (tag == 257) h.height = value;
  }
  if (h.width == 0 || h.height == 0) fail(name, "corrupt TIFF (no image size)");
  return h;
}

ImageHeader webp_header(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.size() < 30) fail(name, "WebP header is cut short");
  ImageHeader h{"WebP", 0, 0};
  if (starts_with(b, "VP8 ", 12)) {
    h.width = load_le16(&b[26]) & 0x3FFF;
    h.height = load_le16(&b[28]) & 0x3FFF;
  } else if (starts_with(b, "VP8L", 12)) {
    const uint32_t bits = load_le32(&b[21]);
    h.width = (bits & 0x3FFF) + 1;
    h.height = ((bits >> 14) & 0x3FFF) + 1;
  } else if (starts_with(b, "VP8X", 12)) {
    h.width = load_le24(&b[24]) + 1;
    h.height = load_le24(&b[27]) + 1;
  } else {
    fail(name, "corrupt WebP (unknown chunk)");
  }
  return h;
}

ImageHeader pnm_header(const std::vector<uint8_t>& b, const std::string& name) {
  // "P5 <width> <height> ...", whitespace-separated, '#' starts a comment to the end of the line.
  size_t pos = 2;
  int64_t v[2] = {0, 0};
  for (auto& value : v) {
    while (pos < b.size() && (std::isspace(b[pos]) || b[pos] == '#')) {
      if (b[pos] == '#') {
        while (pos < b.size() && b[pos] != '\n') ++pos;
      } else {
        ++pos;
      }
    }
    if (pos >= b.size() || !std::isdigit(b[pos])) fail(name, "corrupt PNM header");
    while (pos < b.size() && std::isdigit(b[pos]) && value < (int64_t{1} << 40)) {
      value = value * 10 + (b[pos++] - '0');
    }
  }
  return {"PNM", v[0], v[1]};
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

void configure_opencv_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // A second line of defence behind check_image_bytes: OpenCV's own decoder limit (read from the
    // environment the first time a decoder runs).
    setenv("OPENCV_IO_MAX_IMAGE_PIXELS", std::to_string(kMaxImagePixels).c_str(), 0);
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
  });
}

}  // namespace

void check_image_size(int64_t width, int64_t height, const std::string& name,
                      const std::string& what) {
  const std::string size = std::to_string(width) + "x" + std::to_string(height);
  if (width < kMinImageSide || height < kMinImageSide) {
    throw UnusableImage(name + ": " + what + " of " + size +
                        " pixels is too small (each side needs at least " +
                        std::to_string(kMinImageSide) + ")");
  }
  // Divided, not multiplied: a header can declare sides whose product overflows (found by fuzzing).
  if (width > kMaxImagePixels / height) {
    throw UnusableImage(name + ": " + what + " of " + size +
                        " pixels is larger than the limit of " +
                        std::to_string(kMaxImagePixels / 1'000'000) + " megapixels");
  }
}

ImageHeader check_image_bytes(const std::vector<uint8_t>& b, const std::string& name) {
  if (b.empty()) fail(name, "empty file");
  ImageHeader h;
  if (starts_with(b, "\x89PNG\r\n\x1a\n")) {
    h = png_header(b, name);
  } else if (b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF) {
    h = jpeg_header(b, name);
  } else if (starts_with(b, "BM")) {
    h = bmp_header(b, name);
  } else if (starts_with(b, "II*") || starts_with(b, "MM")) {
    if (b.size() < 4 ||
        !((b[0] == 'I' && b[2] == 42 && b[3] == 0) || (b[0] == 'M' && b[2] == 0 && b[3] == 42))) {
      fail(name, "not an image this tool reads (PNG, JPEG, BMP, TIFF, WebP, PNM)");
    }
    h = tiff_header(b, name);
  } else if (starts_with(b, "RIFF") && starts_with(b, "WEBP", 8)) {
    h = webp_header(b, name);
  } else if (b.size() >= 3 && b[0] == 'P' && b[1] >= '1' && b[1] <= '6' && std::isspace(b[2])) {
    h = pnm_header(b, name);
  } else {
    fail(name, "not an image this tool reads (PNG, JPEG, BMP, TIFF, WebP, PNM)");
  }
  check_image_size(h.width, h.height, name, h.format + " image");
  return h;
}

int decode_reduction(const ImageHeader& header, const DecodeLimits& limits) {
  if (header.format != "JPEG" || limits.reduce_to <= 0) return 1;
  const int64_t longer = std::max(header.width, header.height);
  int f = 1;
  while (f < 8 && longer / (2 * f) >= limits.reduce_to) f *= 2;
  return f;
}

cv::Mat decode_image(const std::vector<uint8_t>& bytes, const std::string& name,
                     const DecodeLimits& limits, int* reduction) {
  const ImageHeader h = check_image_bytes(bytes, name);
  const int f = decode_reduction(h, limits);
  if (reduction) *reduction = f;
  // libjpeg's scaled sizes round up.
  const int64_t w = (h.width + f - 1) / f;
  const int64_t hh = (h.height + f - 1) / f;
  if (w > limits.max_pixels / hh) {
    throw UnusableImage(name + ": " + h.format + " image of " + std::to_string(h.width) + "x" +
                        std::to_string(h.height) +
                        " pixels is larger than this server's limit of " +
                        std::to_string(limits.max_pixels / 1'000'000) + " megapixels");
  }
  configure_opencv_once();
  // JPEG: IMREAD_COLOR applies the EXIF orientation of phone photos (IMREAD_UNCHANGED ignores it);
  // JPEG has neither alpha nor 16 bits to keep. Others: keep depth and channels (alpha, 16-bit).
  int flags = h.format == "JPEG" ? cv::IMREAD_COLOR : cv::IMREAD_UNCHANGED;
  if (f == 2) flags = cv::IMREAD_REDUCED_COLOR_2;
  if (f == 4) flags = cv::IMREAD_REDUCED_COLOR_4;
  if (f == 8) flags = cv::IMREAD_REDUCED_COLOR_8;
  cv::Mat img;
  try {
    img = cv::imdecode(
        cv::Mat(1, static_cast<int>(bytes.size()), CV_8U, const_cast<uint8_t*>(bytes.data())),
        flags);
  } catch (const cv::Exception& e) {
    fail(name, "cannot decode " + h.format + ": " + e.err);
  }
  if (img.empty()) fail(name, "cannot decode " + h.format + " (corrupt or unsupported variant)");
  const bool same = img.cols == w && img.rows == hh;
  const bool rotated = img.cols == hh && img.rows == w;  // EXIF orientation
  if (!same && !rotated) fail(name, "decoded size differs from the header's");
  return img;
}

cv::Mat read_image(const std::string& path, const DecodeLimits& limits, int* reduction) {
  auto bytes = read_file_bytes(path, kMaxImageFileBytes);  // io/files.h
  if (bytes.empty()) fail(path, "empty file");
  return decode_image(bytes, path, limits, reduction);
}

bool has_image_extension(const std::string& path) {
  static const char* const kExt[] = {".png",  ".jpg",  ".jpeg", ".jpe", ".bmp", ".dib", ".tif",
                                     ".tiff", ".webp", ".pbm",  ".pgm", ".ppm", ".pnm"};
  const std::string ext = lower_extension(path);
  return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
}

}  // namespace mnist::vision
