#pragma once
// What the web API does with a request, apart from HTTP: turning a request body into an image,
// and a model's answer for it into JSON. The server (server.h) only moves bytes to and from these.

#include <string>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "mnist/serve/http.h"
#include "mnist/serve/model_registry.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/predict.h"

namespace mnist::serve {

/// The media type of a Content-Type header value: lower case, parameters and spaces dropped
/// ("Image/PNG; q=1" -> "image/png").
std::string media_type(const std::string& content_type);

/// The image carried by a body of media type `type`:
///   image/* or application/octet-stream: an image file, read as mnist-predict reads files
///     (header checked before decoding, the same pixel limits);
///   application/json: a canvas, {"width": W, "height": H, "pixels": [...]} with W*H gray values or
///     W*H*4 RGBA values (what a canvas' getImageData gives), integers in 0..255.
/// ApiError 415 for another type, 400 for a body that is not what its type says (undecodable,
/// malformed JSON, wrong pixel count), 422 for an image outside the size limits (`limits`: the
/// server's pixel limit, and the reduced decoding of large JPEG photos; `reduction` receives the
/// factor the image was decoded reduced by, 1 for all but large JPEG photos).
cv::Mat decode_image_body(const std::string& type, const std::string& body,
                          const vision::DecodeLimits& limits = vision::DecodeLimits(),
                          int* reduction = nullptr);

/// `model`'s prediction for `image`, through the library's one preprocessing function
/// (vision::predict_image, as mnist-predict uses; `pipeline` kNaive is the tutorial's resize, as
/// mnist-predict --preprocess naive). ApiError 422 when no digit stands out in the image, 400 when
/// it cannot be processed.
vision::ImageResult classify(const ServedModel& model, const cv::Mat& image,
                             vision::Pipeline pipeline = vision::Pipeline::kMnist);

/// The API's answer for a prediction: {"model","dataset","digit","label","confidence",
/// "probabilities":[K],"input":{"width":28,"height":28,"pixels":[784 values 0..255]},
/// "ink_box":{"x","y","width","height"}}.
/// `reduction`: the image was decoded at 1/reduction of its size; ink_box is given in the
/// original's pixels.
nlohmann::json answer_json(const ServedModel& model, const vision::ImageResult& result,
                           int reduction = 1);

}  // namespace mnist::serve
