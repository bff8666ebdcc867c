#pragma once
// Ctrl-C (SIGINT) and SIGTERM for the apps. Nothing here is active until an app installs it.
//
// Graceful mode (mnist-train): the first signal only raises a flag that long work polls at clean
// points (the trainer finishes its step, writes a resumable checkpoint and throws Interrupted); a
// second signal ends the process at once. Immediate mode (mnist-eval, mnist-predict): the first
// signal ends it at once. Ending at once means: the temporary files of writes in progress
// (io/files.h writes through them and renames) are removed, then _exit(128 + signal), so no output
// is ever half-written and no temporary file is left behind.

#include <stdexcept>
#include <string>

namespace mnist {

enum class StopMode { kGraceful, kImmediate };

/// Installs the handlers for SIGINT and SIGTERM.
void install_stop_handlers(StopMode mode);

/// 0 while no stop was asked for; else the signal that asked (SIGINT or SIGTERM).
int stop_requested();

/// Asks for a stop as if `signal` had arrived once (tests, and code that stops on its own).
void request_stop(int signal);

/// Forgets a stop request (tests).
void clear_stop_request();

/// "SIGINT", "SIGTERM", or "signal N".
std::string signal_name(int signal);

/// Work stopped on a signal, leaving a consistent state behind (the message says which). The apps
/// exit with 128 + signal (130 for SIGINT, 143 for SIGTERM), as a shell reports a process killed
/// by it.
class Interrupted : public std::runtime_error {
 public:
  Interrupted(int signal, const std::string& message)
      : std::runtime_error(message), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

/// While alive, the temporary file at `path` is removed if the process is ended by a signal (at
/// most a few at a time: further ones are not tracked). `path` must outlive the guard.
class TempFileGuard {
 public:
  explicit TempFileGuard(const char* path);
  ~TempFileGuard();
  TempFileGuard(const TempFileGuard&) = delete;
  TempFileGuard& operator=(const TempFileGuard&) = delete;

 private:
  int slot_;
};

}  // namespace mnist
