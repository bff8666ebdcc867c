#include "mnist/serve/runs_api.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <c10/util/Exception.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/config/config.h"
#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/io/run_folder.h"
#include "mnist/run/catalog.h"

namespace mnist::serve {
namespace fs = std::filesystem;
namespace {

constexpr size_t kMaxListLimit = 200;
constexpr int64_t kMaxPerPage = 100;
constexpr size_t kCachedTestSets = 3;
constexpr uint64_t kMaxServedFile = 64u << 20;

/// The run files the API serves by name (besides plots/*.png).
const std::vector<std::string>& served_files() {
  static const std::vector<std::string> files = {
      run_files::kConfig,  run_files::kDataset,     run_files::kMeta,    run_files::kHistory,
      run_files::kMetrics, run_files::kPredictions, run_files::kProgress};
  return files;
}

/// encodeURIComponent's escaping, for names inside URLs the API hands out.
std::string url_part(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// {"a": {"b": 1}} -> {"a.b": 1}; arrays and the description left as they are.
void flatten(const nlohmann::json& j, const std::string& prefix, nlohmann::json& out) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string key = prefix.empty() ? it.key() : prefix + "." + it.key();
    if (it->is_object()) {
      flatten(*it, key, out);
    } else {
      out[key] = *it;
    }
  }
}

/// A non-negative integer query parameter or path part; ApiError 400 naming it otherwise.
int64_t whole_number(const std::string& text, const std::string& what, int64_t fallback,
                     int64_t max) {
  if (text.empty()) return fallback;
  int64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9' || v > max) {
      throw ApiError(400, what + " must be a whole number from 0 to " + std::to_string(max));
    }
    v = v * 10 + (c - '0');
  }
  if (v > max)
    throw ApiError(400, what + " must be a whole number from 0 to " + std::to_string(max));
  return v;
}

std::vector<std::string> split_path(const std::string& rest) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rest.size()) {
    const auto slash = rest.find('/', start);
    parts.push_back(
        rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

HttpResponse not_finished(const std::string& name, const RunSummary& s, const std::string& what) {
  HttpResponse r = json_response(
      409, {{"error", "run \"" + name + "\" is " + name_of(s.status) + ": no " + what + " yet" +
                          (s.problem.empty() ? "" : " (" + s.problem + ")")},
            {"status", name_of(s.status)}});
  return r;
}

}  // namespace

std::string run_display_name(const std::string& run_dir, const std::vector<std::string>& taken) {
  std::string base = fs::path(run_dir).lexically_normal().filename().string();
  if (base.empty() || base == ".") base = fs::absolute(run_dir).lexically_normal().filename();
  if (base.empty() || base == "." || base == "..") base = "model";
  std::string name = base;
  for (int k = 2; std::find(taken.begin(), taken.end(), name) != taken.end(); ++k) {
    name = base + "-" + std::to_string(k);
  }
  return name;
}

RunsApi::RunsApi(std::vector<std::string> roots, size_t max_runs)
    : roots_(std::move(roots)), max_runs_(max_runs) {}

std::vector<RunsApi::Entry> RunsApi::scan() const {
  std::vector<Entry> out;
  std::vector<std::string> names;
  for (const auto& dir : find_run_folders(roots_, max_runs_)) {
    names.push_back(run_display_name(dir, names));
    out.push_back({names.back(), dir});
  }
  return out;
}

RunsApi::Entry RunsApi::find(const std::string& name) const {
  for (auto& e : scan()) {
    if (e.name == name) return e;
  }
  throw ApiError(404, "no run named \"" + name.substr(0, 200) + "\" (see /api/runs)");
}

HttpResponse RunsApi::list(const HttpRequest& req) const {
  const auto entries = scan();
  const auto offset = static_cast<size_t>(whole_number(req.param("offset"), "offset", 0, 1 << 20));
  const auto limit =
      static_cast<size_t>(whole_number(req.param("limit"), "limit", kMaxListLimit, kMaxListLimit));
  auto runs = nlohmann::json::array();
  for (size_t i = offset; i < entries.size() && i < offset + limit; ++i) {
    const RunSummary s = read_run_summary(entries[i].dir);
    nlohmann::json j = s.to_json();
    j["name"] = entries[i].name;
    nlohmann::json flat = nlohmann::json::object();
    if (s.config.is_object()) flatten(s.config, "", flat);
    flat.erase("description");
    j["config"] = flat;
    j["description"] = s.config.is_object() ? s.config.value("description", "") : "";
    runs.push_back(j);
  }
  return json_response(200, {{"runs", runs},
                             {"total", entries.size()},
                             {"offset", offset},
                             {"limit", limit},
                             {"max_runs", max_runs_}});
}

HttpResponse RunsApi::run(const Entry& e) const {
  const RunSummary s = read_run_summary(e.dir);
  nlohmann::json j = s.to_json();
  j["name"] = e.name;
  j["config"] = s.config;
  j["metrics"] = s.metrics;
  try {
    j["history"] = read_history_table(e.dir);
  } catch (const DataError& err) {
    j["history"] = {{"columns", nlohmann::json::array()}, {"rows", nlohmann::json::array()}};
    j["problem"] = err.what();
  }
  auto files = nlohmann::json::array();
  std::error_code ec;
  for (const auto& f : served_files()) {
    if (fs::symlink_status(fs::path(e.dir) / f, ec).type() == fs::file_type::regular) {
      files.push_back(f);
    }
  }
  std::vector<std::string> plots;
  for (fs::directory_iterator it(fs::path(e.dir) / run_files::kPlots, ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code e2;
    if (it->symlink_status(e2).type() == fs::file_type::regular &&
        it->path().extension() == ".png") {
      plots.push_back(std::string(run_files::kPlots) + "/" + it->path().filename().string());
    }
  }
  std::sort(plots.begin(), plots.end());
  if (plots.size() > 100) plots.resize(100);
  for (const auto& p : plots) files.push_back(p);
  j["files"] = files;
  j["base"] = "/api/runs/" + url_part(e.name);
  return json_response(200, j);
}

HttpResponse RunsApi::events(const Entry& e, const HttpRequest& req) const {
  const int64_t after = whole_number(req.param("after"), "after", 0, 1 << 30);
  const RunSummary s = read_run_summary(e.dir);
  nlohmann::json j = s.to_json();
  j["name"] = e.name;
  try {
    j["history"] = read_history_table(e.dir, after);
  } catch (const DataError& err) {
    j["history"] = {{"columns", nlohmann::json::array()}, {"rows", nlohmann::json::array()}};
    j["problem"] = err.what();
  }
  return json_response(200, j);
}

HttpResponse RunsApi::cell(const Entry& e, const std::string& truth, const std::string& pred,
                           const HttpRequest& req) const {
  const RunSummary s = read_run_summary(e.dir);
  if (s.status != RunStatus::kComplete) return not_finished(e.name, s, "predictions");
  const auto classes =
      static_cast<int64_t>(s.metrics.value("class_names", nlohmann::json::array()).size());
  const bool wrong_only = truth.empty();
  int64_t t = -1, p = -1;
  if (!wrong_only) {
    t = whole_number(truth, "the true class", 0, 1 << 20);
    p = whole_number(pred, "the predicted class", 0, 1 << 20);
    if (t >= classes || p >= classes) {
      throw ApiError(404, "no class " + std::to_string(std::max(t, p)) + " in run \"" + e.name +
                              "\" (" + std::to_string(classes) + " classes)");
    }
  }
  const int64_t page = std::max<int64_t>(1, whole_number(req.param("page"), "page", 1, 1 << 20));
  const int64_t per_page =
      std::max<int64_t>(1, whole_number(req.param("per_page"), "per_page", 48, kMaxPerPage));
  std::vector<PredictionRow> rows;
  try {
    for (const auto& r : read_predictions(e.dir)) {
      if (wrong_only ? r.label != r.predicted : (r.label == t && r.predicted == p)) {
        rows.push_back(r);
      }
    }
  } catch (const DataError& err) {
    return json_response(409, {{"error", std::string("run \"") + e.name + "\": " + err.what()},
                               {"status", "damaged"}});
  }
  std::stable_sort(rows.begin(), rows.end(), [](const PredictionRow& a, const PredictionRow& b) {
    return a.confidence > b.confidence;
  });
  const auto total = static_cast<int64_t>(rows.size());
  auto items = nlohmann::json::array();
  const std::string base = "/api/runs/" + url_part(e.name) + "/images/";
  for (int64_t i = (page - 1) * per_page; i < std::min(total, page * per_page); ++i) {
    const auto& r = rows[static_cast<size_t>(i)];
    items.push_back({{"index", r.index},
                     {"label", r.label},
                     {"predicted", r.predicted},
                     {"confidence", r.confidence},
                     {"image", base + std::to_string(r.index) + ".png"}});
  }
  nlohmann::json j{{"name", e.name},
                   {"total", total},
                   {"page", page},
                   {"per_page", per_page},
                   {"pages", (total + per_page - 1) / per_page},
                   {"items", items}};
  if (!wrong_only) {
    j["true"] = t;
    j["predicted"] = p;
  }
  return json_response(200, j);
}

std::shared_ptr<const vision::TestSet> RunsApi::test_set(const std::string& dir) {
  std::error_code ec;
  const auto stamp = fs::last_write_time(fs::path(dir) / run_files::kConfig, ec);
  const std::string key = dir + "@" + std::to_string(ec ? 0 : stamp.time_since_epoch().count());
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->first == key) {
        cache_.splice(cache_.begin(), cache_, it);
        return it->second;
      }
    }
  }
  // Loaded outside the lock: two first requests may both load it, and one copy is kept.
  const Config config = load_run_config(dir, {});
  auto set = std::make_shared<const vision::TestSet>(vision::load_test_set(config.data));
  std::lock_guard<std::mutex> lock(cache_mutex_);
  cache_.emplace_front(key, set);
  if (cache_.size() > kCachedTestSets) cache_.pop_back();
  return set;
}

HttpResponse RunsApi::image(const Entry& e, const std::string& file) {
  const auto dot = file.rfind(".png");
  if (dot == std::string::npos || dot + 4 != file.size() || dot == 0) {
    throw ApiError(404, "images are /api/runs/NAME/images/INDEX.png");
  }
  const int64_t index = whole_number(file.substr(0, dot), "the image index", 0, 1 << 30);
  std::shared_ptr<const vision::TestSet> set;
  try {
    set = test_set(e.dir);
  } catch (const c10::Error& err) {
    std::fprintf(stderr, "warning: run %s: test set not readable: %s\n", log_text(e.name).c_str(),
                 log_text(err.what_without_backtrace()).c_str());
    throw ApiError(404, "run \"" + e.name + "\": its test set cannot be read on this server");
  } catch (const std::exception& err) {
    std::fprintf(stderr, "warning: run %s: test set not readable: %s\n", log_text(e.name).c_str(),
                 log_text(err.what()).c_str());
    throw ApiError(404, "run \"" + e.name + "\": its test set cannot be read on this server");
  }
  const auto& images = set->data.images;
  if (index >= images.size(0)) {
    throw ApiError(404, "run \"" + e.name + "\" has " + std::to_string(images.size(0)) +
                            " test images (0 to " + std::to_string(images.size(0) - 1) + ")");
  }
  const auto one = images[index].contiguous();
  const int h = static_cast<int>(one.size(0)), w = static_cast<int>(one.size(1));
  const bool colour = one.dim() == 3;
  cv::Mat m(h, w, colour ? CV_8UC3 : CV_8UC1, const_cast<uint8_t*>(one.data_ptr<uint8_t>()));
  cv::Mat bgr;
  if (colour) {
    cv::cvtColor(m, bgr, cv::COLOR_RGB2BGR);
  } else {
    bgr = m;
  }
  std::vector<uint8_t> png;
  cv::imencode(".png", bgr, png);
  HttpResponse r;
  r.content_type = "image/png";
  r.body.assign(png.begin(), png.end());
  r.headers.emplace_back("Cache-Control", "private, max-age=60");
  return r;
}

HttpResponse RunsApi::file(const Entry& e, const std::string& name) const {
  bool known =
      std::find(served_files().begin(), served_files().end(), name) != served_files().end();
  const std::string plots = std::string(run_files::kPlots) + "/";
  if (!known && name.rfind(plots, 0) == 0) {
    // A plot by the folder's own listing: the name is compared, never used to build a path first.
    const std::string wanted = name.substr(plots.size());
    std::error_code ec;
    for (fs::directory_iterator it(fs::path(e.dir) / run_files::kPlots, ec), end;
         !ec && it != end && !known; it.increment(ec)) {
      known = it->path().extension() == ".png" && it->path().filename().string() == wanted;
    }
  }
  // Only a regular file of the folder itself: a symbolic link could point anywhere.
  const fs::path path = fs::path(e.dir) / name;
  std::error_code ec;
  if (!known || fs::symlink_status(path, ec).type() != fs::file_type::regular) {
    throw ApiError(404, "run \"" + e.name + "\" has no file \"" + name.substr(0, 200) +
                            "\" (see \"files\" in /api/runs/NAME)");
  }
  std::vector<uint8_t> bytes;
  try {
    bytes = read_file_bytes(path.string(), kMaxServedFile);
  } catch (const DataError&) {
    throw ApiError(404, "run \"" + e.name + "\": " + name + " cannot be read");
  }
  HttpResponse r;
  const auto ext = fs::path(name).extension().string();
  r.content_type = ext == ".json"  ? "application/json"
                   : ext == ".csv" ? "text/csv; charset=utf-8"
                                   : "image/png";
  r.body.assign(bytes.begin(), bytes.end());
  return r;
}

HttpResponse RunsApi::dispatch(const HttpRequest& req) {
  static const std::string prefix = "/api/runs/";
  const auto parts = split_path(req.path.substr(prefix.size()));
  const Entry e = find(parts[0]);
  const auto n = parts.size();
  if (n == 1) return run(e);
  const std::string& what = parts[1];
  if (what == "events" && n == 2) return events(e, req);
  if (what == "misclassified" && n == 2) return cell(e, "", "", req);
  if (what == "confusion" && n == 4) return cell(e, parts[2], parts[3], req);
  if (what == "images" && n == 3) return image(e, parts[2]);
  if (what == "files" && (n == 3 || n == 4)) {
    return file(e, n == 3 ? parts[2] : parts[2] + "/" + parts[3]);
  }
  throw ApiError(404, "no such route: " + req.path.substr(0, 200));
}

std::vector<Route> RunsApi::routes() {
  std::vector<Route> out;
  out.push_back({"/api/runs", "GET", "/api/runs", false, true, nullptr,
                 [this](const HttpRequest& req) { return list(req); }});
  Route one{
      "/api/runs/", "GET", "/api/runs/NAME", false, true, nullptr, [this](const HttpRequest& req) {
        try {
          return dispatch(req);
        } catch (const c10::Error& e) {
          throw std::runtime_error(e.what_without_backtrace());
        }
      }};
  one.prefix = true;
  out.push_back(std::move(one));
  return out;
}

}  // namespace mnist::serve
