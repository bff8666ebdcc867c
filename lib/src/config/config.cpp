#include "mnist/config/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mnist/core/error.h"
#include "mnist/io/files.h"
#include "mnist/io/json.h"

namespace mnist {
namespace {

// Configs are a few levels deep; anything deeper is refused before it is parsed.
constexpr int kMaxConfigDepth = 32;

using nlohmann::json;
namespace fs = std::filesystem;

}  // namespace

json read_json_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) throw UsageError(path + ": is a directory, not a JSON file");
  if (!std::ifstream(path)) throw UsageError(path + ": cannot open (does the file exist?)");
  std::string text;
  try {
    text = read_text_file(path);
  } catch (const DataError& e) {
    throw UsageError(e.what());  // the config named on the command line
  }
  json j = parse_json_text(text, path, kMaxConfigDepth);
  if (!j.is_object()) throw UsageError(path + ": must hold a JSON object");
  return j;
}

void apply_override(json& j, const std::string& assignment) {
  const auto eq = assignment.find('=');
  const std::string where = "--set " + assignment;
  if (eq == std::string::npos || eq == 0) throw UsageError(where + ": expected key.path=value");
  const std::string key = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);

  json value;
  if (json::accept(text)) {
    value = parse_json_text(text, where + ": " + key, kMaxConfigDepth);
  } else {
    value = text;  // not JSON: a plain string such as a path or a name
    try {
      (void)value.dump();  // the run folder's config.json must be able to hold it
    } catch (const json::type_error&) {
      throw UsageError(where + ": " + key + ": the value is not valid UTF-8 text");
    }
  }

  json* node = &j;
  std::string walked;
  std::stringstream parts(key);
  std::string part;
  std::vector<std::string> names;
  while (std::getline(parts, part, '.')) names.push_back(part);
  for (size_t i = 0; i < names.size(); ++i) {
    if (names[i].empty()) throw UsageError(where + ": empty key component in \"" + key + "\"");
    walked += (walked.empty() ? "" : ".") + names[i];
    if (!node->is_object())
      throw UsageError(where + ": " + walked + ": its parent is not a section");
    if (i + 1 == names.size()) {
      (*node)[names[i]] = value;
    } else {
      node = &(*node)[names[i]];
      if (node->is_null()) *node = json::object();
    }
  }
}

namespace {

// Overrides are checked one by one, so that an error names the --set at fault; relative paths are
// then taken from the current directory and stored absolute.
Config finish_config(json& j, Config config, const std::vector<std::string>& overrides) {
  for (const auto& assignment : overrides) {
    apply_override(j, assignment);
    config = config_from_json(j, "--set " + assignment);
  }
  const auto absolute = [](std::string& path) {
    if (!path.empty()) path = fs::absolute(path).lexically_normal().string();
  };
  absolute(config.data.dir);
  for (auto& dir : config.data.extra) absolute(dir);
  absolute(config.data.cache_dir);
  absolute(config.init.from);
  return config;
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  json j = path.empty() ? json::object() : read_json_file(path);
  return finish_config(j, config_from_json(j, path.empty() ? "(defaults)" : path), overrides);
}

Config load_run_config(const std::string& run_dir, const std::vector<std::string>& overrides) {
  const std::string path = (fs::path(run_dir) / "config.json").string();
  json j;
  Config config;
  try {
    j = read_json_file(path);
    config = config_from_json(j, path);
  } catch (const UsageError& e) {
    throw DataError(e.what());  // a run folder's own file is data read during the run
  }
  return finish_config(j, std::move(config), overrides);
}

}  // namespace mnist
