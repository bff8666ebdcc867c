#pragma once
// The three kinds of failure the apps report, each mapped to one exit status (see
// apps/common/app.h). Every message names the file (as the user gave it) or the full config key at
// fault, so that one `error: <message>` line tells the user what to fix.

#include <stdexcept>
#include <string>

namespace mnist {

/// The command line or the config given on it is wrong: unknown flag, missing config file, bad key
/// or value, a run folder that may not be written. Exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file read during the run is wrong: data set files, a run folder's contents, a checkpoint.
/// Exit status 1.
class DataError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The run itself failed although its inputs were fine (the loss became NaN, a write failed).
/// Exit status 1.
class RunError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace mnist
