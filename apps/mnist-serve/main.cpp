// mnist-serve: the web application. Serves the drawing page and the JSON prediction API for one
// or more trained runs (a folder of run folders counts as all of them), on loopback unless told
// otherwise. Ctrl-C or SIGTERM stops it after the requests in flight are answered (at most 10 s).
// Putting it on a network (token, limits, nginx, systemd): docs/serving.md.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "app.h"
#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/serve/model_registry.h"
#include "mnist/serve/server.h"

namespace {

// SIGINT/SIGTERM: the handler only writes the signal's number into a pipe; a watcher thread reads
// it and stops the server. Installed first thing, so that a signal during the models' loading is
// not lost: the server then stops before it serves. (Blocking the signals for sigwait would not
// do: libraries start threads before main.) The handler is reset after the first signal, so a
// second Ctrl-C ends at once.
int stop_pipe[2] = {-1, -1};
std::mutex server_mutex;
mnist::serve::WebServer* running = nullptr;
std::atomic<int> stop_signal{0};

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
  std::thread([] {
    char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    stop_signal = sig;
    std::lock_guard<std::mutex> lock(server_mutex);
    if (running) {
      std::printf("%s: stopping; answering the requests in flight\n",
                  sig == SIGINT ? "SIGINT" : "SIGTERM");
      std::fflush(stdout);
      running->stop();
    }
  }).detach();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"Serve the drawing page and the prediction API for trained runs."};
  std::vector<std::string> runs;
  mnist::serve::ServerOptions options;
  auto& limits = options.limits;
  double max_body_mb = 8;
  double max_megapixels = 12;
  double feedback_limit_mb = 256;
  double header_timeout = 10;
  double body_timeout = 30;
  limits.workers = std::max(1U, std::thread::hardware_concurrency());
  cli.add_option("--run", runs, "run folder, or a folder of run folders (repeatable)")->required();
  cli.add_option("--host", options.host,
                 "address to listen on (default 127.0.0.1: this machine only)");
  cli.add_option("--port", options.port, "port (default 8080; 0 picks a free one)")
      ->check(CLI::Range(0, 65535));
  cli.add_option("--workers", limits.workers,
                 "predictions decoded and run at once (default: the number of cores)")
      ->check(CLI::Range(1, 256));
  cli.add_option("--queue", limits.queue,
                 "predictions waiting for a worker before more are answered 503 (default 64)")
      ->check(CLI::Range(0, 100000));
  cli.add_option("--max-connections", limits.max_connections,
                 "open connections before new ones are answered 503 (default 1024)")
      ->check(CLI::Range(1, 1000000));
  cli.add_option("--max-body-mb", max_body_mb, "largest request body in MiB (default 8)")
      ->check(CLI::Range(0.001, 1024.0));
  cli.add_option("--max-megapixels", max_megapixels,
                 "largest uploaded image, decoded, in megapixels (default 12)")
      ->check(CLI::Range(0.001, 64.0));
  cli.add_option("--header-timeout", header_timeout,
                 "seconds for a request's whole header, idle time included (default 10)")
      ->check(CLI::Range(0.1, 3600.0));
  cli.add_option("--body-timeout", body_timeout, "seconds for a request's whole body (default 30)")
      ->check(CLI::Range(0.1, 3600.0));
  cli.add_option(
      "--feedback-dir", options.feedback_dir,
      "save corrections sent from the page here (image folders per class + feedback.csv)");
  cli.add_option("--feedback-limit-mb", feedback_limit_mb,
                 "most the feedback folder may hold, in MiB (default 256); then 507")
      ->check(CLI::Range(0.001, 1e7));
  cli.add_option("--token", options.token,
                 "require Authorization: Bearer TOKEN for corrections (or MNIST_SERVE_TOKEN); "
                 "needed with --feedback-dir on a non-loopback --host");
  cli.add_option("--allowed-host", options.allowed_hosts,
                 "a name clients reach this server by, for the Host check of writes (repeatable; "
                 "loopback names, and this machine's when bound to all, are always allowed)");
  cli.add_option("--cors", options.cors_origin,
                 "allow this origin to call /api/* from its pages (default: no CORS)");

  return mnist::app::run(cli, argc, argv, [&] {
    install_stop_handlers();
    limits.max_body_bytes = static_cast<size_t>(max_body_mb * 1024 * 1024);
    limits.body_budget_bytes =
        std::max<size_t>(limits.body_budget_bytes, 4 * limits.max_body_bytes);
    limits.header_timeout_ms = static_cast<int>(header_timeout * 1000);
    limits.body_timeout_ms = static_cast<int>(body_timeout * 1000);
    options.max_pixels = static_cast<int64_t>(max_megapixels * 1e6);
    options.feedback_limit_bytes = static_cast<int64_t>(feedback_limit_mb * 1024 * 1024);
    if (options.token.empty()) {
      if (const char* t = std::getenv("MNIST_SERVE_TOKEN")) options.token = t;
    }
    // Requests run side by side, one worker each: no intra-op threads inside one.
    mnist::configure_runtime(/*threads=*/1);

    std::vector<std::string> warnings;
    const auto registry = mnist::serve::ModelRegistry::load(runs, &warnings);
    options.run_roots = runs;  // the cockpit rescans them on every request
    for (const auto& w : warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
    mnist::serve::WebServer server(registry, options);
    const int port = server.bind();
    if (!mnist::serve::is_loopback(options.host)) {
      std::fprintf(stderr,
                   "warning: listening on %s: anyone who can reach this machine can use the page "
                   "and the API%s; see docs/serving.md (nginx in front, a token)\n",
                   options.host.c_str(),
                   options.feedback_dir.empty() ? "" : " (corrections need the token)");
    }

    for (const auto& m : registry.models()) {
      std::printf("model %s (%s, %s)\n", m.name.c_str(), m.dataset.c_str(), m.type.c_str());
    }
    const bool any = options.host == "0.0.0.0" || options.host == "::";
    std::printf("serving on http://%s:%d/  (Ctrl-C stops)\n",
                any ? "127.0.0.1" : options.host.c_str(), port);
    std::fflush(stdout);
    {
      std::lock_guard<std::mutex> lock(server_mutex);
      running = &server;
      if (stop_signal != 0) server.stop();  // a signal came while the models were loading
    }
    server.run();
    {
      std::lock_guard<std::mutex> lock(server_mutex);
      running = nullptr;
    }
    std::printf("stopped\n");
    return 0;
  });
}
