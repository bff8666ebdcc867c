#pragma once
// Test support: temporary folders, small synthetic data sets in real IDX files, and running the
// apps.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

// Skips the current test for a missing optional part (`why`, a stream expression), or fails it when
// MNIST_REQUIRE_ALL says every part must be there (CI). Only this skip counts as one for CTest: its
// SKIP_REGULAR_EXPRESSION is the "mnist-skip:" marker, so a test GoogleTest skipped for another
// reason (a fixture whose SetUpTestSuite failed) fails the run on its exit status.
#define MNIST_SKIP_OR_REQUIRE(why)                       \
  do {                                                   \
    if (std::getenv("MNIST_REQUIRE_ALL")) FAIL() << why; \
    GTEST_SKIP() << "mnist-skip: " << why;               \
  } while (0)

namespace mnist::testing {

/// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

/// Inputs that every process of a test suite shares. CTest runs each test case in its own
/// process, so a suite's SetUpTestSuite runs once per case: what it builds (trained runs, images)
/// goes into a SharedDir, which `make` fills once per ctest run, under a lock, and later processes
/// reuse. Tests only read it. Under CTest it lives in $MNIST_TEST_SHARED_DIR/`name` (that folder is
/// emptied at the start of every run by the `shared_dirs_reset` test); a test binary run by hand
/// gets a private temporary folder. A `make` that throws leaves nothing complete behind.
class SharedDir {
 public:
  SharedDir(const std::string& name, const std::function<void(const std::string& dir)>& make);
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::unique_ptr<TempDir> own_;
  std::string path_;
};

/// Writes the four standard IDX files of a learnable 10-class problem (each class a bright block at
/// its own place, plus noise) into `dir`: `n_train` training and `n_test` test images, raw or gzip.
void write_synthetic_mnist(const std::string& dir, int64_t n_train, int64_t n_test,
                           bool gzip = false, uint64_t seed = 7);

/// Writes `content` to `path` (creating or truncating it).
void write_bytes(const std::string& path, const std::string& content);
std::string read_bytes(const std::string& path);

struct CommandResult {
  int status = -1;  // exit status, or 128 + signal
  std::string out;  // stdout
  std::string err;  // stderr
};

/// Runs `command` through /bin/sh with stdout and stderr captured.
CommandResult run_command(const std::string& command);

/// A command running in the background (through /bin/sh, exec'd so that the pid is the program's),
/// its stdout and stderr in `out_prefix`.out and .err. Killed on destruction if it still runs.
class Background {
 public:
  Background(const std::string& command, const std::string& out_prefix);
  ~Background();
  Background(const Background&) = delete;
  Background& operator=(const Background&) = delete;
  pid_t pid() const { return pid_; }
  /// The exit status (or 128 + signal), or -1 when it is still running after `limit`.
  int wait(std::chrono::seconds limit);
  std::string out() const;
  std::string err() const;

 private:
  std::string out_, err_;
  pid_t pid_ = -1;
  int status_ = -1;
};

/// Polls `done` every 10 ms; false when it has not become true within `limit`.
bool wait_until(const std::function<bool()>& done, std::chrono::seconds limit);

/// The paths of atomic writes' temporary files (".tmp." in the name) under `dir`, concatenated:
/// "" when none was left behind.
std::string temporary_files(const std::string& dir);

/// Lines of `text` (without the newline characters).
std::vector<std::string> lines(const std::string& text);

/// `s` in single quotes, for run_command's shell.
std::string quote(const std::string& s);

/// Expects exit `status` and exactly one line on stderr, starting with "error:" and containing
/// `fragment` (no backtrace, no second line).
void expect_one_error_line(const CommandResult& r, int status, const std::string& fragment);

/// A JSON config (text) for a fast run on a synthetic data set in `data_dir`.
std::string tiny_config(const std::string& data_dir, int epochs = 2);

}  // namespace mnist::testing
