#pragma once
// Classifying users' image files: path expansion, one result per file (an error never stops the
// batch), and the JSON line of the command-line contract. mnist-predict and the window use it.

#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "mnist/eval/predictor.h"

namespace mnist::vision {

/// How a decoded image becomes the 28x28 input: the project's preprocess_digit, or the Keras
/// tutorial's naive resize (kept to measure what preprocessing buys). A model trained on an image
/// folder always gets the folder reader's resize_preprocess (its own size and channels).
enum class Pipeline { kMnist, kNaive };

/// "mnist" | "naive" -> Pipeline; UsageError naming `key` otherwise.
Pipeline parse_pipeline(const std::string& name, const std::string& key);

struct ImageResult {
  std::string path;   // as given (folder entries: folder/name)
  std::string error;  // empty on success; the reason, without the path
  cv::Mat image;      // the decoded image (empty on error)
  cv::Mat input;      // what the model saw (empty on error): CV_8UC1 28x28 for the IDX sets; a
                      // folder-trained model's size, CV_8UC1 or CV_8UC3 (BGR)
  cv::Rect ink_box;   // where the digit was found in `image` (empty for the naive pipeline)
  std::vector<float> probabilities;  // one per class
  int64_t predicted = -1;
  double confidence = 0;
  bool ok() const { return error.empty(); }
};

/// The command line's paths in order, each folder replaced by its image files (by extension, sorted
/// by name, not recursive). A folder without images stays as itself, to become an error entry.
std::vector<std::string> expand_image_paths(const std::vector<std::string>& paths);

/// Reads, preprocesses and classifies one file; failures become `error`, never exceptions.
ImageResult predict_file(const Predictor& predictor, const std::string& path, Pipeline pipeline);

/// Preprocesses and classifies an image already in memory (the draw canvas); throws DataError.
ImageResult predict_image(const Predictor& predictor, const cv::Mat& image, const std::string& name,
                          Pipeline pipeline);

/// The contract's JSON line: {"path","digit","confidence","probabilities"} plus "class" (its name)
/// and "top_k" [{"digit","class","probability"}]; or {"path","error"}.
nlohmann::json result_json(const ImageResult& r, const DatasetInfo& info, int top_k);

/// One line for a person: "path: 7 (98.5%)   7 98.5%  1 1.0%  9 0.2%".
std::string result_text(const ImageResult& r, const DatasetInfo& info, int top_k);

}  // namespace mnist::vision
