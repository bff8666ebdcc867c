#pragma once
// The web page's files (lib/src/serve/web/), compiled into the binary by cmake/EmbedFiles.cmake:
// the server answers GET for exactly these paths and nothing else from disk.

#include <string_view>
#include <vector>

namespace mnist::serve {

struct WebAsset {
  std::string_view path;          // "/index.html", "/app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

const std::vector<WebAsset>& web_assets();

}  // namespace mnist::serve
