#pragma once
// mnist-serve's web application, on the transport of http.h:
//   GET  /  and the page's files          the drawing page (assets.h), nothing else from disk
//   POST /api/predict[?model=NAME]        image file, multipart field "image", or canvas JSON
//   POST /api/feedback?label=K[&model=NAME]   a correction (with a feedback folder); a write, so
//                                         only from the page itself (below)
//   POST /api/explain?class=K&method=M[&model=NAME]   a prediction and its attribution map
//   GET  /api/models, /api/health, /metrics (Prometheus text)
//   GET  /runs and /api/runs...           the research cockpit over the run folders (runs_api.h)
// Every error is {"error": "..."} with its status (400, 401, 403, 404, 405, 408, 411, 413, 414,
// 415, 421, 422, 431, 500, 503, 507). Models are shared read-only.
//
// Writes are refused (nothing read, nothing written) unless they come from the page itself: a
// Host header that is not one of the server's names is 421 (DNS rebinding), an Origin of another
// site or Sec-Fetch-Site: cross-site is 403 (cross-site requests), and with a token a missing or
// wrong Authorization: Bearer is 401.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mnist/serve/http.h"
#include "mnist/serve/model_registry.h"
#include "mnist/vision/preprocess.h"

namespace mnist::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";  // loopback unless asked otherwise
  int port = 8080;                 // 0: any free port (the chosen one is returned by bind)
  HttpLimits limits;               // the transport's limits and threads (http.h)
  // The largest image decoded from an upload, in pixels after the reduction below: an 8000x8000
  // 16-bit PNG is 512 MiB decoded, and twice that again as floats (mnist-predict allows 64 MP).
  int64_t max_pixels = 12'000'000;
  // JPEG photos are decoded at 1/2, 1/4 or 1/8 while their longer side stays at least this: the
  // preprocessing analyses them at 512 pixels anyway.
  int reduce_to = vision::kWorkingSide;
  std::string feedback_dir;  // where corrections go; empty: POST /api/feedback answers 404
  int64_t feedback_limit_bytes = 256LL << 20;  // the feedback folder's size; beyond it: 507
  std::string token;  // required on writes as Authorization: Bearer; empty: none
  std::vector<std::string> allowed_hosts;  // more names clients reach the server by (Host)
  std::string cors_origin;  // Access-Control-Allow-Origin for /api/*; empty: no CORS headers
  // The --run paths, rescanned for the research cockpit (/runs, /api/runs: runs_api.h); empty: the
  // cockpit lists no runs.
  std::vector<std::string> run_roots;
};

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback(const std::string& host);

class WebServer {
 public:
  /// `registry` must outlive the server. UsageError for bad options: limits, a feedback folder
  /// that cannot be written or whose class folders would clash, and a feedback folder on a
  /// non-loopback address without a token (the error names --token).
  WebServer(const ModelRegistry& registry, const ServerOptions& options);
  ~WebServer();
  WebServer(const WebServer&) = delete;
  WebServer& operator=(const WebServer&) = delete;

  /// Binds the listening socket; returns the port (the chosen one for port 0). RunError naming
  /// host:port when the address cannot be bound (in use, not this machine's).
  int bind();
  /// Serves until stop(); requests in flight are answered before it returns (within the drain
  /// deadline). Returns at once when stop() came first.
  void run();
  /// Stops accepting; safe from another thread (e.g. a signal watcher), also before run().
  void stop();
  int port() const;
  /// The names a Host header may carry for writes (lower case, without port).
  const std::vector<std::string>& host_names() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mnist::serve
