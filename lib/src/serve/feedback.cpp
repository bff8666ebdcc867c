#include "mnist/serve/feedback.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "mnist/core/error.h"
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

FeedbackStore::FeedbackStore(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) {
    throw UsageError(dir_ + ": cannot create the feedback folder: " + ec.message());
  }
  if (::access(dir_.c_str(), W_OK) != 0) {
    throw UsageError(dir_ + ": the feedback folder is not writable");
  }
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

  std::lock_guard<std::mutex> lock(mutex_);
  const std::string id = time_id() + "-" + std::to_string(++count_);
  const std::string file = class_dir + "/" + id + ".png";
  const std::string original = std::string("originals/") + id + ".png";
  std::error_code ec;
  fs::create_directories(fs::path(dir_) / class_dir, ec);
  fs::create_directories(fs::path(dir_) / "originals", ec);
  vision::save_png(input, (fs::path(dir_) / file).string());
  vision::save_png(image, (fs::path(dir_) / original).string());

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
  append_line(csv, line);
  return file;
}

}  // namespace mnist::serve
