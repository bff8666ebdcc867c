#include "mnist/run/catalog.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/io/json.h"

namespace mnist {
namespace fs = std::filesystem;
namespace {

constexpr uint64_t kSmallFile = 4u << 20;          // config, meta, metrics, progress, history
constexpr uint64_t kPredictionsFile = 256u << 20;  // 10,000 test images take 1 MB
constexpr int kMaxDepth = 64;
// A run on another machine (a shared folder) counts as running while its progress is this fresh.
constexpr double kFreshSeconds = 120;

std::string text_of(const std::string& path, uint64_t max_bytes) {
  const auto bytes = read_file_bytes(path, max_bytes);
  return std::string(bytes.begin(), bytes.end());
}

/// The file `name` of the run folder `dir`, whole; DataError naming the file only (what it says
/// reaches the cockpit's clients, which are not told the server's paths).
std::string run_file_text(const std::string& dir, const std::string& name, uint64_t max_bytes) {
  try {
    return text_of((fs::path(dir) / name).string(), max_bytes);
  } catch (const DataError& e) {
    const std::string what = e.what();  // "<path>: <reason>"
    const auto colon = what.rfind(": ");
    throw DataError(name + (colon == std::string::npos ? ": cannot be read" : what.substr(colon)));
  }
}

/// The JSON object in `name` of `dir`; throws DataError/UsageError naming only the file's name.
nlohmann::json json_file(const std::string& dir, const char* name) {
  const std::string text = run_file_text(dir, name, kSmallFile);
  nlohmann::json j = parse_json_text(text, name, kMaxDepth);
  if (!j.is_object()) throw DataError(std::string(name) + ": not a JSON object");
  return j;
}

std::string host_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) return "";
  return host;
}

bool process_alive(int64_t pid) {
  if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

/// Seconds since the epoch of "2026-11-24T17:53:11Z"; -1 when it is not that.
double parse_utc(const nlohmann::json& j) {
  if (!j.is_string()) return -1;
  std::tm tm{};
  const std::string s = j.get<std::string>();
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  if (!end || *end) return -1;
  return static_cast<double>(timegm(&tm));
}

double now_unix() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::vector<std::string> split(const std::string& line, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const auto at = line.find(sep, start);
    out.push_back(line.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

bool parse_double(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno != ERANGE;
}

bool parse_int(const char*& p, const char* end, int64_t* out) {
  if (p == end) return false;
  bool negative = *p == '-';
  if (negative) ++p;
  int64_t v = 0;
  const char* start = p;
  while (p < end && *p >= '0' && *p <= '9' && p - start < 18) v = v * 10 + (*p++ - '0');
  if (p == start) return false;
  *out = negative ? -v : v;
  return true;
}

}  // namespace

const char* name_of(RunStatus status) {
  switch (status) {
    case RunStatus::kComplete:
      return "complete";
    case RunStatus::kRunning:
      return "running";
    case RunStatus::kInterrupted:
      return "interrupted";
    case RunStatus::kFailed:
      return "failed";
    case RunStatus::kDamaged:
      return "damaged";
  }
  return "damaged";
}

nlohmann::json RunSummary::to_json() const {
  const auto number_or_null = [](double v) {
    return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v);
  };
  nlohmann::json j{{"status", name_of(status)},
                   {"config_name", config_name},
                   {"model", model},
                   {"dataset", dataset},
                   {"epochs_done", epochs_done},
                   {"epochs_planned", epochs_planned},
                   {"best_val_accuracy", number_or_null(best_val_accuracy)},
                   {"test_accuracy", number_or_null(test_accuracy)},
                   {"wall_seconds", number_or_null(wall_seconds)},
                   {"start_time", start_time},
                   {"progress", progress}};
  if (!problem.empty()) j["problem"] = problem;
  return j;
}

RunSummary read_run_summary(const std::string& dir) {
  RunSummary s;
  s.dir = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    s.problem = "the run folder is gone";
    return s;
  }
  const auto has = [&](const char* name) {
    std::error_code e2;
    return fs::exists(fs::path(dir) / name, e2);
  };
  try {
    s.config = json_file(dir, run_files::kConfig);
  } catch (const std::exception& e) {
    s.problem = e.what();
    return s;
  }
  const auto text_at = [&](const char* section, const char* key) -> std::string {
    const auto& sec = s.config.value(section, nlohmann::json::object());
    return sec.is_object() && sec.contains(key) && sec[key].is_string()
               ? sec[key].get<std::string>()
               : std::string();
  };
  s.model = text_at("model", "type");
  s.dataset = text_at("data", "dataset");
  if (s.config.contains("train") && s.config["train"].is_object()) {
    const auto& epochs = s.config["train"].value("epochs", nlohmann::json());
    if (epochs.is_number_integer()) s.epochs_planned = epochs.get<int64_t>();
  }
  nlohmann::json meta;
  try {
    meta = json_file(dir, run_files::kMeta);
  } catch (const std::exception&) {
    meta = nlohmann::json::object();  // a run from before meta.json: not worth a status
  }
  s.start_time = meta.value("start_time", "");
  if (meta.contains("command") && meta["command"].is_string()) {
    const auto words = split(meta["command"].get<std::string>(), ' ');
    for (size_t i = 0; i < words.size(); ++i) {
      std::string file;
      if (words[i] == "--config" && i + 1 < words.size()) file = words[i + 1];
      if (words[i].rfind("--config=", 0) == 0) file = words[i].substr(9);
      if (!file.empty()) s.config_name = fs::path(file).stem().string();
    }
  }
  try {
    const auto history = read_history_table(dir);
    const auto& columns = history["columns"];
    const auto val = std::find(columns.begin(), columns.end(), "val_accuracy");
    for (const auto& row : history["rows"]) {
      ++s.epochs_done;
      if (val != columns.end()) {
        const auto& v = row[static_cast<size_t>(val - columns.begin())];
        if (v.is_number()) s.best_val_accuracy = std::max(s.best_val_accuracy, v.get<double>());
      }
    }
  } catch (const std::exception& e) {
    s.problem = e.what();  // reported, but the rest of the run is still worth showing
  }
  if (has(run_files::kProgress)) {
    try {
      s.progress = json_file(dir, run_files::kProgress);
    } catch (const std::exception&) {
      s.progress = nullptr;  // only ever replaced whole; unreadable means foreign: ignore it
    }
  }
  const double start = parse_utc(meta.value("start_time", nlohmann::json()));
  if (has(run_files::kMetrics)) {
    try {
      s.metrics = json_file(dir, run_files::kMetrics);
      const auto& acc = s.metrics.value("test_accuracy", nlohmann::json());
      if (acc.is_number()) s.test_accuracy = acc.get<double>();
      s.status = RunStatus::kComplete;
      const double end = parse_utc(meta.value("end_time", nlohmann::json()));
      if (start >= 0 && end >= start) s.wall_seconds = end - start;
    } catch (const std::exception& e) {
      s.problem = e.what();
      s.status = RunStatus::kDamaged;
    }
    return s;
  }
  bool running = false;
  if (s.progress.is_object()) {
    const auto& host = s.progress.value("host", nlohmann::json());
    const auto& pid = s.progress.value("pid", nlohmann::json());
    const auto& updated = s.progress.value("updated_unix", nlohmann::json());
    if (host.is_string() && host.get<std::string>() == host_name()) {
      running = pid.is_number_integer() && process_alive(pid.get<int64_t>());
    } else if (updated.is_number()) {
      running = now_unix() - updated.get<double>() < kFreshSeconds;
    }
  }
  if (running) {
    s.status = RunStatus::kRunning;
    if (start >= 0) s.wall_seconds = std::max(0.0, now_unix() - start);
  } else {
    s.status = has(run_files::kCheckpoint) ? RunStatus::kInterrupted : RunStatus::kFailed;
  }
  return s;
}

std::vector<std::string> find_run_folders(const std::vector<std::string>& roots, size_t max_runs) {
  std::vector<std::string> out;
  for (const auto& root : roots) {
    std::error_code ec;
    if (fs::exists(fs::path(root) / run_files::kConfig, ec)) {
      out.push_back(root);
      continue;
    }
    std::vector<std::string> here;
    for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code e2;
      if (it->is_directory(e2) && fs::exists(it->path() / run_files::kConfig, e2)) {
        here.push_back(it->path().string());
      }
    }
    std::sort(here.begin(), here.end());
    out.insert(out.end(), here.begin(), here.end());
  }
  if (out.size() > max_runs) out.resize(max_runs);
  return out;
}

nlohmann::json read_history_table(const std::string& dir, int64_t after_epoch) {
  nlohmann::json table{{"columns", nlohmann::json::array()}, {"rows", nlohmann::json::array()}};
  const std::string path = (fs::path(dir) / run_files::kHistory).string();
  std::error_code ec;
  if (!fs::exists(path, ec)) return table;
  const std::string text = run_file_text(dir, run_files::kHistory, kSmallFile);
  const auto lines = split(text, '\n');
  const auto columns = split(lines.front(), ',');
  if (columns.empty() || columns.front() != "epoch") {
    throw DataError(std::string(run_files::kHistory) + ": no header line starting with epoch");
  }
  table["columns"] = columns;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const auto cells = split(lines[i], ',');
    if (cells.size() != columns.size()) {
      throw DataError(std::string(run_files::kHistory) + ": line " + std::to_string(i + 1) +
                      " has " + std::to_string(cells.size()) + " cells, the header " +
                      std::to_string(columns.size()));
    }
    auto row = nlohmann::json::array();
    for (const auto& cell : cells) {
      double v = 0;
      row.push_back(parse_double(cell, &v) && std::isfinite(v) ? nlohmann::json(v)
                                                               : nlohmann::json(nullptr));
    }
    if (!row[0].is_number()) {
      throw DataError(std::string(run_files::kHistory) + ": line " + std::to_string(i + 1) +
                      " has no epoch");
    }
    if (row[0].get<double>() > static_cast<double>(after_epoch)) table["rows"].push_back(row);
  }
  return table;
}

std::vector<PredictionRow> read_predictions(const std::string& dir) {
  const std::string name = run_files::kPredictions;
  const std::string text = run_file_text(dir, name, kPredictionsFile);
  std::vector<PredictionRow> rows;
  const char* p = text.data();
  const char* end = p + text.size();
  const char* eol = std::find(p, end, '\n');
  if (std::string(p, eol).rfind("index,label,predicted,confidence", 0) != 0) {
    throw DataError(name + ": no header line index,label,predicted,confidence,...");
  }
  p = eol == end ? end : eol + 1;
  int64_t line = 1;
  while (p < end) {
    ++line;
    eol = std::find(p, end, '\n');
    if (eol == p) {
      p = eol + 1;
      continue;
    }
    PredictionRow r;
    const char* q = p;
    bool ok = parse_int(q, eol, &r.index) && q < eol && *q++ == ',' &&
              parse_int(q, eol, &r.label) && q < eol && *q++ == ',' &&
              parse_int(q, eol, &r.predicted) && q < eol && *q++ == ',';
    if (ok) {
      const char* c = q;
      while (q < eol && *q != ',') ++q;
      ok = parse_double(std::string(c, q), &r.confidence);
    }
    if (!ok) throw DataError(name + ": line " + std::to_string(line) + " is not a prediction");
    rows.push_back(r);
    p = eol == end ? end : eol + 1;
  }
  return rows;
}

ProgressFile::ProgressFile(const RunFolder& run, TrainObserver& inner)
    : run_(run),
      inner_(inner),
      state_({{"pid", static_cast<int64_t>(::getpid())},
              {"host", host_name()},
              {"state", "training"}}) {}

void ProgressFile::on_start(int64_t first_epoch, int64_t epochs, int64_t steps_per_epoch) {
  inner_.on_start(first_epoch, epochs, steps_per_epoch);
  first_epoch_ = first_epoch;
  epochs_ = epochs;
  steps_per_epoch_ = steps_per_epoch;
  start_ = std::chrono::steady_clock::now();
  state_.update({{"epoch", first_epoch},
                 {"epochs", epochs},
                 {"step", 0},
                 {"steps", steps_per_epoch},
                 {"loss", nullptr},
                 {"accuracy", nullptr},
                 {"images_per_second", nullptr},
                 {"eta_seconds", nullptr}});
  write();
}

void ProgressFile::on_progress(int64_t epoch, int64_t step, int64_t steps, double loss,
                               double accuracy, double images_per_second) {
  inner_.on_progress(epoch, step, steps, loss, accuracy, images_per_second);
  steps_done_ = (epoch - first_epoch_) * steps_per_epoch_ + step;
  const int64_t left = (epochs_ - epoch) * steps_per_epoch_ + (steps - step);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const auto finite = [](double v) {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  state_.update({{"epoch", epoch},
                 {"step", step},
                 {"steps", steps},
                 {"loss", finite(loss)},
                 {"accuracy", finite(accuracy)},
                 {"images_per_second", finite(images_per_second)},
                 {"eta_seconds",
                  steps_done_ > 0 ? nlohmann::json(elapsed / static_cast<double>(steps_done_) *
                                                   static_cast<double>(std::max<int64_t>(0, left)))
                                  : nlohmann::json(nullptr)}});
  write();
}

void ProgressFile::on_epoch_end(const EpochStats& stats) {
  inner_.on_epoch_end(stats);
  state_["epoch_done"] = stats.epoch;
  write();
}

void ProgressFile::set_state(const std::string& state) {
  state_["state"] = state;
  write();
}

void ProgressFile::write() {
  const auto t0 = std::chrono::steady_clock::now();
  state_["updated"] = utc_timestamp();
  state_["updated_unix"] = now_unix();
  try {
    write_file_atomic(run_.file(run_files::kProgress), state_.dump(), Durability::kReplaced);
  } catch (const RunError& e) {
    if (!warned_) std::fprintf(stderr, "warning: %s (the training goes on)\n", e.what());
    warned_ = true;
  }
  ++writes_;
  write_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace mnist
