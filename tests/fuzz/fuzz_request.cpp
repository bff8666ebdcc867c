// The web API's request bodies: the first byte chooses the Content-Type (an image type, a generic
// one, a canvas in JSON, or one the API refuses), the rest is the body. A bad body must give an
// ApiError with a 4xx status; a decoded image must be one image_io.h promises, and go on through
// the preprocessing to a 28x28 8-bit digit (or a DataError), as the server's would.

#include <string>

#include "mnist/core/error.h"
#include "mnist/serve/api.h"
#include "mnist/vision/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnist;
  if (size == 0) return 0;
  static const char* const kTypes[] = {"image/png", "application/octet-stream", "application/json",
                                       "text/plain", "Image/JPEG; q=1"};
  const std::string type = serve::media_type(kTypes[data[0] % 5]);
  const std::string body(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    // What the routes go on with: a decoded image the way image_io.h promises it (8 or 16 bits, 1,
    // 3 or 4 channels, within the size limits), and from it MNIST's 28x28 8-bit frame.
    const cv::Mat image = serve::decode_image_body(type, body);
    const bool depth_ok = image.depth() == CV_8U || image.depth() == CV_16U;
    const bool channels_ok =
        image.channels() == 1 || image.channels() == 3 || image.channels() == 4;
    if (image.empty() || !depth_ok || !channels_ok || image.rows < vision::kMinImageSide ||
        image.cols < vision::kMinImageSide ||
        static_cast<int64_t>(image.rows) * image.cols > vision::kMaxImagePixels) {
      std::abort();
    }
    const auto digit = vision::preprocess_digit(image, "request");
    if (digit.digit.rows != 28 || digit.digit.cols != 28 || digit.digit.type() != CV_8UC1) {
      std::abort();
    }
  } catch (const serve::ApiError& e) {
    if (e.status() < 400 || e.status() > 499) std::abort();
  } catch (const DataError&) {
  }
  return 0;
}
