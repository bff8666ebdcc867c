#pragma once
// mnist-serve's HTTP server (cpp-httplib underneath; nothing of it in this header):
//   GET  /  and the page's files          the drawing page (assets.h), nothing else from disk
//   POST /api/predict[?model=NAME]        image file, multipart field "image", or canvas JSON
//   POST /api/feedback?label=K[&model=NAME][&predicted=P]   a correction (with --feedback-dir)
//   GET  /api/models, /api/health, /metrics (Prometheus text)
// Every error is {"error": "..."} with its status (400, 404, 405, 411, 413, 415, 422, 503).
// Connections are served by a fixed pool of threads from a bounded queue; when the queue is full a
// connection's predictions are answered 503 at once. Models are shared read-only.

#include <cstddef>
#include <memory>
#include <string>

#include "mnist/serve/model_registry.h"

namespace mnist::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";    // loopback unless asked otherwise
  int port = 8080;                   // 0: any free port (see WebServer::port)
  int threads = 64;                  // connections served at once (each one thread)
  int queue = 64;                    // connections waiting for a thread; beyond it: 503
  size_t max_body_bytes = 8u << 20;  // request bodies larger than this: 413
  int read_timeout_seconds = 10;     // between bytes of a request
  int write_timeout_seconds = 10;    // between bytes of an answer
  int keep_alive_seconds = 5;        // an idle connection is closed after this
  int keep_alive_requests = 100;     // requests on one connection before it is closed
  std::string feedback_dir;          // where corrections go; empty: POST /api/feedback answers 404
  std::string cors_origin;  // Access-Control-Allow-Origin for /api/*; empty: no CORS headers
};

class WebServer {
 public:
  /// `registry` must outlive the server. UsageError for bad options (threads, queue, feedback
  /// folder).
  WebServer(const ModelRegistry& registry, const ServerOptions& options);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// Binds the listening socket; returns the port (the chosen one for port 0). RunError naming
  /// host:port when the address cannot be bound (in use, not this machine's).
  int bind();
  /// Serves until stop(); requests in flight are answered before it returns.
  void run();
  /// Stops accepting; safe from another thread (e.g. a signal watcher).
  void stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnist::serve
