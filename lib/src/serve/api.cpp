#include "mnist/serve/api.h"

#include <algorithm>
#include <cctype>

#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/io/json.h"
#include "mnist/vision/image_io.h"

namespace mnist::serve {
namespace {

constexpr int kMaxJsonDepth = 8;  // a canvas body is two levels deep

/// DataError messages start with "<name>: "; the answer gives the reason alone.
std::string reason(const std::string& message, const std::string& name) {
  const std::string prefix = name + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

int64_t positive_integer(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer() || it->get<int64_t>() < 1) {
    throw ApiError(400, std::string("canvas JSON: \"") + key + "\" must be a positive integer");
  }
  return it->get<int64_t>();
}

cv::Mat canvas_image(const std::string& body, int64_t max_pixels) {
  if (mnist::json_nesting_depth(body) > kMaxJsonDepth)
    throw ApiError(400, "canvas JSON: nested too deeply");
  const auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw ApiError(400, "body is not valid JSON");
  if (!j.is_object()) throw ApiError(400, "canvas JSON must be an object {width, height, pixels}");
  const int64_t w = positive_integer(j, "width");
  const int64_t h = positive_integer(j, "height");
  vision::check_image_size(w, h, "canvas", "canvas");  // UnusableImage, before any allocation
  if (w > max_pixels / h) {
    throw ApiError(422, "canvas of " + std::to_string(w) + "x" + std::to_string(h) +
                            " pixels is larger than this server's limit");
  }
  const auto it = j.find("pixels");
  if (it == j.end() || !it->is_array())
    throw ApiError(400, "canvas JSON: \"pixels\" must be an array");
  const auto& pixels = *it;
  int channels = 0;
  if (pixels.size() == static_cast<size_t>(w * h)) {
    channels = 1;
  } else if (pixels.size() == static_cast<size_t>(w * h * 4)) {
    channels = 4;
  } else {
    throw ApiError(400, "canvas JSON: \"pixels\" has " + std::to_string(pixels.size()) +
                            " values; width x height (gray) or 4 x width x height (RGBA) expected");
  }
  cv::Mat img(static_cast<int>(h), static_cast<int>(w), channels == 1 ? CV_8UC1 : CV_8UC4);
  auto* out = img.ptr<uint8_t>(0);
  for (size_t i = 0; i < pixels.size(); ++i) {
    const auto& v = pixels[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > 255) {
      throw ApiError(400,
                     "canvas JSON: pixels[" + std::to_string(i) + "] is not an integer in 0..255");
    }
    out[i] = static_cast<uint8_t>(v.get<int64_t>());
  }
  if (channels == 4) cv::cvtColor(img, img, cv::COLOR_RGBA2BGRA);  // OpenCV's channel order
  return img;
}

}  // namespace

std::string media_type(const std::string& content_type) {
  std::string out;
  for (const char c : content_type) {
    if (c == ';') break;
    if (!std::isspace(static_cast<unsigned char>(c))) {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

cv::Mat decode_image_body(const std::string& type, const std::string& body,
                          const vision::DecodeLimits& limits, int* reduction) {
  if (reduction) *reduction = 1;
  if (type == "application/json") {
    try {
      return canvas_image(body, limits.max_pixels);
    } catch (const vision::UnusableImage& e) {
      throw ApiError(422, reason(e.what(), "canvas"));
    }
  }
  if (type.rfind("image/", 0) != 0 && type != "application/octet-stream") {
    throw ApiError(415, "unsupported content type \"" + type.substr(0, 100) +
                            "\": send an image file (Content-Type image/png, image/jpeg, ...), a "
                            "multipart form with the field \"image\", or canvas JSON");
  }
  if (body.empty()) throw ApiError(400, "empty body: no image");
  const std::vector<uint8_t> bytes(body.begin(), body.end());
  try {
    return vision::decode_image(bytes, "image", limits, reduction);
  } catch (const vision::UnusableImage& e) {
    throw ApiError(422, reason(e.what(), "image"));
  } catch (const DataError& e) {
    throw ApiError(400, reason(e.what(), "image"));
  }
}

vision::ImageResult classify(const ServedModel& model, const cv::Mat& image,
                             vision::Pipeline pipeline) {
  try {
    return vision::predict_image(*model.predictor, image, "image", pipeline);
  } catch (const vision::UnusableImage& e) {
    throw ApiError(422, reason(e.what(), "image"));
  } catch (const DataError& e) {
    throw ApiError(400, reason(e.what(), "image"));
  } catch (const cv::Exception& e) {
    throw ApiError(400, "cannot process image: " + e.err);
  }
}

nlohmann::json answer_json(const ServedModel& model, const vision::ImageResult& r, int reduction) {
  const auto& classes = model.predictor->info().class_names;
  nlohmann::json j;
  j["model"] = model.name;
  j["dataset"] = model.dataset;
  j["digit"] = r.predicted;
  j["label"] = classes.at(static_cast<size_t>(r.predicted));
  j["confidence"] = r.confidence;
  j["probabilities"] = r.probabilities;
  // CV_8UC1 (28x28 for the IDX sets) or, for a colour folder-trained model, CV_8UC3 BGR: sent as
  // rows of gray values or of RGB triples.
  cv::Mat in = r.input;
  if (in.channels() == 3) cv::cvtColor(r.input, in, cv::COLOR_BGR2RGB);
  in = in.isContinuous() ? in : in.clone();
  j["input"] = {{"width", in.cols},
                {"height", in.rows},
                {"channels", in.channels()},
                {"pixels", std::vector<int>(in.ptr<uint8_t>(0),
                                            in.ptr<uint8_t>(0) + in.total() * in.channels())}};
  j["ink_box"] = {{"x", r.ink_box.x * reduction},
                  {"y", r.ink_box.y * reduction},
                  {"width", r.ink_box.width * reduction},
                  {"height", r.ink_box.height * reduction}};
  return j;
}

}  // namespace mnist::serve
