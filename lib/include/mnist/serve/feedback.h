#pragma once
// Corrections sent from the web page ("that's wrong, it was a ..."), kept as a data set a later
// training run can read, in the image-folder layout (one folder per class):
//
//   DIR/<dataset>/<class>/<id>.png  the image the model saw (MNIST: 28x28, bright on black)
//   DIR/originals/<id>.png          the image as the user sent it (PNG, depth and alpha kept)
//   DIR/feedback.csv                time,id,dataset,model,label,class,predicted,file,original
//
// <class> is the class name with characters other than letters, digits, '-' and '_' replaced by
// '_' (vision::folder_name; MNIST: "0".."9"; Fashion-MNIST: "T-shirt_top", "Trouser", ...), so the
// folder DIR/<dataset> is an image folder that training's data.extra reads. Both images are written
// atomically (temporary file + rename + fsync of the file and its folder) before the CSV line is
// appended, in one write, under a lock: a line always names files that are complete on disk.
// The folder has a size limit: a correction that would take it past the limit is refused (507)
// with nothing written. Originals larger than kMaxOriginalSide on their longer side are stored
// scaled down to it. Thread-safe; several processes may share the folder (ids hold the process id,
// the CSV line is one O_APPEND write), each counting the limit from what it found at start.

#include <cstdint>
#include <mutex>
#include <string>

#include <opencv2/core.hpp>

#include "mnist/serve/model_registry.h"

namespace mnist::serve {

inline constexpr int kMaxOriginalSide = 1024;

class FeedbackStore {
 public:
  /// Creates `dir` when missing; UsageError naming it when it cannot be created or written.
  /// `limit_bytes`: the most the folder may hold (what is in it already counts).
  FeedbackStore(std::string dir, int64_t limit_bytes);

  /// UsageError when two of `model`'s classes would share a folder (vision::folder_name): their
  /// corrections would be mixed up.
  void check_model(const ServedModel& model) const;

  /// Saves one correction: `image` as sent, `input` the 28x28 the model saw, `label` the right
  /// class (an index into the model's classes; ApiError 400 otherwise), `predicted` the model's
  /// answer. Returns the model input's path relative to the folder. ApiError 507 when the folder's
  /// limit would be passed; RunError when writing fails.
  std::string save(const cv::Mat& image, const cv::Mat& input, const ServedModel& model,
                   int64_t label, int64_t predicted);

  const std::string& dir() const { return dir_; }
  /// Bytes in the folder (its files when opened, plus what this store wrote).
  int64_t used_bytes() const;

 private:
  std::string dir_;
  int64_t limit_;
  mutable std::mutex mutex_;
  int64_t used_ = 0;
  uint64_t count_ = 0;
};

}  // namespace mnist::serve
