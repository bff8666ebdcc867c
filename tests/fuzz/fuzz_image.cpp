// A user's image file, as mnist-predict and the web server read it: the header check, OpenCV's
// decoder, then the preprocessing to the model's 28x28 input. Bad files must give a DataError; an
// image that gets through must give a 28x28 8-bit result.

#include <vector>

#include "fuzz_util.h"
#include "mnist/core/error.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/preprocess.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnist;
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    vision::check_image_bytes(bytes, "input");
    const cv::Mat image = vision::decode_image(bytes, "input");
    const auto digit = vision::preprocess_digit(image, "input");
    if (digit.digit.rows != 28 || digit.digit.cols != 28 || digit.digit.type() != CV_8UC1) {
      std::abort();
    }
  } catch (const DataError&) {
  }
  return 0;
}
