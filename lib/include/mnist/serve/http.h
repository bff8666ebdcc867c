#pragma once
// mnist-serve's HTTP/1.1 transport, on Boost.Beast (nothing of it in this header). It owns the
// sockets, the limits and the threads; what a route answers is its owner's business (server.h).
//
// Whatever a client sends, the transport's memory and threads stay bounded (docs/serving.md):
//   - I/O is asynchronous on a few threads, so a slow client holds a few kilobytes, never a thread;
//   - the request line and the header have size and count limits (414, 431), and one deadline for
//     the whole header (408), the body another (408), not only a time-out between reads;
//   - a body is refused before it is read when its declared length is over the limit (413), when
//     it is compressed (415), when the route refuses the request from its header (admit), or when
//     the work queue or the memory budget for bodies is full (503); a chunked body is counted
//     against the same limit as it arrives (413);
//   - "job" routes (decoding, preprocessing, inference) run on a fixed pool of workers: the work
//     limit; beyond the workers, at most `queue` requests wait, the rest are answered 503;
//   - open connections are capped (503 and close beyond it);
//   - every handler runs inside a catch-all: an exception is a 500 JSON answer, counted, never the
//     end of the process;
//   - stop() stops accepting, closes idle connections, lets the requests in flight finish, and
//     returns from run() within the drain deadline whatever the clients do.

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mnist::serve {

class ServerMetrics;

/// Every limit of the transport, with its reason; one place (the apps' flags set some of them).
struct HttpLimits {
  size_t max_target_bytes = 8 * 1024;    // request target (path + query); longer: 414
  size_t max_header_bytes = 16 * 1024;   // request line + header fields; more: 431
  size_t max_header_count = 100;         // header fields (browsers send about 20); more: 431
  size_t max_body_bytes = 8u << 20;      // one body, declared or chunked; more: 413
  size_t body_budget_bytes = 64u << 20;  // bodies being received or waiting, all together: 503
  int header_timeout_ms = 10'000;        // waiting for a request, to the end of its header: 408
  int body_timeout_ms = 30'000;          // the whole body (8 MiB at 280 kB/s): 408
  int write_timeout_ms = 10'000;         // the whole answer; then the connection is dropped
  int max_connections = 1024;            // open connections (each a few kB); beyond: 503, closed
  int io_threads = 2;                    // threads moving bytes (never blocked by a client)
  int workers = 2;                       // job routes running at once (the work limit: cores)
  int queue = 64;                        // job requests admitted beyond the running ones: 503
  int keep_alive_requests = 100;         // requests on one connection before it is closed
  int drain_timeout_ms = 10'000;         // stop(): the requests in flight get this long
};

/// A request as the routes see it. Names of headers are lower case; the path and the query are
/// percent-decoded and may hold any bytes (invalid UTF-8 included): JSON answers go through
/// json_text.
struct HttpRequest {
  std::string method;
  std::string target;  // as sent
  std::string path;    // the target before '?', decoded
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // empty for routes that take none, and in admit()

  /// The first value of header `name` (lower case), or "".
  std::string header(std::string_view name) const;
  bool has_header(std::string_view name) const;
  /// The first value of query parameter `name`, or "".
  std::string param(std::string_view name) const;
  bool has_param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this answer
};

/// A request the server refuses: the HTTP status, the message of its {"error": ...} body, and any
/// headers the status needs (Retry-After, WWW-Authenticate, Allow). The message never holds a
/// server path.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message,
           std::vector<std::pair<std::string, std::string>> headers = {})
      : std::runtime_error(message), status_(status), headers_(std::move(headers)) {}
  int status() const { return status_; }
  const std::vector<std::pair<std::string, std::string>>& headers() const { return headers_; }

 private:
  int status_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

/// `j` as JSON text that never throws: invalid UTF-8 in its strings becomes U+FFFD.
std::string json_text(const nlohmann::json& j);
/// `s` fit for one log line: control characters escaped, invalid UTF-8 replaced.
std::string log_text(const std::string& s);
/// `s` with ASCII letters in lower case (header names, host names, tokens of header values).
std::string ascii_lower(std::string_view s);
/// Percent-decoding of a path or query component (`plus_is_space` for queries); bytes of a
/// malformed escape are kept as they are.
std::string percent_decode(std::string_view s, bool plus_is_space);

HttpResponse json_response(int status, const nlohmann::json& body);
/// {"error": message} with `status` (and the error's headers).
HttpResponse error_response(int status, const std::string& message);
HttpResponse error_response(const ApiError& e);

struct Route {
  std::string path;         // exact path ("/api/predict"), or with `prefix` one ending in '/'
  std::string method;       // "GET" (HEAD too), "POST", "OPTIONS"
  std::string name;         // the metrics' route label
  bool takes_body = false;  // an upload: the body is read, with the checks above
  bool job = false;         // runs on a worker (the work limit), with or without a body;
                            // otherwise on an I/O thread, so it must be cheap (the page's files,
                            // health, metrics)
  /// Called with the header only, before any of the body is read; throws ApiError to refuse
  /// (write permissions). May be empty.
  std::function<void(const HttpRequest&)> admit;
  std::function<HttpResponse(const HttpRequest&)> handle;
  bool prefix = false;  // matches every longer path under `path` ("/api/runs/" for /api/runs/NAME)
};

class HttpServer {
 public:
  /// `metrics` must outlive the server. Every answer, the transport's own included, is passed to
  /// `decorate` (security headers) before it is sent.
  HttpServer(std::vector<Route> routes, const HttpLimits& limits, ServerMetrics& metrics,
             std::function<void(const HttpRequest&, HttpResponse&)> decorate);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and listens; returns the port (the chosen one for port 0). RunError naming host:port
  /// when the address cannot be bound (in use, not this machine's, not an address).
  int bind(const std::string& host, int port);
  /// Serves until stop(), then returns when the requests in flight are answered or the drain
  /// deadline has passed. Returns at once when stop() came first.
  void run();
  /// Thread-safe, also before run() and from a signal watcher.
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

/// The part of a multipart/form-data body (RFC 7578) in field `field`: its media type and bytes.
struct FormField {
  std::string type;
  std::string data;
};
/// Parses a complete body (the transport has bounded it); ApiError 400 when the Content-Type has no
/// usable boundary or the body is not well-formed multipart, or when `field` is missing.
FormField multipart_field(const std::string& content_type, const std::string& body,
                          const std::string& field);

}  // namespace mnist::serve
