// mnist-serve: the web application. Serves the drawing page and the JSON prediction API for one
// or more trained runs (a folder of run folders counts as all of them), on loopback unless told
// otherwise. Ctrl-C or SIGTERM stops it after the requests in flight are answered.

#include <signal.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <thread>

#include "app.h"
#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/serve/model_registry.h"
#include "mnist/serve/server.h"

namespace {

// SIGINT/SIGTERM: the handler only writes the signal's number into a pipe; a watcher thread reads
// it and stops the server. (Blocking the signals for sigwait would not do: libraries start threads
// before main.) The handler is reset after the first signal, so a second Ctrl-C ends at once.
int stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] const ssize_t n = write(stop_pipe[1], &c, 1);
}

void install_stop_handlers() {
  if (pipe(stop_pipe) != 0) throw mnist::RunError("cannot create a pipe for signals");
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Serve the drawing page and the prediction API for trained runs."};
  std::vector<std::string> runs;
  mnist::serve::ServerOptions options;
  double max_body_mb = 8;
  cli.add_option("--run", runs, "run folder, or a folder of run folders (repeatable)")->required();
  cli.add_option("--host", options.host,
                 "address to listen on (default 127.0.0.1: this machine only)");
  cli.add_option("--port", options.port, "port (default 8080; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  cli.add_option("--threads", options.threads,
                 "connections served at once, one thread each (default 64)")
      ->check(CLI::Range(1, 1024));
  cli.add_option(
         "--queue", options.queue,
         "connections waiting for a thread before predictions are answered 503 (default 64)")
      ->check(CLI::Range(0, 100000));
  cli.add_option("--max-body-mb", max_body_mb, "largest request body in MiB (default 8)")
      ->check(CLI::Range(0.001, 1024.0));
  cli.add_option(
      "--feedback-dir", options.feedback_dir,
      "save corrections sent from the page here (image folders per class + feedback.csv)");
  cli.add_option("--cors", options.cors_origin,
                 "allow this origin to call /api/* from its pages (default: no CORS)");

  return mnist::app::run(cli, argc, argv, [&] {
    options.max_body_bytes = static_cast<size_t>(max_body_mb * 1024 * 1024);
    // Requests run side by side, one thread each: no intra-op threads inside one.
    mnist::configure_runtime(/*threads=*/1);

    std::vector<std::string> warnings;
    const auto registry = mnist::serve::ModelRegistry::load(runs, &warnings);
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    mnist::serve::WebServer server(registry, options);
    const int port = server.bind();

    for (const auto& m : registry.models()) {
      std::printf("model %s (%s, %s)\n", m.name.c_str(), m.dataset.c_str(), m.type.c_str());
    }
    const bool any = options.host == "0.0.0.0" || options.host == "::";
    std::printf("serving on http://%s:%d/  (Ctrl-C stops)\n",
                any ? "127.0.0.1" : options.host.c_str(), port);
    std::fflush(stdout);

    install_stop_handlers();
    std::thread([&server] {
      char sig = 0;
      while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
      }
      std::printf("%s: stopping; answering the requests in flight\n",
                  sig == SIGINT ? "SIGINT" : "SIGTERM");
      std::fflush(stdout);
      server.stop();
    }).detach();

    server.run();
    std::printf("stopped\n");
    return 0;
  });
}
