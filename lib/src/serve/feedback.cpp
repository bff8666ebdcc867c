#include "mnist/serve/feedback.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/io/run_folder.h"
#include "mnist/serve/api.h"
#include "mnist/vision/canvas.h"
#include "mnist/vision/image_folder.h"

namespace mnist::serve {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCsvName = "feedback.csv";
constexpr const char* kCsvHeader = "time,id,dataset,model,label,class,predicted,file,original\n";

/// A CSV field, quoted when it holds a comma, a quote or a line break.
std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (const char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

/// "20261202-174501-123456": UTC time to the microsecond, sortable.
std::string time_id() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()) %
                  std::chrono::seconds(1);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[48];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s-%06lld", buf, static_cast<long long>(us.count()));
  return out;
}

std::string encode_png(const cv::Mat& img) {
  std::vector<uint8_t> buf;
  if (!cv::imencode(".png", img, buf)) throw RunError("PNG encoding failed");
  return std::string(buf.begin(), buf.end());
}

/// Appends `line` to `path` with one write (O_APPEND), then fsync; RunError on failure.
void append_line(const std::string& path, const std::string& line) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw RunError(path + ": cannot open: " + std::strerror(errno));
  const ssize_t n = ::write(fd, line.data(), line.size());
  const int err = errno;
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (n != static_cast<ssize_t>(line.size()) || !synced) {
    throw RunError(path + ": write failed: " + std::strerror(err));
  }
}

}  // namespace

FeedbackStore::FeedbackStore(std::string dir, int64_t limit_bytes)
    : dir_(std::move(dir)), limit_(limit_bytes) {
  if (limit_ < 1) throw UsageError("--feedback-limit-mb: must be positive");
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) {
    throw UsageError(dir_ + ": cannot create the feedback folder: " + ec.message());
  }
  if (::access(dir_.c_str(), W_OK) != 0) {
    throw UsageError(dir_ + ": the feedback folder is not writable");
  }
  for (auto it = fs::recursive_directory_iterator(dir_, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    std::error_code size_ec;
    if (it->is_regular_file(size_ec)) {
      const auto n = it->file_size(size_ec);
      if (!size_ec) used_ += static_cast<int64_t>(n);
    }
  }
}

void FeedbackStore::check_model(const ServedModel& model) const {
  const auto& classes = model.predictor->info().class_names;
  for (size_t i = 0; i < classes.size(); ++i) {
    for (size_t j = i + 1; j < classes.size(); ++j) {
      if (vision::folder_name(classes[i]) == vision::folder_name(classes[j])) {
        throw UsageError(dir_ + ": the classes \"" + classes[i] + "\" and \"" + classes[j] +
                         "\" of model " + model.name + " would share the feedback folder \"" +
                         vision::folder_name(classes[i]) +
                         "\"; serve that model without --feedback-dir");
      }
    }
  }
}

int64_t FeedbackStore::used_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return used_;
}

std::string FeedbackStore::save(const cv::Mat& image, const cv::Mat& input,
                                const ServedModel& model, int64_t label, int64_t predicted) {
  const auto& classes = model.predictor->info().class_names;
  if (label < 0 || label >= static_cast<int64_t>(classes.size())) {
    throw ApiError(400,
                   "label must be a class index from 0 to " + std::to_string(classes.size() - 1));
  }
  const std::string class_name = classes[static_cast<size_t>(label)];
  const std::string class_dir =
      (fs::path(vision::folder_name(model.dataset)) / vision::folder_name(class_name)).string();

  // Encoded before anything is written, so that the limit is checked with the real sizes.
  cv::Mat original_image = image;
  const int longer = std::max(image.rows, image.cols);
  if (longer > kMaxOriginalSide) {
    const double s = static_cast<double>(kMaxOriginalSide) / longer;
    cv::resize(image, original_image,
               cv::Size(std::max(1, static_cast<int>(std::lround(image.cols * s))),
                        std::max(1, static_cast<int>(std::lround(image.rows * s)))),
               0, 0, cv::INTER_AREA);
  }
  const std::string input_png = encode_png(input);
  const std::string original_png = encode_png(original_image);

  std::lock_guard<std::mutex> lock(mutex_);
  // The process id too: two servers behind one proxy may share the folder.
  const std::string id =
      time_id() + "-" + std::to_string(::getpid()) + "-" + std::to_string(++count_);
  const std::string file = class_dir + "/" + id + ".png";
  const std::string original = std::string("originals/") + id + ".png";
  const std::string csv = (fs::path(dir_) / kCsvName).string();
  std::string line;
  if (!fs::exists(csv)) line = kCsvHeader;
  const std::string predicted_name =
      predicted >= 0 && predicted < static_cast<int64_t>(classes.size())
          ? classes[static_cast<size_t>(predicted)]
          : std::string();
  line += csv_field(utc_timestamp()) + "," + id + "," + csv_field(model.dataset) + "," +
          csv_field(model.name) + "," + std::to_string(label) + "," + csv_field(class_name) + "," +
          csv_field(predicted_name) + "," + csv_field(file) + "," + csv_field(original) + "\n";
  const auto bytes = static_cast<int64_t>(input_png.size() + original_png.size() + line.size());
  if (used_ + bytes > limit_) {
    throw ApiError(507, "the server's feedback folder is full (limit " +
                            std::to_string(limit_ >> 20) + " MiB); no more corrections are kept");
  }
  std::error_code ec;
  fs::create_directories(fs::path(dir_) / class_dir, ec);
  fs::create_directories(fs::path(dir_) / "originals", ec);
  write_file_atomic((fs::path(dir_) / file).string(), input_png);
  write_file_atomic((fs::path(dir_) / original).string(), original_png);
  used_ += bytes;
  append_line(csv, line);
  return file;
}

}  // namespace mnist::serve
