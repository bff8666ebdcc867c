#include "mnist/io/run_folder.h"

#include <ctime>
#include <filesystem>

#include "mnist/core/error.h"
#include "mnist/io/files.h"

namespace mnist {
namespace {

namespace fs = std::filesystem;

std::string format_time(const char* format) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, format, &tm);
  return buf;
}

}  // namespace

void RunFolder::check_new(const std::string& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw UsageError(dir + ": exists and is not a folder");
  if (!fs::is_empty(dir, ec)) {
    throw UsageError(dir +
                     ": run folder exists and is not empty (runs are never overwritten; "
                     "--resume continues one)");
  }
}

RunFolder RunFolder::create(const std::string& dir) {
  check_new(dir);
  std::error_code ec;
  fs::create_directories(fs::path(dir) / run_files::kPlots, ec);
  if (ec) throw UsageError(dir + ": cannot create run folder: " + ec.message());
  return RunFolder(dir);
}

RunFolder RunFolder::open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw DataError(dir + ": no such run folder");
  if (!fs::exists(fs::path(dir) / run_files::kConfig, ec)) {
    throw DataError(dir + ": not a run folder (no " + run_files::kConfig + ")");
  }
  return RunFolder(dir);
}

std::string RunFolder::default_dir(const std::string& config_path) {
  const std::string base = (fs::path("runs") / (fs::path(config_path).stem().string() + "-" +
                                                format_time("%Y%m%d-%H%M%S")))
                               .string();
  std::string dir = base;
  std::error_code ec;
  for (int n = 2; fs::exists(dir, ec); ++n) dir = base + "-" + std::to_string(n);
  return dir;
}

std::string RunFolder::file(const std::string& name) const {
  return (fs::path(dir_) / name).string();
}

bool RunFolder::has(const std::string& name) const {
  std::error_code ec;
  return fs::exists(file(name), ec);
}

void RunFolder::write_json(const std::string& name, const nlohmann::json& j) const {
  write_file_atomic(file(name), j.dump(2) + "\n");
}

void RunFolder::write_text(const std::string& name, const std::string& text) const {
  write_file_atomic(file(name), text);
}

nlohmann::json RunFolder::read_json(const std::string& name) const {
  const std::string path = file(name);
  try {
    return nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(path + ": not valid JSON: " + e.what());
  }
}

std::string utc_timestamp() {
  return format_time("%Y-%m-%dT%H:%M:%SZ");
}

}  // namespace mnist
