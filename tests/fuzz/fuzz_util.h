#pragma once
// What the harnesses share: a scratch folder for inputs that the library reads from files, and the
// rule for what counts as a finding. The project's own errors (UsageError, DataError, RunError, and
// the web API's ApiError) are the expected answer to bad input; anything else escaping (a LibTorch
// or OpenCV exception, std::bad_alloc, a crash, a sanitizer report, a hang) is a bug.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

namespace mnist::fuzz {

/// A folder for this process's scratch files (removed at exit).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string pattern = "/tmp/mnist-fuzz-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    static std::string remove_at_exit;
    remove_at_exit = pattern;
    std::atexit([] { std::system(("rm -rf '" + remove_at_exit + "'").c_str()); });
    return pattern;
  }();
  return dir;
}

/// Writes `size` bytes at `data` to scratch file `name`; returns its path.
inline std::string write_scratch(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  if (!out) std::abort();
  return path;
}

}  // namespace mnist::fuzz
