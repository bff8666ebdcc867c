// The web API's request bodies: the first byte chooses the Content-Type (an image type, a generic
// one, a canvas in JSON, or one the API refuses), the rest is the body. A bad body must give an
// ApiError with a 4xx status; a decoded image goes on through the preprocessing as the server's
// would.

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
    const cv::Mat image = serve::decode_image_body(type, body);
    vision::preprocess_digit(image, "request");
  } catch (const serve::ApiError& e) {
    if (e.status() < 400 || e.status() > 499) std::abort();
  } catch (const DataError&) {
  }
  return 0;
}
