#include "mnist/io/json.h"

#include <algorithm>
#include <vector>

#include "mnist/core/error.h"

namespace mnist {

int json_nesting_depth(const std::string& text) {
  int depth = 0;
  int deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

nlohmann::json parse_json_text(const std::string& text, const std::string& name, int max_depth) {
  using nlohmann::json;
  if (json_nesting_depth(text) > max_depth) {
    throw UsageError(name + ": nested deeper than " + std::to_string(max_depth) + " levels");
  }
  // The key path being parsed, for errors that nlohmann reports without one (number overflow).
  std::vector<std::string> path;
  const json::parser_callback_t track = [&path](int /*depth*/, json::parse_event_t event,
                                                json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        path.emplace_back();
        break;
      case json::parse_event_t::key:
        if (!path.empty()) path.back() = parsed.get<std::string>();
        break;
      case json::parse_event_t::object_end:
      case json::parse_event_t::array_end:
        if (!path.empty()) path.pop_back();
        break;
      default:
        break;
    }
    return true;
  };
  try {
    return json::parse(text, track);
  } catch (const json::parse_error& e) {
    // e.what() is "[json.exception.parse_error.101] parse error at line 3, column 5: ..."
    const std::string what = e.what();
    const auto pos = what.find("] ");
    throw UsageError(
        name + ": not valid JSON: " + (pos == std::string::npos ? what : what.substr(pos + 2)));
  } catch (const json::exception& e) {
    std::string key;
    for (const auto& part : path) {
      if (!part.empty()) key += (key.empty() ? "" : ".") + part;
    }
    const std::string what = e.what();
    const auto pos = what.find("] ");
    throw UsageError(name + ": " + (key.empty() ? "" : key + ": ") + "number out of range (" +
                     (pos == std::string::npos ? what : what.substr(pos + 2)) + ")");
  }
}

}  // namespace mnist
