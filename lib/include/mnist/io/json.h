#pragma once
// Reading JSON text that may be hostile (config files, --set values, request bodies): the nesting
// depth is bounded before anything recurses, and every failure is a UsageError naming the text's
// source and, where there is one, the key path at fault.

#include <string>

#include <nlohmann/json.hpp>

namespace mnist {

/// The deepest nesting of arrays and objects in JSON text (strings skipped), without parsing it.
int json_nesting_depth(const std::string& text);

/// Parses `text`; `name` (a file, a --set) starts every error. UsageError "NAME: nested deeper than
/// MAX levels" (checked before parsing), "NAME: not valid JSON: <where and why>", or "NAME:
/// KEY.PATH: number out of range (...)" for a number a double cannot hold (1e400).
nlohmann::json parse_json_text(const std::string& text, const std::string& name, int max_depth);

}  // namespace mnist
