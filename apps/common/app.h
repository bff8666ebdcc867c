#pragma once
// What every command-line app shares: CLI11 parsing and one policy from failure to exit status.
//   exit 2: the command line or the config named on it is wrong (CLI11 errors, UsageError);
//   exit 1: a file read during the run is wrong, or the run failed (DataError, RunError, LibTorch);
// each as one line on stderr starting with "error:", never a backtrace.
//   exit 128 + signal (130, 143): stopped by Ctrl-C or SIGTERM (Interrupted, core/interrupt.h),
// with one line on stderr saying what was kept.

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace mnist::app {

/// Parses `argv` into `cli`, then runs `body`; returns the process exit status.
int run(CLI::App& cli, int argc, char** argv, const std::function<int()>& body);

/// The command line as one string (recorded in meta.json).
std::string command_line(int argc, char** argv);

}  // namespace mnist::app
