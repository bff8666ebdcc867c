#include "mnist/serve/model_registry.h"

#include <algorithm>
#include <filesystem>

#include <c10/util/Exception.h>

#include "mnist/core/error.h"
#include "mnist/io/run_folder.h"
#include "mnist/serve/runs_api.h"

namespace mnist::serve {
namespace fs = std::filesystem;

nlohmann::json ServedModel::to_json() const {
  nlohmann::json j{{"name", name},
                   {"dataset", dataset},
                   {"type", type},
                   {"classes", predictor->info().class_names}};
  j["test_accuracy"] = test_accuracy < 0 ? nlohmann::json(nullptr) : nlohmann::json(test_accuracy);
  return j;
}

void ModelRegistry::add(const std::string& run_dir) {
  ServedModel m;
  m.predictor = std::make_unique<Predictor>(Predictor::open(run_dir));
  const Config& config = m.predictor->config();
  m.dataset = name_of(config.data.dataset);
  m.type = name_of(config.model.type);
  const RunFolder run = RunFolder::open(run_dir);
  if (run.finished()) {
    const auto metrics = run.read_json(run_files::kMetrics);
    if (metrics.contains("test_accuracy") && metrics["test_accuracy"].is_number()) {
      m.test_accuracy = metrics["test_accuracy"].get<double>();
    }
  }
  std::vector<std::string> taken;
  for (const auto& other : models_) taken.push_back(other.name);
  m.name = run_display_name(run_dir, taken);
  models_.push_back(std::move(m));
}

ModelRegistry ModelRegistry::load(const std::vector<std::string>& paths,
                                  std::vector<std::string>* warnings) {
  ModelRegistry registry;
  for (const auto& path : paths) {
    std::error_code ec;
    if (!fs::is_directory(path, ec)) throw DataError(path + ": no such run folder");
    if (fs::exists(fs::path(path) / run_files::kConfig, ec)) {
      registry.add(path);
      continue;
    }
    // A folder of run folders: every subfolder holding a model.
    std::vector<std::string> runs;
    bool empty = true, unfinished = false;  // no entries; runs without a model (yet)
    for (fs::directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
      empty = false;
      if (it->is_directory(ec) && fs::exists(it->path() / run_files::kModel, ec)) {
        runs.push_back(it->path().string());
      } else if (it->is_directory(ec) && fs::exists(it->path() / run_files::kConfig, ec)) {
        unfinished = true;
      }
    }
    std::sort(runs.begin(), runs.end());
    if (runs.empty() && (empty || unfinished)) {
      // A folder for runs to come (or still training): the cockpit (/runs) shows them as they
      // appear; the drawing page needs a model from another folder.
      if (warnings) warnings->push_back(path + ": no trained model yet");
      continue;
    }
    if (runs.empty()) {
      throw DataError(path + ": neither a run folder (no " + run_files::kConfig +
                      ") nor a folder of run folders (no subfolder with a " + run_files::kModel +
                      ")");
    }
    for (const auto& run : runs) {
      try {
        registry.add(run);
      } catch (const c10::Error& e) {
        if (warnings) warnings->push_back(run + ": skipped: " + e.what_without_backtrace());
      } catch (const std::exception& e) {
        if (warnings) warnings->push_back(run + ": skipped: " + e.what());
      }
    }
  }
  if (registry.models_.empty()) throw DataError("no model could be loaded from the folders given");
  return registry;
}

const ServedModel* ModelRegistry::find(const std::string& name) const {
  if (name.empty()) return models_.empty() ? nullptr : &models_.front();
  for (const auto& m : models_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace mnist::serve
