#include "mnist/vision/predict.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <torch/torch.h>

#include "mnist/core/error.h"
#include "mnist/vision/image_io.h"
#include "mnist/vision/preprocess.h"

namespace mnist::vision {
namespace fs = std::filesystem;

Pipeline parse_pipeline(const std::string& name, const std::string& key) {
  if (name == "mnist") return Pipeline::kMnist;
  if (name == "naive") return Pipeline::kNaive;
  throw UsageError(key + ": expected \"mnist\" or \"naive\", got \"" + name + "\"");
}

std::vector<std::string> expand_image_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const auto& p : paths) {
    std::error_code ec;
    if (!fs::is_directory(p, ec)) {
      out.push_back(p);
      continue;
    }
    std::vector<std::string> found;
    for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (has_image_extension(name)) found.push_back((fs::path(p) / name).string());
    }
    std::sort(found.begin(), found.end());
    if (found.empty()) {
      out.push_back(p);  // becomes "is a directory" / no images: an error entry, not silence
    } else {
      out.insert(out.end(), found.begin(), found.end());
    }
  }
  return out;
}

namespace {

/// DataError messages start with the path; the JSON's "error" is the reason alone.
std::string reason(const std::string& message, const std::string& path) {
  const std::string prefix = path + ": ";
  return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

void classify(const Predictor& predictor, ImageResult& r) {
  const auto probs = predictor.probabilities(images_to_tensor({r.input}))[0];
  r.probabilities.assign(probs.data_ptr<float>(), probs.data_ptr<float>() + probs.numel());
  const auto best = std::max_element(r.probabilities.begin(), r.probabilities.end());
  r.predicted = best - r.probabilities.begin();
  r.confidence = *best;
}

}  // namespace

ImageResult predict_image(const Predictor& predictor, const cv::Mat& image, const std::string& name,
                          Pipeline pipeline) {
  ImageResult r;
  r.path = name;
  r.image = image;
  const DatasetInfo& info = predictor.info();
  if (info.name == dataset_info(DatasetName::kFolder).name) {
    // A folder-trained model was given images as the folder reader made them (data.preprocess),
    // whatever pipeline was asked for.
    const bool digit = predictor.config().data.preprocess == FolderPreprocess::kDigit;
    r.input = folder_preprocess(image, name, digit, static_cast<int>(info.channels),
                                static_cast<int>(info.height), static_cast<int>(info.width),
                                digit ? &r.ink_box : nullptr);
  } else if (pipeline == Pipeline::kNaive) {
    r.input = naive_preprocess(image);
  } else {
    Preprocessed p = preprocess_digit(image, name, framing_for(predictor.info().name));
    r.input = p.digit;
    r.ink_box = p.ink_box;
  }
  classify(predictor, r);
  return r;
}

ImageResult predict_file(const Predictor& predictor, const std::string& path, Pipeline pipeline) {
  try {
    std::error_code ec;
    if (fs::is_directory(path, ec) && !has_image_extension(path)) {
      throw DataError(path + ": is a folder without image files (.png .jpg .bmp .tif .webp .pgm)");
    }
    // The digit pipeline analyses a large image at kWorkingSide: a large JPEG is decoded reduced.
    // A model that resizes the whole image (the naive pipeline, a resize folder) gets all of it.
    const bool resize_folder = predictor.info().name == dataset_info(DatasetName::kFolder).name &&
                               predictor.config().data.preprocess != FolderPreprocess::kDigit;
    const bool whole = pipeline == Pipeline::kNaive || resize_folder;
    return predict_image(predictor,
                         read_image(path, whole ? DecodeLimits() : digit_decode_limits()), path,
                         pipeline);
  } catch (const DataError& e) {
    ImageResult r;
    r.path = path;
    r.error = reason(e.what(), path);
    return r;
  } catch (const cv::Exception& e) {
    ImageResult r;
    r.path = path;
    r.error = "cannot process image: " + e.err;
    return r;
  } catch (const c10::Error& e) {
    ImageResult r;
    r.path = path;
    r.error = e.what_without_backtrace();
    return r;
  }
}

nlohmann::json result_json(const ImageResult& r, const DatasetInfo& info, int top_k) {
  nlohmann::json j;
  j["path"] = r.path;
  if (!r.ok()) {
    j["error"] = r.error;
    return j;
  }
  j["digit"] = r.predicted;
  j["class"] = info.class_names.at(static_cast<size_t>(r.predicted));
  j["confidence"] = r.confidence;
  j["probabilities"] = r.probabilities;
  auto top = nlohmann::json::array();
  const auto probs = torch::from_blob(const_cast<float*>(r.probabilities.data()),
                                      {static_cast<int64_t>(r.probabilities.size())});
  for (const int64_t k : mnist::top_k(probs, top_k)) {
    top.push_back({{"digit", k},
                   {"class", info.class_names.at(static_cast<size_t>(k))},
                   {"probability", r.probabilities[static_cast<size_t>(k)]}});
  }
  j["top_k"] = top;
  return j;
}

std::string result_text(const ImageResult& r, const DatasetInfo& info, int top_k) {
  if (!r.ok()) return r.path + ": error: " + r.error;
  std::string line = r.path + ": " + info.class_names.at(static_cast<size_t>(r.predicted));
  char buf[64];
  std::snprintf(buf, sizeof buf, " (%.1f%%)  ", 100.0 * r.confidence);
  line += buf;
  const auto probs = torch::from_blob(const_cast<float*>(r.probabilities.data()),
                                      {static_cast<int64_t>(r.probabilities.size())});
  for (const int64_t k : mnist::top_k(probs, top_k)) {
    std::snprintf(buf, sizeof buf, " %s %.1f%%",
                  info.class_names.at(static_cast<size_t>(k)).c_str(),
                  100.0 * r.probabilities[static_cast<size_t>(k)]);
    line += buf;
  }
  return line;
}

}  // namespace mnist::vision
