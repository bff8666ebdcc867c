// Config parsing with --set overrides: the input is "OVERRIDE\nOVERRIDE\n...\0CONFIG TEXT". A
// config that loads must survive config_to_json -> config_from_json unchanged (one schema, written
// out and read back); bad input must give a UsageError (or a DataError for an unreadable file).

#include <cstring>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "mnist/config/config.h"
#include "mnist/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mnist;
  const char* text = reinterpret_cast<const char*>(data);
  const void* zero = std::memchr(text, 0, size);
  const size_t split = zero ? static_cast<size_t>(static_cast<const char*>(zero) - text) : 0;
  std::vector<std::string> overrides;
  std::string line;
  for (size_t i = 0; i < split; ++i) {
    if (text[i] == '\n') {
      overrides.push_back(line);
      line.clear();
    } else {
      line += text[i];
    }
  }
  if (!line.empty()) overrides.push_back(line);
  const size_t body = zero ? split + 1 : 0;
  const std::string path = fuzz::write_scratch("config.json", data + body, size - body);
  try {
    const Config config = load_config(path, overrides);
    const auto written = config_to_json(config);
    const auto again = config_to_json(config_from_json(written, "round trip"));
    if (written != again) std::abort();
  } catch (const UsageError&) {
  } catch (const DataError&) {
  }
  return 0;
}
