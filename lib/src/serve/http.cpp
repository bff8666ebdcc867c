// The transport's pure parts (http.h): requests' accessors, safe JSON text, percent-decoding, and
// multipart/form-data over a complete, bounded body.

#include <algorithm>
#include <cctype>
#include <optional>

#include "mnist/serve/http.h"

namespace mnist::serve {
namespace {

template <class Pairs>
const std::string* first(const Pairs& pairs, std::string_view name) {
  for (const auto& [k, v] : pairs) {
    if (k == name) return &v;
  }
  return nullptr;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

/// The value of parameter `name` in a header value such as `form-data; name="image"` (quotes and
/// their backslash escapes removed); nullopt when absent.
std::optional<std::string> header_parameter(std::string_view value, std::string_view name) {
  size_t i = value.find(';');
  while (i < value.size()) {
    ++i;  // past ';'
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const size_t key_start = i;
    while (i < value.size() && value[i] != '=' && value[i] != ';') ++i;
    const std::string key = ascii_lower(trim(value.substr(key_start, i - key_start)));
    if (i >= value.size() || value[i] == ';') continue;
    ++i;  // past '='
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    std::string v;
    if (i < value.size() && value[i] == '"') {
      for (++i; i < value.size() && value[i] != '"'; ++i) {
        if (value[i] == '\\' && i + 1 < value.size()) ++i;
        v += value[i];
      }
      if (i < value.size()) ++i;  // the closing quote
    } else {
      const size_t start = i;
      while (i < value.size() && value[i] != ';') ++i;
      v = std::string(trim(value.substr(start, i - start)));
    }
    if (key == name) return v;
    i = value.find(';', i);
  }
  return std::nullopt;
}

}  // namespace

std::string HttpRequest::header(std::string_view name) const {
  const auto* v = first(headers, name);
  return v ? *v : std::string();
}
bool HttpRequest::has_header(std::string_view name) const {
  return first(headers, name);
}
std::string HttpRequest::param(std::string_view name) const {
  const auto* v = first(query, name);
  return v ? *v : std::string();
}
bool HttpRequest::has_param(std::string_view name) const {
  return first(query, name);
}

std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string json_text(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string log_text(const std::string& s) {
  const std::string quoted = json_text(s);  // escapes control characters too
  return quoted.substr(1, quoted.size() - 2);
}

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      const int hi = hex_value(s[i + 1]);
      const int lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += plus_is_space && s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

HttpResponse json_response(int status, const nlohmann::json& body) {
  HttpResponse r;
  r.status = status;
  r.content_type = "application/json";
  r.body = json_text(body);
  return r;
}

HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, {{"error", message}});
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r = error_response(e.status(), e.what());
  r.headers = e.headers();
  return r;
}

FormField multipart_field(const std::string& content_type, const std::string& body,
                          const std::string& field) {
  const auto boundary = header_parameter(content_type, "boundary");
  // RFC 2046: 1 to 70 characters.
  if (!boundary || boundary->empty() || boundary->size() > 70) {
    throw ApiError(400, "multipart body without a usable boundary in its Content-Type");
  }
  const std::string delimiter = "--" + *boundary;
  auto malformed = [] { return ApiError(400, "malformed multipart body"); };
  // The first delimiter opens the body or follows the preamble's line break.
  size_t pos = body.rfind(delimiter, 0) == 0 ? 0 : body.find("\r\n" + delimiter);
  if (pos == std::string::npos) throw malformed();
  if (pos > 0) pos += 2;
  const std::string next_delimiter = "\r\n" + delimiter;
  while (true) {
    pos += delimiter.size();
    if (body.compare(pos, 2, "--") == 0) break;  // the closing delimiter
    // Transport padding, then the line break that ends the delimiter line.
    while (pos < body.size() && (body[pos] == ' ' || body[pos] == '\t')) ++pos;
    if (body.compare(pos, 2, "\r\n") != 0) throw malformed();
    pos += 2;
    // The part's header lines end with an empty line (at once, for a part without any).
    size_t header_end = pos;
    size_t content = pos + 2;
    if (body.compare(pos, 2, "\r\n") != 0) {
      header_end = body.find("\r\n\r\n", pos);
      if (header_end == std::string::npos) throw malformed();
      content = header_end + 4;
    }
    // The next delimiter: "\r\n--boundary" followed by "--", padding or a line break (a line
    // that only starts like one is content).
    size_t end = body.find(next_delimiter, content);
    while (end != std::string::npos) {
      const size_t after = end + next_delimiter.size();
      if (after >= body.size() || body.compare(after, 2, "--") == 0 || body[after] == '\r' ||
          body[after] == ' ' || body[after] == '\t') {
        break;
      }
      end = body.find(next_delimiter, end + 1);
    }
    if (end == std::string::npos) throw malformed();
    std::string disposition;
    std::string type;
    for (size_t line = pos; line < header_end;) {
      const size_t eol = std::min(body.find("\r\n", line), header_end);
      const std::string_view h(body.data() + line, eol - line);
      const auto colon = h.find(':');
      if (colon != std::string_view::npos) {
        const std::string name = ascii_lower(trim(h.substr(0, colon)));
        const std::string value(trim(h.substr(colon + 1)));
        if (name == "content-disposition") disposition = value;
        if (name == "content-type") type = value;
      }
      line = eol + 2;
    }
    const auto name = header_parameter(disposition, "name");
    if (name && *name == field) {
      return {type.empty() ? "application/octet-stream" : type,
              body.substr(content, end - content)};
    }
    pos = end + 2;
  }
  throw ApiError(400, "the multipart form has no field named \"" + field + "\"");
}

}  // namespace mnist::serve
