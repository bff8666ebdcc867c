#include "app.h"

#include <signal.h>

#include <cstdio>
#include <new>

#include <c10/util/Exception.h>

#include "mnist/core/error.h"
#include "mnist/core/interrupt.h"

namespace mnist::app {
namespace {

int fail(int status, const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "error: %s\n", message.c_str());
  return status;
}

}  // namespace

int run(CLI::App& cli, int argc, char** argv, const std::function<int()>& body) {
  // A file size limit (ulimit -f) makes a write fail with EFBIG, reported as any failed write,
  // instead of killing the process with SIGXFSZ.
  ::signal(SIGXFSZ, SIG_IGN);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", cli.help().c_str());
    return 0;
  } catch (const CLI::ParseError& e) {
    return fail(2, std::string(e.what()) + " (see --help)");
  }
  try {
    return body();
  } catch (const Interrupted& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "%s\n", e.what());
    return 128 + e.signal();
  } catch (const UsageError& e) {
    return fail(2, e.what());
  } catch (const DataError& e) {
    return fail(1, e.what());
  } catch (const RunError& e) {
    return fail(1, e.what());
  } catch (const c10::Error& e) {
    return fail(1, e.what_without_backtrace());  // what() would add a C++ backtrace
  } catch (const std::bad_alloc&) {
    return fail(1, "out of memory");
  } catch (const std::exception& e) {
    return fail(1, e.what());
  }
}

std::string command_line(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) out += (i ? " " : "") + std::string(argv[i]);
  return out;
}

}  // namespace mnist::app
